"""The template's user pool on a moto server as the local stack makes it, and the JWT authorizer
over it: which tokens it takes, and the claims as API Gateway hands them to a function."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from local_stack.cognito import JwtAuthorizer, LocalCognito, provision_user_pool
from local_stack.provision import physical_ids
from local_stack.template import Resolver
from tests.support.dynamodb import running_moto
from tests.support.tokens import claims_of, signed_with_the_pools_key


@dataclass
class Pool:
    endpoint: str
    resolver: Resolver
    cognito: LocalCognito
    authorizer: JwtAuthorizer


@pytest.fixture
def pool(template: dict[str, Any]) -> Iterator[Pool]:
    parameters = {"AdminGroupName": "operators", "SelfSignUp": "Disabled"}
    with running_moto() as endpoint:
        resolver = Resolver(template, physical_ids(template, "local"), parameters)
        user_pool = provision_user_pool(template, resolver, endpoint)
        authorizer = JwtAuthorizer.of_template(template, resolver, endpoint)
        yield Pool(endpoint, resolver, LocalCognito(user_pool), authorizer)


def test_the_pool_client_and_group_are_the_templates(pool: Pool, template: dict[str, Any]) -> None:
    cognito = boto3.client("cognito-idp", endpoint_url=pool.endpoint, region_name="us-east-1")
    pool_id = pool.cognito.pool.pool_id
    assert pool.resolver.resolve({"Ref": "UserPool"}) == pool_id
    described = cognito.describe_user_pool(UserPoolId=pool_id)["UserPool"]
    assert described["UsernameAttributes"] == ["email"]
    assert described["Policies"]["PasswordPolicy"]["MinimumLength"] == 12
    assert described["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    assert pool.cognito.pool.self_sign_up is False

    client = cognito.describe_user_pool_client(
        UserPoolId=pool_id, ClientId=pool.cognito.pool.client_id
    )["UserPoolClient"]
    flows = template["Resources"]["UserPoolClient"]["Properties"]["ExplicitAuthFlows"]
    # The local pool's one addition: the password flow moto checks (SRP it does not).
    assert client["ExplicitAuthFlows"] == [*flows, "ALLOW_USER_PASSWORD_AUTH"]
    groups = cognito.list_groups(UserPoolId=pool_id)["Groups"]
    assert [g["GroupName"] for g in groups] == ["operators"]


def test_claims_reach_the_function_as_api_gateway_passes_them(pool: Pool) -> None:
    sub, token = pool.cognito.mint("alice", ["operators", "x,y"])
    claims = pool.authorizer.claims(f"Bearer {token}")
    assert claims is not None
    assert claims["sub"] == sub
    assert claims["email"] == "alice@example.com"
    assert claims["cognito:groups"] in ("[operators x,y]", "[x,y operators]")
    assert claims["token_use"] == "id"
    assert claims["exp"].isdigit()
    # The identity source may hold the token alone, without "Bearer ".
    assert pool.authorizer.claims(token) == claims
    verified = {**claims_of(token), "email_verified": True}
    assert pool.authorizer.claims(signed_with_the_pools_key(verified)) == {
        **claims,
        "email_verified": "true",
    }


def test_an_access_token_is_refused_for_its_token_use_alone(pool: Pool) -> None:
    """It passes every check API Gateway makes (its client_id stands for the missing aud)."""
    pool.cognito.mint("bob", [])  # makes the user
    cognito = boto3.client("cognito-idp", endpoint_url=pool.endpoint, region_name="us-east-1")
    password = "Correct-horse-42"
    cognito.admin_set_user_password(
        UserPoolId=pool.cognito.pool.pool_id,
        Username="bob@example.com",
        Password=password,
        Permanent=True,
    )
    access = cognito.initiate_auth(
        ClientId=pool.cognito.pool.client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "bob@example.com", "PASSWORD": password},
    )["AuthenticationResult"]["AccessToken"]
    claims = claims_of(access)
    assert "aud" not in claims
    assert claims["client_id"] == pool.cognito.pool.client_id
    assert pool.authorizer.claims(access) is None
    assert pool.authorizer.claims(signed_with_the_pools_key({**claims, "token_use": "id"}))


def test_the_shortcut_refuses_a_name_the_pool_cannot_hold(pool: Pool) -> None:
    with pytest.raises(ClientError, match="email"):
        pool.cognito.mint("a b", [])


def test_sign_up_through_the_endpoint_follows_the_template(pool: Pool) -> None:
    request = b'{"ClientId": "%s", "Username": "x@example.com", "Password": "Correct-horse-42"}'
    body = request % pool.cognito.pool.client_id.encode()
    status, answer = pool.cognito.call("AWSCognitoIdentityProviderService.SignUp", body)
    assert (status, answer) == (
        400,
        b'{"__type": "NotAuthorizedException", '
        b'"message": "SignUp is not permitted for this user pool"}',
    )
    status, _ = pool.cognito.call("DynamoDB_20120810.ListTables", b"{}")
    assert status == 400
