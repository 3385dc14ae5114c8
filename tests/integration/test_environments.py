"""Concurrent requests over real HTTP run in concurrent environments, and never mix.

Each function invocation gets an execution environment of its own (local_stack.functions): here
many users fire their requests at the same instant, and every answer must be its caller's.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import quote

import pytest
import requests

from local_stack.functions import MAX_ENVIRONMENTS
from tests.support.local_stack_process import RunningProcess, eventually, local_stack_process
from tests.support.tokens import local_token

pytestmark = pytest.mark.integration

USERS = 8
REQUESTS_PER_USER = 25  # 200 at once
ROUNDS = 10
# Grants of a prime size each, larger than a user's grant count: a reserved total that is a
# multiple of one user's size is no sum of another's.
GRANT_SIZES = (251, 257, 263, 269, 271, 277, 281, 283)
QUOTA = 1_000_000  # user i's quota is QUOTA + i, so a usage answer names its user


@pytest.fixture(scope="module")
def stack() -> Iterator[RunningProcess]:
    with local_stack_process() as running:
        yield running


@dataclass
class User:
    api: str
    sub: str
    token: str
    quota: int
    grant_size: int
    file_key: str = ""
    file_size: int = 0

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}"}
        return requests.request(method, f"{self.api}{path}", headers=headers, timeout=30, **kwargs)

    def grant(self) -> requests.Response:
        body = {"filename": "f.bin", "size": self.grant_size, "contentType": "text/plain"}
        return self.request("POST", "/uploads", json=body)

    def usage(self) -> dict[str, Any]:
        answer = self.request("GET", "/usage")
        assert answer.status_code == 200, answer.text
        usage: dict[str, Any] = answer.json()
        return usage

    def files(self) -> list[str]:
        answer = self.request("GET", "/files")
        assert answer.status_code == 200, answer.text
        return [f["key"] for f in answer.json()["files"]]


def users_with_one_file(api: str, prefix: str, count: int) -> list[User]:
    """``count`` users, each with a quota of its own and one stored file of its own size."""
    root = local_token(api, "root", ["admins"])
    admin = User(api, root.sub, root.token, 0, 0)
    users = []
    for i in range(count):
        identity = local_token(api, f"{prefix}-{i}")
        user = User(api, identity.sub, identity.token, QUOTA + i, GRANT_SIZES[i])
        answer = admin.request(
            "PUT", f"/admin/users/{user.sub}/quota", json={"quotaBytes": user.quota}
        )
        assert answer.status_code == 200, answer.text
        data = b"x" * (10 + i)
        body = {"filename": "mine.bin", "size": len(data), "contentType": "text/plain"}
        grant = user.request("POST", "/uploads", json=body).json()
        stored = requests.put(grant["url"], data=data, headers=grant["headers"], timeout=10)
        assert stored.status_code == 200, stored.text
        user.file_key, user.file_size = grant["key"], len(data)
        users.append(user)
    for user in users:
        eventually(user.usage, partial(stored_all_of, user))
    return users


def stored_all_of(user: User, usage: dict[str, Any]) -> bool:
    return bool(usage["usedBytes"] == user.file_size)


Call = Callable[[], requests.Response]


def all_at_once(pool: ThreadPoolExecutor, calls: list[Call]) -> list[requests.Response]:
    """Every call started at the same instant, one thread each; their answers in order."""
    start = threading.Barrier(len(calls))

    def run(call: Call) -> requests.Response:
        start.wait()
        return call()

    return [future.result() for future in [pool.submit(run, call) for call in calls]]


def call_of(kind: str, user: User, users: list[User]) -> Call:
    if kind == "grant":
        return user.grant
    if kind == "delete":
        # The next user's file: every user is someone's victim.
        victim = users[(users.index(user) + 1) % len(users)]
        return lambda: user.request("DELETE", f"/files/{quote(victim.file_key, safe='')}")
    return lambda: user.request("GET", f"/{kind}")


def problems_in_usage(user: User, usage: dict[str, Any]) -> list[str]:
    """What in a usage answer (of GET /usage or inside a grant) is not this user's."""
    wrong = []
    if usage["quotaBytes"] != user.quota:
        wrong.append(f"quota {usage['quotaBytes']}")
    if (usage["usedBytes"], usage["objectCount"]) != (user.file_size, 1):
        wrong.append(f"used {usage['usedBytes']} in {usage['objectCount']} objects")
    if usage["reservedBytes"] % user.grant_size:
        wrong.append(f"reserved {usage['reservedBytes']}")
    return wrong


