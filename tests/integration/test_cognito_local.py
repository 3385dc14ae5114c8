"""Cognito on the local stack over real HTTP: sign up and in through Cognito's API, call the API
with the ID token, and get API Gateway's 401 for every token its JWT authorizer would refuse."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import boto3
import jwt
import pytest
import requests
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.local_stack_process import RunningProcess, local_stack_process
from tests.support.tokens import (
    claims_of,
    client_id,
    cognito_client,
    local_token,
    sign_in,
    signed_with_the_pools_key,
)

if TYPE_CHECKING:
    from mypy_boto3_cognito_idp import CognitoIdentityProviderClient

pytestmark = pytest.mark.integration
PASSWORD = "Correct-horse-42"
UNAUTHORIZED = {"message": "Unauthorized"}


@pytest.fixture(scope="module")
def stack() -> Iterator[RunningProcess]:
    with local_stack_process() as running:
        yield running


def moto_cognito(stack: RunningProcess) -> CognitoIdentityProviderClient:
    """The embedded AWS endpoint itself, as an operator's scripts reach Cognito."""
    return boto3.client("cognito-idp", endpoint_url=stack.aws_endpoint, region_name="us-east-1")


def usage(api: str, token: str) -> requests.Response:
    return requests.get(f"{api}/usage", headers={"Authorization": f"Bearer {token}"}, timeout=10)


def test_a_user_signs_up_signs_in_and_calls_the_api(stack: RunningProcess) -> None:
    cognito = cognito_client(stack.url)
    signed_up = cognito.sign_up(
        ClientId=client_id(stack.url),
        Username="new-user@example.com",
        Password=PASSWORD,
        UserAttributes=[{"Name": "email", "Value": "new-user@example.com"}],
    )
    assert signed_up["UserConfirmed"]  # the local stack confirms without an emailed code
    token = sign_in(stack.url, "new-user@example.com", PASSWORD)
    claims = claims_of(token)
    assert claims["sub"] == signed_up["UserSub"]
    assert claims["iss"].startswith("https://cognito-idp.us-east-1.amazonaws.com/us-east-1_")

    assert usage(stack.url, token).status_code == 200
    grant = requests.post(
        f"{stack.url}/uploads",
        headers={"Authorization": f"Bearer {token}"},
        json={"filename": "a.txt", "size": 3, "contentType": "text/plain"},
        timeout=10,
    )
    assert grant.status_code == 201, grant.text
    assert grant.json()["key"].startswith(f"users/{signed_up['UserSub']}/")

    with pytest.raises(ClientError, match="Incorrect username or password"):
        sign_in(stack.url, "new-user@example.com", PASSWORD + "!")


def test_the_admins_group_comes_from_the_template(stack: RunningProcess) -> None:
    cognito = moto_cognito(stack)
    pool_id = requests.get(f"{stack.url}/local/config", timeout=10).json()["userPoolId"]
    assert [g["GroupName"] for g in cognito.list_groups(UserPoolId=pool_id)["Groups"]] == ["admins"]
    admin = local_token(stack.url, "operator", ["admins"])
    member = local_token(stack.url, "member")
    quota = f"{stack.url}/admin/users/{member.sub}/quota"
    answer = requests.put(quota, headers=admin.headers, json={"quotaBytes": 7}, timeout=10)
    assert answer.status_code == 200, answer.text
    assert usage(stack.url, member.token).json()["quotaBytes"] == 7
    answer = requests.put(quota, headers=member.headers, json={"quotaBytes": 8}, timeout=10)
    assert answer.status_code == 403


def test_the_shortcut_signs_the_same_user_in_again_with_the_groups_asked_for(
    stack: RunningProcess,
) -> None:
    first = local_token(stack.url, "again@example.com", ["admins"])
    second = local_token(stack.url, "again@example.com")
    assert first.sub == second.sub
    groups = [claims_of(identity.token).get("cognito:groups") for identity in (first, second)]
    assert groups == [["admins"], None]


