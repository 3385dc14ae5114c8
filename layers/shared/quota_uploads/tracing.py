"""X-Ray tracing through Powertools' Tracer, paid for only where it is switched on.

Building a Tracer imports the X-Ray SDK even when tracing is disabled: about 230 ms of CPU on the
development machine, more than the API's whole cold init. So a handler is wrapped only when the
``TRACING`` variable (the template's ``TracingMode``) is ``Active``, and returned untouched
otherwise. Once on, the Tracer also patches botocore and ``http.client``, so every AWS call,
including the hand-written DynamoDB client's, is a subsegment.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar, cast

Handler = TypeVar("Handler", bound=Callable[..., Any])


def traced(handler: Handler) -> Handler:
    if os.environ.get("TRACING") != "Active":
        return handler
    from aws_lambda_powertools import Tracer

    # The Tracer's wrapper keeps the handler's signature (functools.wraps), not its type.
    return cast("Handler", Tracer().capture_lambda_handler(handler))
