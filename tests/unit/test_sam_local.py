"""The --env-vars file and the ``sam local invoke`` command, from the template alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from local_stack.functions import environment_of
from local_stack.presigned import LOCAL_CREDENTIALS
from local_stack.provision import physical_ids
from local_stack.sam_local import (
    BUILT_TEMPLATE,
    CONTAINER_HOST,
    env_vars,
    invoke_command,
    reachable,
    sam_environment,
)
from local_stack.template import STACK_NAME, Resolver
from tests.support.sam_container import declared_variables

ENDPOINT = "http://127.0.0.1:4566"


@pytest.fixture
def resolver(template: dict[str, Any]) -> Resolver:
    return Resolver(template, physical_ids(template, STACK_NAME), endpoint=ENDPOINT)


def test_the_file_holds_what_the_template_declares_with_endpoints_containers_reach(
    template: dict[str, Any], resolver: Resolver
) -> None:
    document = env_vars(template, resolver, ENDPOINT, "http://127.0.0.1:8000", CONTAINER_HOST)
    for function, variables in document.items():
        assert set(variables) == declared_variables(template, function)
        assert variables["AWS_ENDPOINT_URL"] == "http://host.docker.internal:4566"
        assert variables["AWS_ENDPOINT_URL_DYNAMODB"] == "http://host.docker.internal:8000"
        assert variables["S3_ADDRESSING_STYLE"] == "path"
    # A queue's URL is where containers reach it; the stack's own resolver is left as it was.
    assert document["AuditFunction"]["AUDIT_QUEUE_URL"].startswith("http://host.docker.internal:")
    assert resolver.ref("AuditQueue").startswith(ENDPOINT)


def test_a_local_value_for_a_variable_the_template_does_not_declare_is_refused(
    template: dict[str, Any], resolver: Resolver
) -> None:
    # SAM would drop it without a word; the functions would then call AWS itself.
    with pytest.raises(KeyError, match="declares no AWS_ENDPOINT_URL_SQS"):
        environment_of(template, resolver, {"AWS_ENDPOINT_URL_SQS": ENDPOINT})


def test_an_endpoint_keeps_its_port_under_the_containers_name_for_this_machine() -> None:
    assert reachable("http://127.0.0.1:4566", "192.168.1.9") == "http://192.168.1.9:4566"


def test_sam_runs_with_the_local_pair_never_the_developers_credentials() -> None:
    environment = sam_environment(
        {"AWS_PROFILE": "prod", "AWS_SESSION_TOKEN": "t", "AWS_ACCESS_KEY_ID": "AKIA", "HOME": "/h"}
    )
    ((access_key, secret_key),) = LOCAL_CREDENTIALS.items()
    assert environment == {
        "HOME": "/h",
        "AWS_ACCESS_KEY_ID": access_key,
        "AWS_SECRET_ACCESS_KEY": secret_key,
        "SAM_CLI_TELEMETRY": "0",
    }


def write_env_vars(path: Path, endpoint: str) -> Path:
    path.write_text(json.dumps({"ApiFunction": {"AWS_ENDPOINT_URL": endpoint, "TABLE_NAME": "t"}}))
    return path


def test_the_command_invokes_the_built_template_with_the_file(tmp_path: Path) -> None:
    path = write_env_vars(tmp_path / "env.json", "http://host.docker.internal:4566")
    command = invoke_command("ApiFunction", "events/e.json", path, ["--debug"])
    assert command[1:] == [
        "local", "invoke", "ApiFunction",
        "--template", str(BUILT_TEMPLATE),
        "--event", "events/e.json",
        "--env-vars", str(path),
        "--region", "us-east-1",
        # Docker Engine on Linux defines the name only when asked.
        "--add-host", "host.docker.internal:host-gateway",
        "--debug",
    ]  # fmt: skip


def test_an_address_given_for_containers_needs_no_host_mapping(tmp_path: Path) -> None:
    path = write_env_vars(tmp_path / "env.json", "http://172.17.0.1:4566")
    assert "--add-host" not in invoke_command("ApiFunction", "events/e.json", path)


def test_a_function_the_template_does_not_have_is_named_as_such(tmp_path: Path) -> None:
    path = write_env_vars(tmp_path / "env.json", "http://172.17.0.1:4566")
    with pytest.raises(KeyError, match=r"no function 'Api' in template\.yaml: ApiFunction"):
        invoke_command("Api", "events/e.json", path)
