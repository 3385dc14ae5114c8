"""``python -m local_stack``: run the service on this machine until Ctrl-C."""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
import warnings
from pathlib import Path

from local_stack.inventory import DAY_SECONDS
from local_stack.sam_local import CONTAINER_HOST, ENV_VARS, env_vars_file, reachable
from local_stack.stack import ALL_INTERFACES, HOST, StackOptions, running_aws, running_stack


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m local_stack", description=__doc__)
    parser.add_argument("--port", type=int, default=3000, help="API and web page port (0: any)")
    parser.add_argument("--aws-port", type=int, default=0, help="embedded AWS port (0: any)")
    parser.add_argument(
        "--dynamodb-local",
        action="store_true",
        help="keep the table in Amazon DynamoDB Local (atomic under concurrency) instead of moto",
    )
    parser.add_argument(
        "--sweep-interval", type=float, default=None, help="seconds between reservation sweeps"
    )
    parser.add_argument(
        "--inventory-interval",
        type=_inventory_interval,
        default=DAY_SECONDS,
        help="seconds between S3 Inventory reports, the first at start (default a day; 0: none)",
    )
    parser.add_argument(
        "--aws-only",
        action="store_true",
        help="only the embedded AWS with the template's resources, for sam local invoke: no API,"
        " no function runs; writes the --env-vars file (make sam-invoke)",
    )
    parser.add_argument(
        "--bind",
        default=None,
        help=f"address the embedded AWS listens on (default {HOST}; with --aws-only"
        f" {ALL_INTERFACES}, as containers do not reach this machine by its loopback)",
    )
    parser.add_argument(
        "--container-host",
        default=CONTAINER_HOST,
        help="with --aws-only: what containers reach this machine by (default"
        f" {CONTAINER_HOST}): an IP address or a name without dots, which moto's S3 takes as"
        " an endpoint, not as a bucket's virtual host",
    )
    parser.add_argument(
        "--env-vars",
        type=Path,
        default=ENV_VARS,
        help="with --aws-only: where to write the sam local --env-vars file"
        " (default %(default)s; removed when the stack stops)",
    )
    parser.add_argument(
        "--parameter",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a template parameter, e.g. DefaultQuotaBytes=1048576",
    )
    args = parser.parse_args(argv)
    parameters = dict(item.split("=", 1) for item in args.parameter)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    # Read-only requests publish no metrics; Powertools would warn on every one of them.
    warnings.filterwarnings("ignore", "No application metrics to publish")
    options = StackOptions(
        api_port=args.port,
        aws_port=args.aws_port,
        aws_bind=args.bind or (ALL_INTERFACES if args.aws_only else HOST),
        use_dynamodb_local=args.dynamodb_local,
        sweep_interval=args.sweep_interval,
        inventory_interval=args.inventory_interval,
        parameters=parameters,
    )
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    if args.aws_only:
        with (
            running_aws(options, options.parameters) as aws,
            env_vars_file(aws, args.container_host, args.env_vars) as env_vars,
        ):
            print(f"quota-uploads' AWS is running locally (table in {aws.dynamodb_endpoint})")
            print(f"  AWS (moto): {aws.endpoint}   (listening on {options.aws_bind})")
            print(f"  containers: {reachable(aws.endpoint, args.container_host)}")
            print(f"  env vars:   {env_vars}")
            print(
                "  then: make sam-invoke FUNCTION=ApiFunction EVENT=events/http_post_uploads.json"
            )
            _serve(stopped)
    else:
        with running_stack(options) as stack:
            print(f"quota-uploads is running locally (table in {stack.dynamodb_endpoint})")
            print(f"  web page:  {stack.api_url}/")
            print(f"  API:       {stack.api_url}   (POST /local/token for a token)")
            pool = stack.user_pool
            print(f"  Cognito:   {stack.api_url}/local/cognito   (user pool {pool.pool_id})")
            print(f"  AWS (moto): {stack.aws_endpoint}")
            _serve(stopped)
    print("stopped", file=sys.stderr)


def _serve(stopped: threading.Event) -> None:
    print("ready", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        stopped.wait()


def _inventory_interval(text: str) -> float:
    seconds = float(text)
    # A report is named after its minute: two in one minute would share a name.
    if 0 < seconds < 60:
        raise argparse.ArgumentTypeError("at least 60 seconds between reports (or 0: none)")
    return seconds


if __name__ == "__main__":
    main()
