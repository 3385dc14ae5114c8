"""``sam local invoke`` against the local stack's AWS (``python -m local_stack --aws-only``).

SAM runs a function in a Docker container, where 127.0.0.1 is the container itself: the function
must reach the embedded AWS at an address of this machine as containers see it
(``host.docker.internal`` by default). It learns that address, and everything else the template
gives it, from the ``--env-vars`` file written here: for every function of the template, every
variable the template declares for it, resolved as the local stack resolves them (the table's,
buckets' and topic's local names, the queues' URLs on the container's endpoint), the endpoint
variables pointing at the container's way here.

SAM passes a function only the variables its template declares, whatever the file says
(aws-sam-cli issues #1553, #6145), so the file holds exactly those: ``environment_of`` refuses
to set any other. Credentials and region cannot be declared (Lambda reserves their names): SAM
gives the container its own, so it must run with the local stack's pair (``sam_environment``).

``python -m local_stack.sam_local FUNCTION EVENT [SAM OPTIONS]`` runs ``sam local invoke`` with
the running stack's file (``make sam-invoke``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from local_stack.functions import ROOT, endpoint_variables, environment_of
from local_stack.presigned import LOCAL_CREDENTIALS
from local_stack.stack import REGION, LocalAws
from local_stack.template import Resolver

ENV_VARS = ROOT / ".aws-sam" / "local-env.json"
# Docker Desktop defines this name in every container. Docker Engine on Linux defines it only
# when asked, which `--add-host host.docker.internal:host-gateway` does (Docker 20.10+): the
# host's address on the container's bridge network.
CONTAINER_HOST = "host.docker.internal"
SAM = ROOT / ".venv-sam" / "bin" / "sam"
BUILT_TEMPLATE = ROOT / ".aws-sam" / "build" / "template.yaml"
# What SAM would otherwise hand the container from the developer's own AWS configuration.
_DEVELOPER_CREDENTIALS = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")


def reachable(endpoint: str, host: str) -> str:
    """``endpoint`` as a container reaching this machine as ``host`` calls it."""
    parts = urlsplit(endpoint)
    return urlunsplit(parts._replace(netloc=f"{host}:{parts.port}"))


def env_vars(
    template: Mapping[str, Any],
    resolver: Resolver,
    aws_endpoint: str,
    dynamodb_endpoint: str,
    container_host: str,
) -> dict[str, dict[str, str]]:
    """The ``--env-vars`` document: each function's variables, as seen from a container."""
    endpoint = reachable(aws_endpoint, container_host)
    # A queue's URL names the endpoint it is served on: the container's.
    seen_from_container = dataclasses.replace(resolver, endpoint=endpoint)
    local = endpoint_variables(endpoint, reachable(dynamodb_endpoint, container_host))
    return environment_of(template, seen_from_container, local)


@contextlib.contextmanager
def env_vars_file(aws: LocalAws, container_host: str, path: Path = ENV_VARS) -> Iterator[Path]:
    """The file, for as long as the stack runs: gone once it stops, so that no file is left to
    point SAM at endpoints nothing answers."""
    document = env_vars(
        aws.template, aws.resolver, aws.endpoint, aws.dynamodb_endpoint, container_host
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def sam_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment to run the SAM CLI in: it gives the container its own credentials, so
    the local pair (which the local S3 checks presigned URLs against), never the developer's."""
    ((access_key, secret_key),) = LOCAL_CREDENTIALS.items()
    kept = {name: value for name, value in environ.items() if name not in _DEVELOPER_CREDENTIALS}
    return {
        **kept,
        "AWS_ACCESS_KEY_ID": access_key,
        "AWS_SECRET_ACCESS_KEY": secret_key,
        "SAM_CLI_TELEMETRY": "0",
    }


def invoke_command(
    function: str, event: str, env_vars_path: Path, options: Sequence[str] = ()
) -> list[str]:
    """``sam local invoke`` of the built template against the stack that wrote the file."""
    variables: dict[str, dict[str, str]] = json.loads(env_vars_path.read_text())
    if function not in variables:
        raise KeyError(f"no function {function!r} in template.yaml: {', '.join(variables)}")
    command = [
        str(SAM), "local", "invoke", function,
        "--template", str(BUILT_TEMPLATE),
        "--event", event,
        "--env-vars", str(env_vars_path),
        "--region", REGION,
    ]  # fmt: skip
    hosts = {urlsplit(value).hostname for value in variables[function].values()}
    if CONTAINER_HOST in hosts:
        command += ["--add-host", f"{CONTAINER_HOST}:host-gateway"]
    return command + list(options)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m local_stack.sam_local",
        description="sam local invoke a function of the template against the running"
        ' `python -m local_stack --aws-only` (make dev ARGS="--aws-only"); needs Docker.',
    )
    parser.add_argument("function", help="the function's logical id, e.g. ApiFunction")
    parser.add_argument("event", help="the event file, e.g. events/http_post_uploads.json")
    parser.add_argument("--env-vars", type=Path, default=ENV_VARS, help="the stack's file")
    args, options = parser.parse_known_args(argv)
    if not args.env_vars.exists():
        sys.exit(f'no {args.env_vars}: start the local AWS first, make dev ARGS="--aws-only"')
    command = invoke_command(args.function, args.event, args.env_vars, options)
    print(" ".join(command), file=sys.stderr)
    completed = subprocess.run(command, env=sam_environment(os.environ), check=False)  # noqa: S603
    sys.exit(completed.returncode)


if __name__ == "__main__":
    main()
