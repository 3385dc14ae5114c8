"""The template's functions, each invoked in execution environments of its own, as Lambda does."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
import uuid
import warnings
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from local_stack.template import TEMPLATE, Resolver, resources_of_type

ROOT = TEMPLATE.parent


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    function: str

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"

    def match(self, method: str, raw_path: str) -> dict[str, str] | None:
        """Path parameters when this route takes the request, as API Gateway would bind them."""
        if method != self.method:
            return None
        pattern = re.sub(r"\\\{(\w+)\\\+\\\}", r"(?P<\1>.+)", re.escape(self.path))
        pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", pattern)
        found = re.fullmatch(pattern, raw_path)
        return None if found is None else found.groupdict()


@dataclass(frozen=True)
class FakeContext:
    function_name: str
    memory_limit_in_mb: int
    function_version: str = "$LATEST"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"
    timeout_seconds: float = 60.0
    started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return int((self.started + self.timeout_seconds - time.monotonic()) * 1000)


# Environments one function may run at once. Lambda starts up to the account's concurrency (1,000
# by default) or the function's reserved concurrency. Here an environment is a Python process of
# 30-55 MB that takes 0.2-0.8 s to start, and the embedded moto answers one request at a time, so
# more would add memory and cold starts but no throughput. Eight is above the six connections a
# browser opens to one origin (the page's parallel requests never queue behind each other) and
# far above the two a concurrency bug needs to show. Past the limit an invocation waits for an
# environment to come free, where Lambda would throttle a synchronous invoke (429
# TooManyRequestsException): the HTTP stand-in never answers 429.
MAX_ENVIRONMENTS = 8


class InvocationError(Exception):
    """The handler raised (its traceback is in the environment's output), as Lambda's
    ``Unhandled`` function error: the environment stays and serves the next event."""


class EnvironmentGone(InvocationError):
    """The environment's process ended during init or an invocation; it is not reused."""


class Environment:
    """One execution environment: a process of its own running the function's module.

    Loads of the module in the stack's process could not be environments: Powertools keeps the
    resolver's ``current_event`` on its ``BaseRouter`` class and the metric sets on its
    ``Metrics`` class, one of each per process, so two loads would still share them (tried: a
    GET /files answered another user's files). A process gives each environment its own module
    globals, its own import of the layer (``quota_uploads.wiring``'s cached clients) and of the
    libraries, and its own garbage collector, which the handlers freeze after init: as Lambda
    does. Events and results travel as JSON, as they do to and from Lambda.
    """

    def __init__(self, function: Function, number: int) -> None:
        self.number = number
        began = time.perf_counter()
        ours, theirs = socket.socketpair()
        config = {
            "channel": theirs.fileno(),
            "codeUri": function.code_uri,
            "handler": function.handler_path,
            "logicalId": function.logical_id,
            "number": number,
            "memory": function.memory,
            "importPaths": list(function.import_paths),
            "warningFilters": _warning_filters(),
        }
        with theirs, contextlib.ExitStack() as on_failure:
            on_failure.callback(ours.close)
            self.process = subprocess.Popen(  # noqa: S603 - this interpreter, our own code
                [sys.executable, "-u", "-c", _WORKER, json.dumps(config)],
                cwd=ROOT,
                # The process environment, as every function shares it (stack.py), and the
                # function's own variables over it.
                env={**os.environ, **function.environment},
                stdin=subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),),
            )
            on_failure.pop_all()
        self._channel = ours
        self._stream = ours.makefile("rwb")
        try:
            ready = self._receive()
        except EnvironmentGone:
            self.close()
            raise
        if "initError" in ready:
            self.close()
            raise InvocationError(f"{function.logical_id} failed during init: {ready['initError']}")
        self.init_ms: float = ready["initMs"]
        self.cold_start_ms = (time.perf_counter() - began) * 1000

    @property
    def pid(self) -> int:
        return self.process.pid

    def invoke(self, event: Any, context: FakeContext) -> Any:
        request = {
            "event": event,
            "requestId": context.aws_request_id,
            "deadline": context.get_remaining_time_in_millis(),
        }
        line = json.dumps(request).encode() + b"\n"  # before anything is sent: may raise
        try:
            self._stream.write(line)
            self._stream.flush()
        except (OSError, ValueError) as error:
            raise EnvironmentGone(f"env {self.number} is gone: {error}") from error
        answer = self._receive()
        if "errorType" in answer:
            raise InvocationError(f"{answer['errorType']}: {answer['errorMessage']}")
        return answer["result"]

    def _receive(self) -> dict[str, Any]:
        try:
            line = self._stream.readline()
        except (OSError, ValueError) as error:  # ValueError: closed meanwhile (Function.close)
            raise EnvironmentGone(f"env {self.number} is gone: {error}") from error
        if not line:
            code = self.process.wait()
            raise EnvironmentGone(f"env {self.number} exited with status {code}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def close(self) -> None:
        """Ends the process: closing its channel is its signal to exit."""
        with contextlib.suppress(OSError):
            self._stream.close()
        self._channel.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass(eq=False)
class Function:
    """A template function and its pool of execution environments, as Lambda runs them.

    An environment handles one event at a time. Concurrent invocations get concurrent
    environments, started on demand up to ``max_environments``; a free one is reused warmest
    first (LIFO), and starting one is a cold start, reported once with an ``INIT`` line. An
    environment whose process ends is replaced by the next one started.

    Environment variables are still the stack's: every environment inherits the process
    environment, where ``stack._process_environment`` put every function's variables, so a
    function sees the others' too (the function's own are laid over them, identical).
    """

    logical_id: str
    code_uri: str
    handler_path: str
    environment: dict[str, str]
    events: dict[str, dict[str, Any]]
    memory: int
    timeout: float = 60.0
    max_environments: int = MAX_ENVIRONMENTS
    # Where the environments import from besides the standard places: the layers' code.
    import_paths: tuple[str, ...] = ()
    report: Callable[[str], None] = field(default=print, repr=False)
    _idle: list[Environment] = field(default_factory=list, init=False, repr=False)
    _live: list[Environment] = field(default_factory=list, init=False, repr=False)
    _starting: int = field(default=0, init=False, repr=False)
    _numbered: int = field(default=0, init=False, repr=False)
    _free: threading.Condition = field(default_factory=threading.Condition, init=False, repr=False)

    @property
    def module(self) -> ModuleType:
        """The function's code loaded in this process, for reading (the OpenAPI document), never
        for invoking: events go to environments."""
        module_path = self.handler_path.rsplit(".", 1)[0]
        return load_module(self.code_uri, module_path, self.logical_id)

    @property
    def environments(self) -> list[Environment]:
        """The live environments, in the order they started."""
        with self._free:
            return list(self._live)

    def invoke(self, event: Any) -> Any:
        context = FakeContext(
            self.logical_id,
            self.memory,
            aws_request_id=str(uuid.uuid4()),
            timeout_seconds=self.timeout,
        )
        environment = self._acquire()
        try:
            result = environment.invoke(event, context)
        except EnvironmentGone:
            self._retire(environment)
            raise
        except BaseException:
            self._release(environment)
            raise
        self._release(environment)
        return result

    def start_environment(self) -> Environment:
        """Starts an environment ahead of need (the stack does one per function at startup)."""
        environment = self._acquire()
        self._release(environment)
        return environment

    def close(self) -> None:
        """Ends every environment; invocations still running end with ``EnvironmentGone``."""
        for environment in self.environments:
            environment.close()

    def _acquire(self) -> Environment:
        with self._free:
            while not self._idle and len(self._live) + self._starting >= self.max_environments:
                self._free.wait()
            if self._idle:
                return self._idle.pop()  # the most recently used: the warmest
            self._starting += 1
            self._numbered += 1  # never reused, so a replaced environment is told apart
            number = self._numbered
        try:
            environment = Environment(self, number)
        except BaseException:
            with self._free:
                self._starting -= 1
                self._free.notify()
            raise
        with self._free:
            self._starting -= 1
            self._live.append(environment)
        self.report(
            f"INIT {self.logical_id} env {number} (cold start, {environment.cold_start_ms:.0f} ms"
            f" of which {environment.init_ms:.0f} ms the handler's init)"
        )
        return environment

    def _release(self, environment: Environment) -> None:
        with self._free:
            self._idle.append(environment)
            self._free.notify()

    def _retire(self, environment: Environment) -> None:
        environment.close()
        with self._free:
            self._live.remove(environment)
            self._free.notify()


# An environment's process: loads the handler, says it is ready, then answers one event at a
# time, until the stack closes the channel (or exits, which closes it too).
_WORKER = "from local_stack.functions import serve_environment; serve_environment()"


def _warning_filters() -> list[list[Any]]:
    """This process's warning filters (``python -m local_stack`` silences some), to pass on."""
    return [
        [
            action,
            # Patterns, or (from -W and PYTHONWARNINGS) their text.
            getattr(message, "pattern", message) or "",
            category.__module__,
            category.__qualname__,
            getattr(module, "pattern", module) or "",
            lineno,
        ]
        for action, message, category, module, lineno in warnings.filters
        if isinstance(category, type)
    ]


def _apply_warning_filters(filters: list[list[Any]]) -> None:
    """The stack's filters, in its order, for the categories this process can import."""
    kept = []
    for action, message, category_module, category_name, module, lineno in filters:
        category = getattr(importlib.import_module(category_module), category_name, None)
        if isinstance(category, type) and issubclass(category, Warning):
            kept.append((action, message, category, module, lineno))
    warnings.resetwarnings()
    for action, message, category, module, lineno in reversed(kept):
        warnings.filterwarnings(action, message, category, module, lineno)


def serve_environment() -> None:
    """The body of an environment's process (``_WORKER``): its configuration is ``argv[1]``."""
    # Ctrl-C in a terminal reaches the whole process group: the stack ends its environments.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    config = json.loads(sys.argv[1])
    sys.path[:0] = config["importPaths"]
    _apply_warning_filters(config["warningFilters"])
    with (
        socket.socket(fileno=config["channel"]) as channel,
        channel.makefile("rwb") as stream,
    ):

        def send(answer: dict[str, Any]) -> None:
            stream.write(json.dumps(answer).encode() + b"\n")
            stream.flush()

        module_path, handler_name = config["handler"].rsplit(".", 1)
        began = time.perf_counter()
        try:
            module = load_module(
                config["codeUri"], module_path, config["logicalId"], config["number"]
            )
            handler = getattr(module, handler_name)
        except Exception as error:
            traceback.print_exc()
            send({"initError": f"{type(error).__name__}: {error}"})
            return
        send({"initMs": (time.perf_counter() - began) * 1000})
        for line in stream:
            request = json.loads(line)
            context = FakeContext(
                config["logicalId"],
                config["memory"],
                aws_request_id=request["requestId"],
                timeout_seconds=request["deadline"] / 1000,
            )
            try:
                result = handler(request["event"], context)
                answer = json.dumps({"result": result})  # Lambda's serialisation: may raise
            except Exception as error:
                # Lambda's runtime logs the error with its stack, then answers with it.
                traceback.print_exc()
                answer = json.dumps({"errorType": type(error).__name__, "errorMessage": str(error)})
            stream.write(answer.encode() + b"\n")
            stream.flush()


def load_module(
    code_uri: str, module_path: str, logical_id: str, environment: int | None = None
) -> ModuleType:
    """A function's module, loaded under a name unique to its function.

    With ``environment``, a fresh load for that execution environment, in its process
    (``local_<LogicalId>_app_<n>``); without, one load that every caller in this process shares
    (the handler tests, the OpenAPI document), made on first use.
    """
    path = ROOT / code_uri / f"{module_path.replace('.', '/')}.py"
    name = f"local_{logical_id}_{module_path.replace('.', '_')}"
    if environment is not None:
        name = f"{name}_{environment}"
    elif name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def load_handler(code_uri: str, handler: str, logical_id: str) -> Callable[..., Any]:
    module_path, function_name = handler.rsplit(".", 1)
    handler_function: Callable[..., Any] = getattr(
        load_module(code_uri, module_path, logical_id), function_name
    )
    return handler_function


def _mount_layers(template: Mapping[str, Any]) -> list[str]:
    """Puts each layer's code on the import path, as Lambda does under /opt/python; returns it."""
    paths = []
    for resource in resources_of_type(template, "AWS::Serverless::LayerVersion").values():
        path = str(ROOT / resource["Properties"]["ContentUri"])
        paths.append(path)
        if path not in sys.path:
            sys.path.insert(0, path)
    return paths


def endpoint_variables(aws_endpoint: str, dynamodb_endpoint: str) -> dict[str, str]:
    """The variables that point the functions at a local AWS instead of AWS's own endpoints."""
    return {
        "AWS_ENDPOINT_URL": aws_endpoint,
        "AWS_ENDPOINT_URL_DYNAMODB": dynamodb_endpoint,
        # A bucket's virtual host (<bucket>.127.0.0.1) does not resolve; its path does.
        "S3_ADDRESSING_STYLE": "path",
    }


def environment_of(
    template: Mapping[str, Any],
    resolver: Resolver,
    local: Mapping[str, str] | None = None,
) -> dict[str, dict[str, str]]:
    """Each function's environment: the template's globals overlaid with its own variables, and
    ``local`` values over variables the template declares.

    Only declared variables may be replaced, the one way ``sam local invoke --env-vars`` can set
    a variable too (SAM passes a function only what its template declares): a local value the
    template does not declare is refused rather than silently missing under SAM.
    """
    globals_ = template.get("Globals", {}).get("Function", {})
    shared = globals_.get("Environment", {}).get("Variables", {})
    local = local or {}
    result = {}
    for logical_id, resource in resources_of_type(template, "AWS::Serverless::Function").items():
        own = resource["Properties"].get("Environment", {}).get("Variables", {})
        merged = resolver.resolve({**shared, **own})
        undeclared = sorted(set(local) - set(merged))
        if undeclared:
            raise KeyError(f"{logical_id} declares no {', '.join(undeclared)} in template.yaml")
        result[logical_id] = {k: str(v) for k, v in merged.items()} | dict(local)
    return result


def load_functions(
    template: Mapping[str, Any],
    resolver: Resolver,
    local: Mapping[str, str],
    max_environments: int = MAX_ENVIRONMENTS,
) -> dict[str, Function]:
    """Every function, with one environment each started: call after the process environment
    is set. One each, so that a failing init stops the stack at startup and the first event
    finds its environment warm; more start as concurrent invocations need them. ``local``
    replaces declared variables, as for ``environment_of``."""
    layers = tuple(_mount_layers(template))
    globals_ = template.get("Globals", {}).get("Function", {})
    environments = environment_of(template, resolver, local)
    functions = {}
    for logical_id, resource in resources_of_type(template, "AWS::Serverless::Function").items():
        props = resource["Properties"]
        functions[logical_id] = Function(
            logical_id=logical_id,
            code_uri=props["CodeUri"],
            handler_path=props.get("Handler", globals_.get("Handler")),
            environment=environments[logical_id],
            events=props.get("Events", {}),
            memory=int(props.get("MemorySize", globals_.get("MemorySize", 128))),
            timeout=float(props.get("Timeout", globals_.get("Timeout", 3))),
            max_environments=max_environments,
            import_paths=layers,
        )
    # Side by side: each is a process's start, mostly imports.
    with ThreadPoolExecutor(max_workers=len(functions) or 1) as pool:
        for started in [pool.submit(f.start_environment) for f in functions.values()]:
            started.result()
    return functions


def routes_of(functions: Mapping[str, Function]) -> list[Route]:
    routes = [
        Route(event["Properties"]["Method"].upper(), event["Properties"]["Path"], logical_id)
        for logical_id, function in functions.items()
        for event in function.events.values()
        if event["Type"] == "HttpApi"
    ]
    # API Gateway prefers the most specific route: literal paths before greedy ones.
    return sorted(routes, key=lambda r: ("+}" in r.path, r.path.count("{"), -len(r.path)))
