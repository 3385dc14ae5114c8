"""Signing in to a running local stack's user pool, for tests that call the API over HTTP."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
import jwt
import requests
from botocore import UNSIGNED
from botocore.config import Config
from moto.utilities.utils import load_resource

if TYPE_CHECKING:
    from mypy_boto3_cognito_idp import CognitoIdentityProviderClient


@dataclass(frozen=True)
class Identity:
    sub: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def user_named(text: str) -> str:
    """A name for ``POST /local/token`` made of ``text`` (a test's name, say): the pool's
    usernames are emails, and ``<name>@example.com`` must be one."""
    return re.sub(r"[^A-Za-z0-9._+-]", "-", text)


def local_token(api: str, user: str, groups: Sequence[str] = ()) -> Identity:
    """``user``'s ID token from ``POST /local/token``: made in the pool, in exactly ``groups``."""
    answer = requests.post(
        f"{api}/local/token", json={"user": user, "groups": list(groups)}, timeout=10
    )
    answer.raise_for_status()
    body = answer.json()
    return Identity(body["sub"], body["token"])


def cognito_client(api: str) -> CognitoIdentityProviderClient:
    """boto3 on the stack's Cognito endpoint, unsigned as a browser's sign-up and sign-in are."""
    return boto3.client(
        "cognito-idp",
        endpoint_url=f"{api}/local/cognito",
        region_name="us-east-1",
        config=Config(signature_version=UNSIGNED),
    )


def client_id(api: str) -> str:
    value: str = requests.get(f"{api}/local/config", timeout=10).json()["userPoolClientId"]
    return value


def sign_in(api: str, email: str, password: str) -> str:
    """The ID token Cognito gives for an email and password (the flow the local client adds)."""
    answer = cognito_client(api).initiate_auth(
        ClientId=client_id(api),
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": email, "PASSWORD": password},
    )
    return answer["AuthenticationResult"]["IdToken"]


def claims_of(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def signed_with_the_pools_key(claims: dict[str, Any]) -> str:
    """A token signed as the local pool signs: moto signs for every pool with one key, which
    its package holds."""
    key = jwt.PyJWK(load_resource("cognitoidp/resources/jwks-private.json"))
    return jwt.encode(claims, key.key, algorithm="RS256", headers={"kid": "dummy"})
