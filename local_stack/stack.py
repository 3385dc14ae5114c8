"""The whole service in one process: moto, optionally DynamoDB Local, the API and deliveries.

``running_aws`` is the embedded AWS alone, with the template's resources provisioned: what
``python -m local_stack --aws-only`` serves to functions ``sam local invoke`` runs in containers.
``running_stack`` runs the functions against it as well: their event sources (queues, schedules,
the table's stream) and the HTTP API with its JWT authorizer.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from werkzeug.serving import make_server

from local_stack.atomic_moto import AtomicMotoServer
from local_stack.cognito import JwtAuthorizer, LocalCognito, UserPool, provision_user_pool
from local_stack.deliveries import QueuePoller, Schedule, TopicPrinter, rate_seconds
from local_stack.functions import endpoint_variables, environment_of, load_functions, routes_of
from local_stack.http_api import HttpApi
from local_stack.inventory import DAY_SECONDS, ScheduledReports
from local_stack.moto_streams import patch_moto_streams
from local_stack.presigned import LOCAL_CREDENTIALS
from local_stack.processes import free_port
from local_stack.provision import physical_ids, provision
from local_stack.streams import StreamPoller, StreamSource
from local_stack.template import STACK_NAME, Resolver, load_template, resources_of_type

HOST = "127.0.0.1"
# What a container reaches this machine by is not its loopback (Docker's bridge gateway, say):
# the embedded AWS listens on every interface when containers call it (--aws-only).
ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - only when asked for, see above
LOCAL_ACCESS_KEY = "local"
REGION = "us-east-1"


@dataclass
class StackOptions:
    api_port: int = 3000
    aws_port: int = 0
    # The address the embedded AWS listens on.
    aws_bind: str = HOST
    use_dynamodb_local: bool = False
    # Seconds between sweeps; None keeps the template's schedule.
    sweep_interval: float | None = None
    # Seconds between S3 Inventory reports, the first at start; 0 writes none.
    inventory_interval: float = DAY_SECONDS
    parameters: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class LocalAws:
    """The embedded AWS holding the template's resources, at the endpoints this machine uses."""

    template: Mapping[str, Any]
    resolver: Resolver
    endpoint: str
    dynamodb_endpoint: str
    user_pool: UserPool
    # Where this process's AWS clients go, as whom (set in its environment).
    environment: Mapping[str, str]
    # Set as the stack stops: what runs beside it ends then.
    stop: threading.Event


@dataclass
class RunningStack:
    api_url: str
    aws_endpoint: str
    dynamodb_endpoint: str
    names: Mapping[str, str]
    environment: Mapping[str, str]
    user_pool: UserPool


@contextlib.contextmanager
def running_aws(options: StackOptions, parameters: Mapping[str, Any]) -> Iterator[LocalAws]:
    """moto (and DynamoDB Local) with every resource of the template, S3 Inventory reports on
    their schedule and the topic's notices printed; no function runs."""
    template = load_template()
    aws_port = options.aws_port or free_port(options.aws_bind)
    # A server on every interface answers on loopback too, which this process uses.
    host = HOST if options.aws_bind == ALL_INTERFACES else options.aws_bind
    aws_endpoint = f"http://{host}:{aws_port}"
    names = physical_ids(template, STACK_NAME)
    resolver = Resolver(template, names, parameters, region=REGION, endpoint=aws_endpoint)

    with contextlib.ExitStack() as stack:
        patch_moto_streams()  # or the stream would show changes DynamoDB never records
        moto = AtomicMotoServer(ip_address=options.aws_bind, port=aws_port, verbose=False)
        moto.start()
        stack.callback(moto.stop)
        dynamodb_endpoint = aws_endpoint
        if options.use_dynamodb_local:
            from local_stack.dynamodb_local import running_dynamodb_local

            dynamodb_endpoint = stack.enter_context(running_dynamodb_local())

        environment = {
            **endpoint_variables(aws_endpoint, dynamodb_endpoint),
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            # The pair the local S3 checks presigned URLs against.
            "AWS_ACCESS_KEY_ID": LOCAL_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": LOCAL_CREDENTIALS[LOCAL_ACCESS_KEY],
        }
        os.environ.update(environment)
        provision(
            template, resolver, aws_endpoint=aws_endpoint, dynamodb_endpoint=dynamodb_endpoint
        )
        user_pool = provision_user_pool(template, resolver, aws_endpoint)

        stop = threading.Event()
        stack.callback(stop.set)
        if options.inventory_interval:
            ScheduledReports(aws_endpoint, options.inventory_interval, stop).start()
        for topic in resources_of_type(template, "AWS::SNS::Topic"):
            TopicPrinter(resolver.arn(topic), aws_endpoint, stop).start()
        yield LocalAws(
            template, resolver, aws_endpoint, dynamodb_endpoint, user_pool, environment, stop
        )


