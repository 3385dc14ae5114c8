"""The whole service in one process: moto, optionally DynamoDB Local, the API and deliveries."""

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
from local_stack.functions import environment_of, load_functions, routes_of
from local_stack.http_api import HttpApi
from local_stack.inventory import DAY_SECONDS, ScheduledReports
from local_stack.moto_streams import patch_moto_streams
from local_stack.presigned import LOCAL_CREDENTIALS
from local_stack.processes import free_port
from local_stack.provision import physical_ids, provision
from local_stack.streams import StreamPoller, StreamSource
from local_stack.template import Resolver, load_template, resources_of_type

HOST = "127.0.0.1"
LOCAL_ACCESS_KEY = "local"
REGION = "us-east-1"


@dataclass
class StackOptions:
    api_port: int = 3000
    aws_port: int = 0
    use_dynamodb_local: bool = False
    # Seconds between sweeps; None keeps the template's schedule.
    sweep_interval: float | None = None
    # Seconds between S3 Inventory reports, the first at start; 0 writes none.
    inventory_interval: float = DAY_SECONDS
    parameters: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class RunningStack:
    api_url: str
    aws_endpoint: str
    dynamodb_endpoint: str
    names: Mapping[str, str]
    environment: Mapping[str, str]
    user_pool: UserPool


@contextlib.contextmanager
def running_stack(options: StackOptions) -> Iterator[RunningStack]:
    template = load_template()
    api_port = options.api_port or free_port(HOST)
    aws_port = options.aws_port or free_port(HOST)
    api_url = f"http://{HOST}:{api_port}"
    aws_endpoint = f"http://{HOST}:{aws_port}"
    names = physical_ids(template, "quota-uploads-local")
    # The page is served by the local API, so its origin is the one the bucket must allow; it
    # signs users up, which the template's default (operators create users) would refuse.
    parameters: dict[str, Any] = {
        "AllowedOrigins": [api_url, f"http://localhost:{api_port}"],
        "SelfSignUp": "Enabled",
    }
    parameters.update(options.parameters)
    resolver = Resolver(template, names, parameters, region=REGION, endpoint=aws_endpoint)

    with contextlib.ExitStack() as stack:
        patch_moto_streams()  # or the stream would show changes DynamoDB never records
        moto = AtomicMotoServer(ip_address=HOST, port=aws_port, verbose=False)
        moto.start()
        stack.callback(moto.stop)
        dynamodb_endpoint = aws_endpoint
        if options.use_dynamodb_local:
            from local_stack.dynamodb_local import running_dynamodb_local

            dynamodb_endpoint = stack.enter_context(running_dynamodb_local())

        environment = _process_environment(template, resolver, aws_endpoint, dynamodb_endpoint)
        os.environ.update(environment)
        provision(
            template, resolver, aws_endpoint=aws_endpoint, dynamodb_endpoint=dynamodb_endpoint
        )
        user_pool = provision_user_pool(template, resolver, aws_endpoint)

        functions = load_functions(template, resolver)
        stop = threading.Event()
        stack.callback(stop.set)
        for function in functions.values():
            for event in function.events.values():
                props = resolver.resolve(event.get("Properties", {}))
                if event["Type"] == "SQS":
                    poller = QueuePoller(
                        function, props["Queue"], aws_endpoint, stop, props.get("BatchSize", 10)
                    )
                    poller.start()
                elif event["Type"] == "Schedule":
                    interval = rate_seconds(props["Schedule"])
                    if function.logical_id == "ReservationSweeperFunction":
                        # Only the sweeper: the hourly drift pass keeps its own pace.
                        interval = options.sweep_interval or interval
                    Schedule(function, interval, stop).start()
                elif event["Type"] == "DynamoDB":
                    source = StreamSource.of(props)
                    StreamPoller(function, source, dynamodb_endpoint, aws_endpoint, stop).start()

        if options.inventory_interval:
            ScheduledReports(aws_endpoint, options.inventory_interval, stop).start()
        for topic in resources_of_type(template, "AWS::SNS::Topic"):
            TopicPrinter(resolver.arn(topic), aws_endpoint, stop).start()

        page_config = {
            name[0].lower() + name[1:]: int(resolver.parameter(name))
            for name in ("UserAlertPercent", "MultipartThresholdBytes", "MultipartPartBytes")
        }
        authorizer = JwtAuthorizer.of_template(template, resolver, aws_endpoint)
        api = HttpApi(
            routes_of(functions), functions, authorizer, LocalCognito(user_pool), page_config
        )
        server = make_server(HOST, api_port, api, threaded=True)
        threading.Thread(target=server.serve_forever, name="http-api", daemon=True).start()
        stack.callback(server.shutdown)
        yield RunningStack(api_url, aws_endpoint, dynamodb_endpoint, names, environment, user_pool)


def _process_environment(
    template: Mapping[str, Any], resolver: Resolver, aws_endpoint: str, dynamodb_endpoint: str
) -> dict[str, str]:
    """One environment for every function, since they share this process."""
    merged: dict[str, str] = {}
    for logical_id, variables in environment_of(template, resolver).items():
        for name, value in variables.items():
            if merged.setdefault(name, value) != value:
                raise ValueError(f"{logical_id} sets {name} differently from another function")
    merged.update(
        AWS_ENDPOINT_URL=aws_endpoint,
        AWS_ENDPOINT_URL_DYNAMODB=dynamodb_endpoint,
        AWS_DEFAULT_REGION=REGION,
        AWS_REGION=REGION,
        # The pair the local S3 checks presigned URLs against.
        AWS_ACCESS_KEY_ID=LOCAL_ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=LOCAL_CREDENTIALS[LOCAL_ACCESS_KEY],
        S3_ADDRESSING_STYLE="path",
    )
    return merged
