"""A Lambda container's Python runtime as ``sam local invoke`` starts it, without Docker.

Run as a script, in a process whose environment is only what SAM gives the container: the
function's code directory and the layer on the import path (Lambda's /var/task and /opt/python),
the names Docker's ``--add-host`` would write to /etc/hosts resolved as there, then each event of
``argv[1]``'s configuration through the template's handler. It writes to the configuration's
``output`` file (stdout is the function's log), as JSON, each answer (or the name of what the
handler raised, after its traceback, as Lambda's runtime logs it) and every environment variable
the function's own code read: whether it could do without (``.get``, ``in``) or not (``[]``).
"""

from __future__ import annotations

import importlib
import json
import os
import socket
import sys
import traceback
from collections.abc import Iterator, Mapping, MutableMapping
from pathlib import Path
from types import FrameType
from typing import Any

# Reads through Mapping.get or Mapping.__contains__: reads that allow the variable's absence.
_OPTIONAL_READS = {Mapping.get.__code__, Mapping.__contains__.__code__}


class RecordingEnviron(MutableMapping[str, str]):
    """``os.environ``, noting which variables code under ``roots`` reads, and how."""

    def __init__(self, values: dict[str, str], roots: tuple[str, ...]) -> None:
        self._values = values
        self._roots = roots
        # Variable name -> read at least once without a way to do without it.
        self.reads: dict[str, bool] = {}

    def __getitem__(self, name: str) -> str:
        frame: FrameType | None = sys._getframe(1)
        optional = frame is not None and frame.f_code in _OPTIONAL_READS
        if optional and frame is not None:
            frame = frame.f_back
        if frame is not None and frame.f_code.co_filename.startswith(self._roots):
            self.reads[name] = self.reads.get(name, False) or not optional
        return self._values[name]

    def __setitem__(self, name: str, value: str) -> None:
        self._values[name] = value

    def __delitem__(self, name: str) -> None:
        del self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def copy(self) -> dict[str, str]:
        return dict(self._values)


def main() -> None:
    config = json.loads(sys.argv[1])
    del sys.path[0]  # this script's directory: nothing of the tests is in a container
    code, layer = config["code"], config["layer"]
    sys.path[:0] = [code, layer]
    # Only for the context object the tests hand every handler, after everything else.
    sys.path.append(config["root"])
    from local_stack.functions import FakeContext

    real_getaddrinfo = socket.getaddrinfo
    hosts: dict[str, str] = config["hosts"]

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        return real_getaddrinfo(hosts.get(host, host), *args, **kwargs)

    socket.getaddrinfo = getaddrinfo
    recording = RecordingEnviron(dict(os.environ), (str(Path(code)), str(Path(layer))))
    # Replaced, not cleared: every read goes through it, os.getenv's included.
    os.environ = recording  # type: ignore[assignment]  # noqa: B003

    module_name, handler_name = config["handler"].rsplit(".", 1)
    handler = getattr(importlib.import_module(module_name), handler_name)
    answers = []
    for event in config["events"]:
        context = FakeContext(
            config["function"], config["memory"], timeout_seconds=config["timeout"]
        )
        try:
            answers.append({"result": handler(event, context), "raised": None})
        except Exception as error:
            traceback.print_exc()
            answers.append({"result": None, "raised": type(error).__name__})
    Path(config["output"]).write_text(json.dumps({"answers": answers, "reads": recording.reads}))


if __name__ == "__main__":
    main()
