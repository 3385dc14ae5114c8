"""A function's execution environments: own globals each, started on demand, reused warm."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from local_stack.functions import EnvironmentGone, Function, InvocationError

PROBE = """
import os, time

invocations = 0  # a module global: each environment must count its own

def handler(event, context):
    global invocations
    invocations += 1
    time.sleep(event.get("hold", 0))
    if event.get("fail"):
        raise ValueError("asked to fail")
    if event.get("crash"):
        os._exit(3)
    return {
        "pid": os.getpid(),
        "module": __name__,
        "invocations": invocations,
        "requestId": context.aws_request_id,
        "remainingMs": context.get_remaining_time_in_millis(),
        "variable": os.environ.get("PROBE_VARIABLE"),
        "event": event,
    }
"""


@pytest.fixture
def code(tmp_path: Path) -> Path:
    (tmp_path / "app.py").write_text(PROBE)
    return tmp_path


class Probe:
    def __init__(self, code: Path, limit: int) -> None:
        self.reports: list[str] = []
        self.function = Function(
            logical_id="Probe",
            code_uri=str(code),
            handler_path="app.handler",
            environment={"PROBE_VARIABLE": "set"},
            events={},
            memory=256,
            timeout=30,
            max_environments=limit,
            report=self.reports.append,
        )

    def invoke(self, **event: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.function.invoke(event)
        return result

    def at_once(self, count: int, **event: Any) -> list[dict[str, Any]]:
        with ThreadPoolExecutor(max_workers=count) as pool:
            return list(pool.map(lambda _: self.invoke(**event), range(count)))

    def init_lines(self) -> list[str]:
        return sorted(line.split(" (")[0] for line in self.reports)


@pytest.fixture
def probe(code: Path) -> Iterator[Probe]:
    made = Probe(code, limit=2)
    yield made
    made.function.close()


def test_concurrent_events_run_in_environments_with_their_own_globals(probe: Probe) -> None:
    first, second = probe.at_once(2, hold=0.5)

    assert first["pid"] != second["pid"]
    assert {first["module"], second["module"]} == {"local_Probe_app_1", "local_Probe_app_2"}
    # Each environment's global counted its own event only.
    assert first["invocations"] == second["invocations"] == 1
    assert first["requestId"] != second["requestId"]
    assert 0 < first["remainingMs"] <= 30_000
    assert first["variable"] == "set"
    # A cold start each, reported once, with its duration.
    assert probe.init_lines() == ["INIT Probe env 1", "INIT Probe env 2"]
    assert all(" ms" in line for line in probe.reports)


def test_a_free_environment_is_reused_warmest_first_without_a_cold_start(probe: Probe) -> None:
    probe.at_once(2, hold=0.2)
    reports = len(probe.reports)
    # The warmest is the one released last: it serves every event of a sequential run.
    last = probe.function._idle[-1].pid
    sequential = [probe.invoke() for _ in range(5)]

    assert {r["pid"] for r in sequential} == {last}
    assert [r["invocations"] for r in sequential] == [2, 3, 4, 5, 6]
    assert len(probe.reports) == reports


def test_past_the_limit_an_event_waits_for_a_free_environment(probe: Probe) -> None:
    began = time.monotonic()
    results = probe.at_once(4, hold=0.3)

    assert len({r["pid"] for r in results}) == 2
    assert time.monotonic() - began >= 0.6  # two rounds of two
    assert probe.init_lines() == ["INIT Probe env 1", "INIT Probe env 2"]


def test_a_handler_error_keeps_the_environment(probe: Probe) -> None:
    before = probe.invoke()
    with pytest.raises(InvocationError, match="ValueError: asked to fail"):
        probe.invoke(fail=True)

    after = probe.invoke()
    assert after["pid"] == before["pid"]
    assert after["invocations"] == 3


def test_an_environment_that_exits_is_replaced_by_a_new_one(probe: Probe) -> None:
    before = probe.invoke()
    with pytest.raises(EnvironmentGone, match="env 1 exited with status 3"):
        probe.invoke(crash=True)

    after = probe.invoke()
    assert after["pid"] != before["pid"]
    assert after["module"] == "local_Probe_app_2"
    assert after["invocations"] == 1
    assert [e.number for e in probe.function.environments] == [2]
    assert probe.init_lines() == ["INIT Probe env 1", "INIT Probe env 2"]


def test_an_init_failure_is_raised_and_starts_nothing(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("raise RuntimeError('no config')\n")
    broken = Probe(tmp_path, limit=1)

    with pytest.raises(InvocationError, match="failed during init: RuntimeError: no config"):
        broken.invoke()
    assert broken.function.environments == []
    assert broken.reports == []


def test_many_threads_share_a_small_pool_and_every_answer_is_their_own(probe: Probe) -> None:
    """Events racing for two environments: each gets the answer to its own request."""
    answers: dict[int, Any] = {}
    lock = threading.Lock()

    def call(n: int) -> None:
        result = probe.function.invoke({"n": n})
        with lock:
            answers[n] = result

    threads = [threading.Thread(target=call, args=(n,)) for n in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert all(answers[n]["event"] == {"n": n} for n in range(40))
    assert len({a["requestId"] for a in answers.values()}) == 40
    assert len({a["pid"] for a in answers.values()}) <= 2
    # Per environment, its 40 - k and k events were counted 1, 2, ... with no gaps.
    for pid in {a["pid"] for a in answers.values()}:
        counts = sorted(a["invocations"] for a in answers.values() if a["pid"] == pid)
        assert counts == list(range(1, len(counts) + 1))
