"""A template function run as ``sam local invoke`` runs it, without Docker: a process given only
the environment SAM gives the container, running ``container_runtime.py``."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local_stack.functions import ROOT
from local_stack.sam_local import sam_environment
from local_stack.stack import REGION
from local_stack.template import resources_of_type

RUNTIME = Path(__file__).with_name("container_runtime.py")


@dataclass
class ContainerRun:
    # Per event: what the handler returned, and the name of what it raised.
    answers: list[tuple[Any, str | None]]
    # Every variable the function's code read: True if it read it with no default.
    reads: dict[str, bool]


def declared_variables(template: Mapping[str, Any], function: str) -> set[str]:
    """The variables the template declares for a function: its own and the globals."""
    globals_ = template["Globals"]["Function"].get("Environment", {}).get("Variables", {})
    own = template["Resources"][function]["Properties"].get("Environment", {})
    return set(globals_) | set(own.get("Variables", {}))


def container_environment(
    template: Mapping[str, Any], function: str, env_vars: Mapping[str, str]
) -> dict[str, str]:
    """The container's environment as SAM CLI builds it (``EnvironmentVariables.resolve`` in
    samcli/local/lambdafn/env_vars.py): its own AWS_* variables, with the region it was given
    and the credentials of its own process; then every variable the template declares, as the
    ``--env-vars`` file sets it. Nothing else of the file reaches the function."""
    props = template["Resources"][function]["Properties"]
    globals_ = template["Globals"]["Function"]
    sam = sam_environment({})
    return {
        "AWS_SAM_LOCAL": "true",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(props.get("MemorySize", globals_["MemorySize"])),
        "AWS_LAMBDA_FUNCTION_TIMEOUT": str(props.get("Timeout", globals_["Timeout"])),
        "AWS_LAMBDA_FUNCTION_HANDLER": props.get("Handler", globals_["Handler"]),
        "AWS_LAMBDA_FUNCTION_NAME": function,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"aws/lambda/{function}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "$LATEST",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": sam["AWS_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": sam["AWS_SECRET_ACCESS_KEY"],
        "AWS_ACCOUNT_ID": "123456789012",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        **{name: env_vars[name] for name in declared_variables(template, function)},
    }


def run_in_container(
    template: Mapping[str, Any],
    function: str,
    events: Sequence[dict[str, Any]],
    env_vars: Mapping[str, str],
    hosts: Mapping[str, str],
    scratch: Path,
) -> ContainerRun:
    """Each event in turn through the function's handler, ``hosts`` resolved as
    ``--add-host`` would have the container resolve them."""
    props = template["Resources"][function]["Properties"]
    (layer,) = resources_of_type(template, "AWS::Serverless::LayerVersion").values()
    output = scratch / f"{function}.json"
    environment = container_environment(template, function, env_vars)
    code = str(ROOT / props["CodeUri"])
    config = {
        "function": function,
        "code": code,
        "layer": str(ROOT / layer["Properties"]["ContentUri"]),
        "root": str(ROOT),
        "handler": environment["AWS_LAMBDA_FUNCTION_HANDLER"],
        "memory": int(environment["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"]),
        "timeout": float(environment["AWS_LAMBDA_FUNCTION_TIMEOUT"]),
        "hosts": dict(hosts),
        "events": list(events),
        "output": str(output),
    }
    completed = subprocess.run(
        [sys.executable, str(RUNTIME), json.dumps(config)],
        env=environment,
        cwd=code,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    result = json.loads(output.read_text())
    answers = [(answer["result"], answer["raised"]) for answer in result["answers"]]
    return ContainerRun(answers, result["reads"])
