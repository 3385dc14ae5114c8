"""The template's functions, loaded from their code directories and invoked in this process."""

from __future__ import annotations

import importlib.util
import re
import sys
import threading
import time
from collections.abc import Callable, Mapping
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


@dataclass
class Function:
    logical_id: str
    module: ModuleType
    handler: Callable[[dict[str, Any], Any], Any]
    environment: dict[str, str]
    events: dict[str, dict[str, Any]]
    memory: int
    # Lambda runs one event at a time in an environment, and handlers rely on it: Powertools'
    # resolver keeps the current event on the module's app, so two at once would mix requests.
    _one_at_a_time: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def invoke(self, event: dict[str, Any]) -> Any:
        with self._one_at_a_time:
            return self.handler(event, FakeContext(self.logical_id, self.memory))


def load_module(code_uri: str, module_path: str, logical_id: str) -> ModuleType:
    """A function's module, loaded under a name unique to its function."""
    path = ROOT / code_uri / f"{module_path.replace('.', '/')}.py"
    name = f"local_{logical_id}_{module_path.replace('.', '_')}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_handler(code_uri: str, handler: str, logical_id: str) -> Callable[..., Any]:
    module_path, function_name = handler.rsplit(".", 1)
    handler_function: Callable[..., Any] = getattr(
        load_module(code_uri, module_path, logical_id), function_name
    )
    return handler_function


def _mount_layers(template: Mapping[str, Any]) -> None:
    """Puts each layer's code on the import path, as Lambda does under /opt/python."""
    for resource in resources_of_type(template, "AWS::Serverless::LayerVersion").values():
        path = str(ROOT / resource["Properties"]["ContentUri"])
        if path not in sys.path:
            sys.path.insert(0, path)


def environment_of(template: Mapping[str, Any], resolver: Resolver) -> dict[str, dict[str, str]]:
    """Each function's environment: the template's globals overlaid with its own variables."""
    globals_ = template.get("Globals", {}).get("Function", {})
    shared = globals_.get("Environment", {}).get("Variables", {})
    result = {}
    for logical_id, resource in resources_of_type(template, "AWS::Serverless::Function").items():
        own = resource["Properties"].get("Environment", {}).get("Variables", {})
        merged = resolver.resolve({**shared, **own})
        result[logical_id] = {k: str(v) for k, v in merged.items()}
    return result


def load_functions(template: Mapping[str, Any], resolver: Resolver) -> dict[str, Function]:
    """Imports every function's handler. Call after the process environment is set."""
    _mount_layers(template)
    globals_ = template.get("Globals", {}).get("Function", {})
    environments = environment_of(template, resolver)
    functions = {}
    for logical_id, resource in resources_of_type(template, "AWS::Serverless::Function").items():
        props = resource["Properties"]
        module_path, handler = props.get("Handler", globals_.get("Handler")).rsplit(".", 1)
        module = load_module(props["CodeUri"], module_path, logical_id)
        functions[logical_id] = Function(
            logical_id=logical_id,
            module=module,
            handler=getattr(module, handler),
            environment=environments[logical_id],
            events=props.get("Events", {}),
            memory=int(props.get("MemorySize", globals_.get("MemorySize", 128))),
        )
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
