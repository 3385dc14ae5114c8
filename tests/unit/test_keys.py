import pytest

from quota_uploads.keys import (
    InvalidKey,
    UploadTerms,
    is_upload_id,
    new_upload_id,
    object_key,
    owner_of,
    sanitise_filename,
    upload_terms,
)

UPLOAD_ID = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("holiday.jpg", "holiday.jpg"),
        ("C:\\photos\\holiday.jpg", "holiday.jpg"),
        ("../../etc/passwd", "passwd"),
        ("..", "file"),
        (".hidden", "hidden"),
        ("my file (1).jpg", "my_file_(1).jpg"),
        ("naïve café.txt", "naïve_café.txt"),
        ("a?b#c%d&e.txt", "a_b_c_d_e.txt"),
        ("///", "file"),
    ],
)
def test_filenames_are_sanitised(given: str, expected: str) -> None:
    assert sanitise_filename(given) == expected


def test_long_filenames_are_cut_to_255_bytes_without_splitting_a_character() -> None:
    name = sanitise_filename("é" * 300)
    assert len(name.encode()) <= 255
    assert name == "é" * 127


def test_object_key_places_each_upload_under_its_user_and_upload_id() -> None:
    key = object_key("alice", UPLOAD_ID, "a b.jpg")
    assert key == f"users/alice/{UPLOAD_ID}/a_b.jpg"
    owner = owner_of(key)
    assert owner is not None
    assert (owner.sub, owner.upload_id) == ("alice", UPLOAD_ID)


def test_upload_ids_are_fresh() -> None:
    terms = UploadTerms(size=10, expires_at=1_800_000_000, multipart=False)
    assert len({new_upload_id(terms) for _ in range(1000)}) == 1000


@pytest.mark.parametrize(
    "terms",
    [
        UploadTerms(size=0, expires_at=0, multipart=False),
        UploadTerms(size=5 * 1024**4, expires_at=1_800_000_000, multipart=True),
        UploadTerms(size=16**11 - 1, expires_at=16**9 - 1, multipart=False),
    ],
)
def test_an_upload_id_carries_its_terms_and_fits_the_key_scheme(terms: UploadTerms) -> None:
    upload_id = new_upload_id(terms)
    assert is_upload_id(upload_id)
    assert upload_terms(upload_id) == terms
    owner = owner_of(object_key("alice", upload_id, "a.bin"))
    assert owner is not None
    assert owner.upload_id == upload_id


def test_terms_that_do_not_fit_an_upload_id_are_refused() -> None:
    with pytest.raises(InvalidKey):
        new_upload_id(UploadTerms(size=16**11, expires_at=0, multipart=False))


def test_an_id_from_before_upload_terms_carries_none() -> None:
    assert upload_terms("0123456789a2cdef0123456789abcdef") is None
    assert upload_terms("not an id") is None


@pytest.mark.parametrize("sub", ["", "a/b", "a b", "x" * 129])
def test_a_user_id_that_cannot_be_a_key_segment_is_refused(sub: str) -> None:
    with pytest.raises(InvalidKey):
        object_key(sub, UPLOAD_ID, "f.txt")


@pytest.mark.parametrize(
    "key",
    ["other/alice/x.bin", "users/alice/", "users/", "users/a b/x", "users/alice/" + "x" * 1020],
)
def test_keys_outside_the_scheme_have_no_owner(key: str) -> None:
    assert owner_of(key) is None


def test_a_key_without_an_upload_id_still_has_an_owner() -> None:
    owner = owner_of("users/alice/copied.bin")
    assert owner is not None
    assert (owner.sub, owner.upload_id) == ("alice", None)