def problems_in(kind: str, user: User, answer: requests.Response) -> list[str]:
    """What in an answer to this user's request is not an answer to it."""
    expected = {"grant": 201, "usage": 200, "files": 200, "delete": 404}[kind]
    if answer.status_code != expected:
        return [f"status {answer.status_code}: {answer.text[:200]}"]
    if kind == "grant":
        key = answer.json()["key"]
        if not key.startswith(f"users/{user.sub}/"):
            return [f"key {key}"]
        return problems_in_usage(user, answer.json()["usage"])
    if kind == "usage":
        return problems_in_usage(user, answer.json())
    if kind == "files":
        keys = [f["key"] for f in answer.json()["files"]]
        return [] if keys == [user.file_key] else [f"files {keys}"]
    return []  # a delete of another's file: 404 is all it may answer


def test_simultaneous_requests_of_many_users_each_get_their_own_answer(
    stack: RunningProcess,
) -> None:
    """10 rounds of 200 requests sent at once: 8 users x 25 of grants, usage, lists and
    deletes of the next user's file. Each answer is checked against its caller."""
    users = users_with_one_file(stack.url, "iso", USERS)
    kinds = ("grant", "usage", "files", "delete")
    statuses: Counter[int] = Counter()
    granted: Counter[str] = Counter()
    mixed: list[str] = []

    with ThreadPoolExecutor(max_workers=USERS * REQUESTS_PER_USER) as pool:
        for _ in range(ROUNDS):
            plan = [
                (user, kinds[(i + n) % len(kinds)])
                for i, user in enumerate(users)
                for n in range(REQUESTS_PER_USER)
            ]
            calls = [call_of(kind, user, users) for user, kind in plan]
            for (user, kind), answer in zip(plan, all_at_once(pool, calls), strict=True):
                statuses[answer.status_code] += 1
                wrong = problems_in(kind, user, answer)
                if wrong:
                    mixed.append(f"{kind} by {user.sub}: {', '.join(wrong)}")
                elif kind == "grant":
                    granted[user.sub] += 1

    assert sum(statuses.values()) == ROUNDS * USERS * REQUESTS_PER_USER
    assert [status for status in statuses if status >= 500] == [], statuses
    assert mixed == []
    for user in users:
        assert user.files() == [user.file_key]
        usage = user.usage()
        assert usage["usedBytes"] == user.file_size
        # Every grant reserved its bytes for this user and no one else's did.
        assert usage["reservedBytes"] == granted[user.sub] * user.grant_size

    # The concurrent requests ran in concurrent environments, each reporting one cold start.
    started = re.findall(r"INIT ApiFunction env (\d+) \(cold start, ", "".join(stack.output))
    assert sorted(started, key=int) == [str(n) for n in range(1, len(started) + 1)]
    assert 2 <= len(started) <= MAX_ENVIRONMENTS


def test_a_delete_storm_on_another_users_file_never_lands(stack: RunningProcess) -> None:
    """One user deletes another's file 100 times while its owner lists 100 times, all at once."""
    owner, other = users_with_one_file(stack.url, "storm", 2)
    path = f"/files/{quote(owner.file_key, safe='')}"
    calls: list[Call] = [
        lambda: other.request("DELETE", path),
        lambda: owner.request("GET", "/files"),
    ] * 100
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        answers = all_at_once(pool, calls)

    assert Counter(a.status_code for a in answers[0::2]) == {404: 100}
    listed = [[f["key"] for f in a.json()["files"]] for a in answers[1::2]]
    assert listed == [[owner.file_key]] * 100
    assert owner.files() == [owner.file_key]
    usage = owner.usage()
    assert (usage["usedBytes"], usage["objectCount"]) == (owner.file_size, 1)