def _expired(stack: RunningProcess) -> str:
    claims = claims_of(local_token(stack.url, "expired").token)
    now = int(time.time())
    return signed_with_the_pools_key({**claims, "iat": now - 3700, "exp": now - 100})


def _signed_in(stack: RunningProcess, name: str, pool_id: str, client: str) -> dict[str, Any]:
    """Real tokens of a new user of ``pool_id``, signed in through ``client``."""
    cognito = moto_cognito(stack)
    email = f"{name}@example.com"
    cognito.admin_create_user(UserPoolId=pool_id, Username=email, MessageAction="SUPPRESS")
    cognito.admin_set_user_password(
        UserPoolId=pool_id, Username=email, Password=PASSWORD, Permanent=True
    )
    answer = cognito.initiate_auth(
        ClientId=client,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": email, "PASSWORD": PASSWORD},
    )
    return dict(answer["AuthenticationResult"])


def _access_token(stack: RunningProcess) -> str:
    """The other token Cognito gives at sign-in (API Gateway itself would take it)."""
    pool_id = requests.get(f"{stack.url}/local/config", timeout=10).json()["userPoolId"]
    return str(_signed_in(stack, "access", pool_id, client_id(stack.url))["AccessToken"])


def _from_another_client(stack: RunningProcess) -> str:
    """A real ID token of the same pool, for a client the API's audience does not name."""
    pool_id = requests.get(f"{stack.url}/local/config", timeout=10).json()["userPoolId"]
    other = moto_cognito(stack).create_user_pool_client(
        UserPoolId=pool_id, ClientName="other", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"]
    )
    return str(_signed_in(stack, "aud", pool_id, other["UserPoolClient"]["ClientId"])["IdToken"])


def _from_another_pool(stack: RunningProcess) -> str:
    """A real ID token signed with the same key (moto has one) by a pool of another issuer."""
    cognito = moto_cognito(stack)
    pool = cognito.create_user_pool(PoolName="other", UsernameAttributes=["email"])["UserPool"]
    client = cognito.create_user_pool_client(
        UserPoolId=pool["Id"], ClientName="other", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"]
    )
    return str(
        _signed_in(stack, "iss", pool["Id"], client["UserPoolClient"]["ClientId"])["IdToken"]
    )


def _signed_by_another_key(stack: RunningProcess) -> str:
    claims = claims_of(local_token(stack.url, "forger").token)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "dummy"})


REFUSED: dict[str, Callable[[RunningProcess], str]] = {
    "expired": _expired,
    "token_use access": _access_token,
    "wrong audience": _from_another_client,
    "wrong issuer": _from_another_pool,
    "bad signature": _signed_by_another_key,
}


@pytest.mark.parametrize("kind", REFUSED)
def test_a_token_api_gateway_would_refuse_gets_its_401(stack: RunningProcess, kind: str) -> None:
    answer = usage(stack.url, REFUSED[kind](stack))
    assert answer.status_code == 401
    assert answer.json() == UNAUTHORIZED


def test_a_token_signed_with_the_pools_key_and_right_claims_is_taken(
    stack: RunningProcess,
) -> None:
    """The control for the refusals made with the pool's key: only the changed claim counts."""
    claims = claims_of(local_token(stack.url, "control").token)
    assert usage(stack.url, signed_with_the_pools_key(claims)).status_code == 200


def test_sign_up_is_refused_when_the_template_closes_it() -> None:
    with local_stack_process("--parameter", "SelfSignUp=Disabled") as closed:
        with pytest.raises(ClientError, match="SignUp is not permitted for this user pool"):
            cognito_client(closed.url).sign_up(
                ClientId=client_id(closed.url), Username="x@example.com", Password=PASSWORD
            )
        # Operators still create users (the shortcut does it with the admin calls).
        assert usage(closed.url, local_token(closed.url, "made@example.com").token).ok
