"""The key scheme: where an upload lands in S3 and where its records live in the ledger table.

Object keys are ``users/<sub>/<uploadId>/<sanitised filename>``. The upload id is
server-generated and partly random, so a grant never names an existing object, and the key alone
tells the usage function whose quota an object counts against and which reservation it fulfils.

The upload id also carries the terms of its reservation (declared bytes, when the reservation
ends, single PUT or multipart), so the ledger keeps no record per single-PUT upload: the event
that brings the object says which expiry bucket to release and by how much. Only our presigned
URLs write under ``users/``, and each binds its key, so a client cannot choose these terms.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from functools import lru_cache
from typing import NamedTuple

USERS_PREFIX = "users/"
MAX_FILENAME_BYTES = 255
# DynamoDB sort keys hold at most 1024 bytes; S3 keys may be as long, so leave room for "OBJ#".
MAX_OBJECT_KEY_BYTES = 1020

_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")
_SUB = re.compile(r"[A-Za-z0-9._@:+=-]{1,128}")
_UNSAFE_FILENAME_CHARS = re.compile(r"[^\w.()+=@,-]+")


class InvalidKey(ValueError):
    """A key or identifier that does not fit the scheme."""


@lru_cache(maxsize=4096)
def is_valid_sub(sub: str) -> bool:
    """A user id that is one safe path segment: never ``.`` or ``..``, which S3 clients and
    consoles resolve as relative paths."""
    return bool(_SUB.fullmatch(sub)) and sub not in (".", "..")


def is_upload_id(text: str) -> bool:
    return bool(_UPLOAD_ID.fullmatch(text))


class UploadTerms(NamedTuple):
    """What a reservation holds: ``size`` bytes until ``expires_at`` (epoch seconds)."""

    size: int
    expires_at: int
    multipart: bool


# 32 hex digits: 11 random, 1 kind (0 single PUT, 1 multipart), 11 size, 9 expiry.
_RANDOM_DIGITS = 11
_MAX_SIZE = 16**11 - 1
_MAX_EXPIRY = 16**9 - 1


def new_upload_id(terms: UploadTerms) -> str:
    if not (0 <= terms.size <= _MAX_SIZE and 0 <= terms.expires_at <= _MAX_EXPIRY):
        raise InvalidKey(f"upload terms {terms} do not fit an upload id")
    random_part = secrets.token_hex(6)[:_RANDOM_DIGITS]
    return f"{random_part}{int(terms.multipart)}{terms.size:011x}{terms.expires_at:09x}"


def upload_terms(upload_id: str) -> UploadTerms | None:
    """The terms an upload id was issued with; None for an id that carries none."""
    if not is_upload_id(upload_id) or upload_id[_RANDOM_DIGITS] not in "01":
        return None
    size = int(upload_id[12:23], 16)
    expires_at = int(upload_id[23:], 16)
    return UploadTerms(size, expires_at, upload_id[_RANDOM_DIGITS] == "1")


def issued_terms(upload_id: str) -> UploadTerms:
    """The terms of an upload id this service issued; ``InvalidKey`` for any other."""
    terms = upload_terms(upload_id)
    if terms is None:
        raise InvalidKey(f"{upload_id!r} is not an upload id this service issued")
    return terms


def has_control_characters(text: str) -> bool:
    return any(unicodedata.category(ch) == "Cc" for ch in text)


def sanitise_filename(filename: str) -> str:
    """A filename safe in a URL path and a shell, keeping what a person would recognise.

    Path components are dropped (a client's ``C:\\photos\\a.jpg`` becomes ``a.jpg``), runs of
    characters outside letters, digits and ``.()+=@,-`` become one ``_``, and leading dots go so no
    object is hidden or named ``..``.
    """
    base = re.split(r"[\\/]", unicodedata.normalize("NFC", filename))[-1]
    cleaned = _UNSAFE_FILENAME_CHARS.sub("_", base).strip("_").lstrip(".")
    cleaned = cleaned or "file"
    while len(cleaned.encode()) > MAX_FILENAME_BYTES:
        cleaned = cleaned[:-1]
    return cleaned


def object_key(sub: str, upload_id: str, filename: str) -> str:
    if not is_valid_sub(sub):
        raise InvalidKey(f"user id {sub!r} cannot be part of an object key")
    return f"{USERS_PREFIX}{sub}/{upload_id}/{sanitise_filename(filename)}"


def user_prefix(sub: str) -> str:
    return f"{USERS_PREFIX}{sub}/"


class ObjectOwner(NamedTuple):
    sub: str
    upload_id: str | None


def owner_of(key: str) -> ObjectOwner | None:
    """Whose quota an object counts against, or None for a key outside the scheme."""
    if not key.startswith(USERS_PREFIX):
        return None
    # A character is at most 4 bytes in UTF-8: encode only keys that might be too long.
    if len(key) * 4 > MAX_OBJECT_KEY_BYTES and len(key.encode()) > MAX_OBJECT_KEY_BYTES:
        return None
    parts = key[len(USERS_PREFIX) :].split("/")
    if len(parts) < 2 or not is_valid_sub(parts[0]) or not parts[-1]:
        return None
    upload_id = parts[1] if len(parts) == 3 and is_upload_id(parts[1]) else None
    return ObjectOwner(parts[0], upload_id)


def user_pk(sub: str) -> str:
    return f"USER#{sub}"


def sub_of_pk(pk: str) -> str:
    return pk.removeprefix(user_pk(""))


USAGE_SK = "USAGE"


def upload_sk(upload_id: str) -> str:
    return f"RES#{upload_id}"


def object_sk(key: str) -> str:
    return f"OBJ#{key}"
