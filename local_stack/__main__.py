"""``python -m local_stack``: run the service on this machine until Ctrl-C."""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
import warnings

from local_stack.inventory import DAY_SECONDS
from local_stack.stack import StackOptions, running_stack


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
        use_dynamodb_local=args.dynamodb_local,
        sweep_interval=args.sweep_interval,
        inventory_interval=args.inventory_interval,
        parameters=parameters,
    )
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    with running_stack(options) as stack:
        print(f"quota-uploads is running locally (table in {stack.dynamodb_endpoint})")
        print(f"  web page:  {stack.api_url}/")
        print(f"  API:       {stack.api_url}   (POST /local/token for a token)")
        pool = stack.user_pool
        print(f"  Cognito:   {stack.api_url}/local/cognito   (user pool {pool.pool_id})")
        print(f"  AWS (moto): {stack.aws_endpoint}")
        print("ready", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stopped.wait()
    print("stopped", file=sys.stderr)


def _inventory_interval(text: str) -> float:
    seconds = float(text)
    # A report is named after its minute: two in one minute would share a name.
    if 0 < seconds < 60:
        raise argparse.ArgumentTypeError("at least 60 seconds between reports (or 0: none)")
    return seconds


if __name__ == "__main__":
    main()