@contextlib.contextmanager
def running_stack(options: StackOptions) -> Iterator[RunningStack]:
    api_port = options.api_port or free_port(HOST)
    api_url = f"http://{HOST}:{api_port}"
    # The page is served by the local API, so its origin is the one the bucket must allow; it
    # signs users up, which the template's default (operators create users) would refuse.
    parameters: dict[str, Any] = {
        "AllowedOrigins": [api_url, f"http://localhost:{api_port}"],
        "SelfSignUp": "Enabled",
    }
    parameters.update(options.parameters)

    with running_aws(options, parameters) as aws, contextlib.ExitStack() as stack:
        template, resolver = aws.template, aws.resolver
        local = endpoint_variables(aws.endpoint, aws.dynamodb_endpoint)
        environment = {**_process_environment(template, resolver, local), **aws.environment}
        os.environ.update(environment)

        functions = load_functions(template, resolver, local)
        for function in functions.values():
            for event in function.events.values():
                props = resolver.resolve(event.get("Properties", {}))
                if event["Type"] == "SQS":
                    poller = QueuePoller(
                        function, props["Queue"], aws.endpoint, aws.stop, props.get("BatchSize", 10)
                    )
                    poller.start()
                elif event["Type"] == "Schedule":
                    interval = rate_seconds(props["Schedule"])
                    if function.logical_id == "ReservationSweeperFunction":
                        # Only the sweeper: the hourly drift pass keeps its own pace.
                        interval = options.sweep_interval or interval
                    Schedule(function, interval, aws.stop).start()
                elif event["Type"] == "DynamoDB":
                    source = StreamSource.of(props)
                    StreamPoller(
                        function, source, aws.dynamodb_endpoint, aws.endpoint, aws.stop
                    ).start()

        page_config = {
            name[0].lower() + name[1:]: int(resolver.parameter(name))
            for name in ("UserAlertPercent", "MultipartThresholdBytes", "MultipartPartBytes")
        }
        authorizer = JwtAuthorizer.of_template(template, resolver, aws.endpoint)
        api = HttpApi(
            routes_of(functions), functions, authorizer, LocalCognito(aws.user_pool), page_config
        )
        server = make_server(HOST, api_port, api, threaded=True)
        threading.Thread(target=server.serve_forever, name="http-api", daemon=True).start()
        stack.callback(server.shutdown)
        yield RunningStack(
            api_url,
            aws.endpoint,
            aws.dynamodb_endpoint,
            resolver.physical_ids,
            environment,
            aws.user_pool,
        )


def _process_environment(
    template: Mapping[str, Any], resolver: Resolver, local: Mapping[str, str]
) -> dict[str, str]:
    """One environment for every function, since they share this process."""
    merged: dict[str, str] = {}
    for logical_id, variables in environment_of(template, resolver, local).items():
        for name, value in variables.items():
            if merged.setdefault(name, value) != value:
                raise ValueError(f"{logical_id} sets {name} differently from another function")
    return merged
