"""The template's user pool in the embedded moto, and API Gateway's JWT authorizer over it.

The pool, its app client and the admins group are created from template.yaml's own properties,
so users sign up and in through Cognito's API and get RS256 ID tokens from the pool's key.
Two things differ from the deployed pool, both because moto differs from Cognito:

- moto's SRP does not check the password (its ``PASSWORD_VERIFIER`` accepts any signature), so
  the local client also allows ``USER_PASSWORD_AUTH``, whose password moto does check. The page
  and the token shortcut sign in with it; the deployed client allows SRP only.
- moto sends no confirmation code, so an account signed up through the stack's Cognito endpoint
  is confirmed at once (``AdminConfirmSignUp``). moto would also take a sign-up the template
  forbids (``AllowAdminCreateUserOnly``); that endpoint refuses it as Cognito does.

The authorizer checks a token as the template's ``JwtConfiguration`` says (issuer, audience)
against the keys the issuer publishes, read from moto's copy of the issuer's path.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

import boto3
import jwt

from local_stack.template import Resolver, resources_of_type

if TYPE_CHECKING:
    from mypy_boto3_cognito_idp import CognitoIdentityProviderClient

TARGET_PREFIX = "AWSCognitoIdentityProviderService."
# The flow moto checks passwords in (see the module's docstring).
SIGN_IN_FLOW: Final = "USER_PASSWORD_AUTH"
# Where a name given to the token shortcut gets its email address: the pool's usernames are
# emails. example.com is reserved for documentation (RFC 2606).
SHORTCUT_DOMAIN = "example.com"
# Properties passed as CreateUserPool, CreateUserPoolClient and CreateGroup spell them; any
# other is an error, not silently dropped.
_POOL_FIELDS = {"UsernameAttributes", "AutoVerifiedAttributes", "AdminCreateUserConfig", "Policies"}
_CLIENT_FIELDS = {"UserPoolId", "GenerateSecret", "ExplicitAuthFlows", "PreventUserExistenceErrors"}
_GROUP_FIELDS = {"UserPoolId", "GroupName", "Description"}


@dataclass(frozen=True)
class UserPool:
    endpoint: str
    pool_id: str
    client_id: str
    self_sign_up: bool


def _properties(resource: Mapping[str, Any], resolver: Resolver, known: set[str]) -> Any:
    properties = resolver.resolve(resource["Properties"])
    unknown = set(properties) - known
    if unknown:
        raise KeyError(f"Cognito properties the local stack does not translate: {sorted(unknown)}")
    return properties


def provision_user_pool(
    template: Mapping[str, Any], resolver: Resolver, aws_endpoint: str
) -> UserPool:
    """Creates the template's user pool, client and groups; their Refs become their ids."""
    cognito = boto3.client("cognito-idp", endpoint_url=aws_endpoint)
    ((pool_logical_id, pool),) = resources_of_type(template, "AWS::Cognito::UserPool").items()
    pool_properties = _properties(pool, resolver, _POOL_FIELDS)
    pool_id = cognito.create_user_pool(
        PoolName=resolver.physical_ids[pool_logical_id], **pool_properties
    )["UserPool"]["Id"]
    resolver.assigned[pool_logical_id, "Ref"] = pool_id

    ((client_logical_id, client),) = resources_of_type(
        template, "AWS::Cognito::UserPoolClient"
    ).items()
    client_properties = _properties(client, resolver, _CLIENT_FIELDS)
    flows = [*client_properties.pop("ExplicitAuthFlows"), f"ALLOW_{SIGN_IN_FLOW}"]
    client_id = cognito.create_user_pool_client(
        ClientName=resolver.physical_ids[client_logical_id],
        ExplicitAuthFlows=flows,
        **client_properties,
    )["UserPoolClient"]["ClientId"]
    resolver.assigned[client_logical_id, "Ref"] = client_id

    for group in resources_of_type(template, "AWS::Cognito::UserPoolGroup").values():
        cognito.create_group(**_properties(group, resolver, _GROUP_FIELDS))
    admin_only = pool_properties.get("AdminCreateUserConfig", {}).get("AllowAdminCreateUserOnly")
    return UserPool(aws_endpoint, pool_id, client_id, self_sign_up=not admin_only)


