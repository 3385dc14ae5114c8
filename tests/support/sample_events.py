"""What events/README.md says each saved event answers, read from its table, and the check."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from local_stack.functions import ROOT

EVENTS = ROOT / "events"
_ROW = re.compile(
    r"^\| `(?P<file>[\w.]+\.json)` \| `(?P<function>\w+)` \|.*\| (?P<answers>[^|]*)\|$"
)
_FIRST_CODE = re.compile(r"`([^`]+)`")


@dataclass(frozen=True)
class Documented:
    """One row of the table: an event file, the function it is for, and its documented answer:
    an API route's status code, another function's whole answer, or the name of the error it
    raises."""

    file: str
    function: str
    answer: Any
    raises: str | None

    @property
    def event(self) -> dict[str, Any]:
        event: dict[str, Any] = json.loads((EVENTS / self.file).read_text())
        return event

    def __str__(self) -> str:
        return f"{self.file}->{self.function}"


@cache
def documented() -> tuple[Documented, ...]:
    rows = []
    for line in (EVENTS / "README.md").read_text().splitlines():
        row = _ROW.match(line)
        if row is None:
            continue
        code = _FIRST_CODE.search(row["answers"])
        assert code is not None, f"no answer in: {line}"
        try:
            answer, raises = json.loads(code.group(1)), None
        except ValueError:
            answer, raises = None, code.group(1)
        rows.append(Documented(row["file"], row["function"], answer, raises))
    return tuple(rows)


def assert_answers_as_documented(row: Documented, result: Any, raised: str | None) -> None:
    """``result`` is the function's return value, ``raised`` the name of what it raised."""
    if row.raises is not None:
        assert raised == row.raises, f"{row}: {result!r}"
        return
    assert raised is None, f"{row} raised {raised}"
    if row.function == "ApiFunction":
        assert result["statusCode"] == row.answer, f"{row}: {result!r}"
        # The route's own answer, not API Gateway's or the resolver's for an unknown route.
        assert json.loads(result.get("body") or "{}").get("message") != "no such route"
    else:
        assert result == row.answer, f"{row}: {result!r}"
