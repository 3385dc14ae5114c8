"""Running ``python -m local_stack`` as a child process, the way a developer runs it."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from local_stack.functions import ROOT
from local_stack.processes import stop

T = TypeVar("T")


@dataclass
class RunningProcess:
    api_url: str | None
    aws_endpoint: str
    output: list[str]

    @property
    def url(self) -> str:
        assert self.api_url is not None, "started with --aws-only: there is no API"
        return self.api_url


@contextlib.contextmanager
def local_stack_process(*arguments: str, timeout: float = 60) -> Iterator[RunningProcess]:
    """Starts the stack on free ports and yields it once it prints ``ready``: its API and its
    embedded AWS, or only the latter with ``--aws-only``."""
    command = [sys.executable, "-m", "local_stack", "--port", "0", *arguments]
    # As `make dev` runs it: the tests' in-process switch to botocore does not apply over HTTP.
    env = {name: value for name, value in os.environ.items() if name != "DYNAMODB_CLIENT"}
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: queue.Queue[str] = queue.Queue()
    output: list[str] = []

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            lines.put(line)
        lines.put("")

    threading.Thread(target=pump, daemon=True).start()
    api_url = aws_endpoint = None
    deadline = time.monotonic() + timeout
    try:
        while True:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            if not line:
                raise RuntimeError("local stack exited:\n" + "".join(output))
            found = re.search(r"(API|AWS \(moto\)):\s+(http://\S+)", line)
            if found and found.group(1) == "API":
                api_url = found.group(2)
            elif found:
                aws_endpoint = found.group(2)
            if line.strip() == "ready" and aws_endpoint:
                break
        yield RunningProcess(api_url, aws_endpoint, output)
    finally:
        stop(process)


def multipart_stack(quota_bytes: int) -> contextlib.AbstractContextManager[RunningProcess]:
    """A local stack where files past 6 MiB go multipart, in parts of 5 MiB (S3's least)."""
    mib = 1024 * 1024
    return local_stack_process(
        "--parameter",
        f"DefaultQuotaBytes={quota_bytes}",
        "--parameter",
        f"MultipartThresholdBytes={6 * mib}",
        "--parameter",
        f"MultipartPartBytes={5 * mib}",
    )


def eventually(probe: Callable[[], T], done: Callable[[T], bool], timeout: float = 10) -> T:
    """Polls ``probe`` until ``done`` holds for its result; fails with the last result."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if done(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached in {timeout}s; last: {result!r}")
        time.sleep(0.1)