class LocalCognito:
    """The stack's Cognito endpoint (moto's, with the differences above) and token shortcut."""

    def __init__(self, pool: UserPool) -> None:
        self.pool = pool
        self._cognito: CognitoIdentityProviderClient = boto3.client(
            "cognito-idp", endpoint_url=pool.endpoint
        )
        # A shortcut sets a password and signs in with it: two for one user must not interleave.
        self._minting = threading.Lock()

    def call(self, target: str, body: bytes) -> tuple[int, bytes]:
        """Status and body of one Cognito API call (``X-Amz-Target``, JSON body)."""
        if not target.startswith(TARGET_PREFIX):
            return 400, _error("UnknownOperationException", f"not a Cognito operation: {target}")
        signing_up = target == f"{TARGET_PREFIX}SignUp" and _field(body, "ClientId") == (
            self.pool.client_id
        )
        if signing_up and not self.pool.self_sign_up:
            return 400, _error(
                "NotAuthorizedException", "SignUp is not permitted for this user pool"
            )
        status, answer = self._forward(target, body)
        if signing_up and status == 200:
            self._cognito.admin_confirm_sign_up(
                UserPoolId=self.pool.pool_id, Username=str(_field(body, "Username"))
            )
            signed_up = json.loads(answer)
            signed_up.pop("CodeDeliveryDetails", None)  # no code is sent
            answer = json.dumps({**signed_up, "UserConfirmed": True}).encode()
        return status, answer

    def _forward(self, target: str, body: bytes) -> tuple[int, bytes]:
        request = urllib.request.Request(  # noqa: S310 - the embedded moto's own http:// URL
            f"{self.pool.endpoint}/",
            data=body,
            headers={"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - as above
                return int(response.status), bytes(response.read())
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def mint(self, user: str, groups: Sequence[str]) -> tuple[str, str]:
        """The sub and an ID token of ``user`` (an email, or a name taken as one), in exactly
        ``groups``: created by an operator's calls if new, given a new random password, then
        signed in through the client as anyone would. Raises botocore's ClientError."""
        email = user if "@" in user else f"{user}@{SHORTCUT_DOMAIN}"
        # Meets the template's password policy with room to spare: every character class, 64
        # characters (moto refuses 99 or more).
        password = "Aa1!" + secrets.token_urlsafe(45)
        pool_id = self.pool.pool_id
        with self._minting:
            with contextlib.suppress(self._cognito.exceptions.UsernameExistsException):
                self._cognito.admin_create_user(
                    UserPoolId=pool_id,
                    Username=email,
                    UserAttributes=[
                        {"Name": "email", "Value": email},
                        {"Name": "email_verified", "Value": "true"},
                    ],
                    MessageAction="SUPPRESS",
                )
            self._cognito.admin_set_user_password(
                UserPoolId=pool_id, Username=email, Password=password, Permanent=True
            )
            self._set_groups(email, groups)
            result = self._cognito.initiate_auth(
                ClientId=self.pool.client_id,
                AuthFlow=SIGN_IN_FLOW,
                AuthParameters={"USERNAME": email, "PASSWORD": password},
            )
        token = result["AuthenticationResult"]["IdToken"]
        sub = jwt.decode(token, options={"verify_signature": False})["sub"]
        return str(sub), token

    def _set_groups(self, email: str, groups: Sequence[str]) -> None:
        pool_id = self.pool.pool_id
        listed = self._cognito.admin_list_groups_for_user(UserPoolId=pool_id, Username=email)
        current = {group["GroupName"] for group in listed["Groups"]}
        for group in set(groups) - current:
            with contextlib.suppress(self._cognito.exceptions.GroupExistsException):
                self._cognito.create_group(UserPoolId=pool_id, GroupName=group)
            self._cognito.admin_add_user_to_group(
                UserPoolId=pool_id, Username=email, GroupName=group
            )
        for group in current - set(groups):
            self._cognito.admin_remove_user_from_group(
                UserPoolId=pool_id, Username=email, GroupName=group
            )


def _field(body: bytes, name: str) -> Any:
    with contextlib.suppress(ValueError, AttributeError):
        return json.loads(body).get(name)
    return None


def _error(kind: str, message: str) -> bytes:
    return json.dumps({"__type": kind, "message": message}).encode()


class JwtAuthorizer:
    """API Gateway's JWT authorizer: the signature (RS256, the key named by ``kid``), ``iss``,
    ``aud`` (or ``client_id`` without one), ``exp``, ``nbf`` and ``iat`` as API Gateway checks
    them; and ``token_use`` = id, which API Gateway does not check (see the README)."""

    def __init__(self, issuer: str, audience: Sequence[str], jwks_url: str) -> None:
        self._issuer = issuer
        self._audience = list(audience)
        self._keys = jwt.PyJWKClient(jwks_url, timeout=5)

    @classmethod
    def of_template(
        cls, template: Mapping[str, Any], resolver: Resolver, aws_endpoint: str
    ) -> JwtAuthorizer:
        """The template's default authorizer, once the user pool exists (its id is the issuer's)."""
        (api,) = resources_of_type(template, "AWS::Serverless::HttpApi").values()
        auth = api["Properties"]["Auth"]
        config = resolver.resolve(
            auth["Authorizers"][auth["DefaultAuthorizer"]]["JwtConfiguration"]
        )
        # API Gateway reads the keys from the issuer's /.well-known/jwks.json; moto serves the
        # same path.
        jwks_url = f"{aws_endpoint}{urlsplit(config['issuer']).path}/.well-known/jwks.json"
        return cls(config["issuer"], config["audience"], jwks_url)

    def claims(self, authorization: str | None) -> dict[str, str] | None:
        """The claims as API Gateway hands them to a function, or None for 401."""
        if not authorization:
            return None
        token = authorization.removeprefix("Bearer ").strip()
        try:
            key = self._keys.get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                issuer=self._issuer,
                options={"verify_aud": False, "require": ["exp", "iss", "token_use"]},
            )
        except jwt.PyJWTError:
            return None
        # API Gateway reads client_id only when there is no aud: a Cognito access token has none.
        audience = claims["aud"] if "aud" in claims else claims.get("client_id")
        if audience not in self._audience or claims["token_use"] != "id":  # noqa: S105 - a claim
            return None
        return {name: claim_string(value) for name, value in claims.items()}


def claim_string(value: Any) -> str:
    """Every claim a string, as API Gateway passes them: arrays as ``[a b]``, JSON booleans."""
    if isinstance(value, list):
        return "[" + " ".join(claim_string(v) for v in value) + "]"
    if isinstance(value, bool):
        return json.dumps(value)
    return str(value)
