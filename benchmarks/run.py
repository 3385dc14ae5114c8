"""``make bench``: our functions against a naive twin, measured side by side in one run.

Prints, for both: cold init (fresh processes, CPU), init plus the first request, warm CPU per
presign request, DynamoDB requests per grant and per event batch, S3 events applied per second,
peak RSS, package sizes, and what a million uploads cost. AWS calls are answered in-process
(``stub_aws``), so the figures are client-side CPU, which is what Lambda bills beyond waiting
on the network. ``--quick`` runs fewer repetitions.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LAYER = ROOT / "layers" / "shared"
OURS = ROOT / "functions" / "api" / "app.py"
OUR_EVENTS = ROOT / "functions" / "usage_events" / "app.py"
ENV = {
    "TABLE_NAME": "ledger",
    "BUCKET_NAME": "uploads-123456789012-us-east-1",
    "DEFAULT_QUOTA_BYTES": str(1024**3),
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "POWERTOOLS_SERVICE_NAME": "quota-uploads",
    "POWERTOOLS_METRICS_NAMESPACE": "QuotaUploads",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "AWS_LAMBDA_FUNCTION_NAME": "bench",
}
# us-east-1 list prices, November 2026: API Gateway HTTP API (first 300M), Lambda arm64,
# DynamoDB on-demand (after the November 2024 reduction).
HTTP_API_PER_MILLION = 1.00
LAMBDA_PER_GB_SECOND = 0.0000133334
LAMBDA_PER_MILLION = 0.20
WRU_PER_MILLION = 0.625
RRU_PER_MILLION = 0.125
# A DynamoDB round trip from Lambda in the same region: added to CPU for billed duration.
DYNAMODB_LATENCY_MS = 6.0
MEMORY_GB = 0.5
# The usage function's SQS BatchSize in template.yaml.
BATCH_SIZE = 10

CHILD = """
import json, os, resource, sys, time
start = time.process_time()
sys.path[:0] = [{layer!r}, {root!r}]
which = {which!r}
if which == "ours":
    import importlib.util
    spec = importlib.util.spec_from_file_location("api_app", {ours!r})
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    handler = module.lambda_handler
else:
    from benchmarks import naive_twin as module
    handler = module.lambda_handler
init = time.process_time()
from benchmarks import stub_aws
if which == "ours":
    from quota_uploads import wiring
    stub_aws.install_fast(wiring.dynamodb())
else:
    stub_aws.install(module.dynamodb.meta.events)
from benchmarks.run import context, upload_event
response = handler(upload_event(), context())
assert response["statusCode"] == 201, response
first = time.process_time()
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
times = {{"init": (init - start) * 1000, "first": (first - start) * 1000}}
print(json.dumps({{**times, "rss": rss / 1024}}))
"""


@dataclass
class Context:
    function_name: str = "bench"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"


def context() -> Context:
    return Context()


def upload_event() -> dict[str, Any]:
    event: dict[str, Any] = json.loads((ROOT / "events" / "http_post_uploads.json").read_text())
    return event


def sqs_event(messages: int, records_per_message: int, users: int) -> dict[str, Any]:
    template = json.loads((ROOT / "events" / "sqs_s3_object_created.json").read_text())
    base = template["Records"][0]
    s3_record = json.loads(base["body"])["Records"][0]
    records = []
    for m in range(messages):
        body = []
        for r in range(records_per_message):
            n = m * records_per_message + r
            record = json.loads(json.dumps(s3_record))
            # As real S3 sends them: "/" unencoded (moto encodes it as %2F).
            record["s3"]["object"]["key"] = f"users/u{n % users}/{n:032x}/f.bin"
            record["s3"]["object"]["sequencer"] = f"{n:018X}"
            body.append(record)
        records.append({**base, "messageId": f"m{m}", "body": json.dumps({"Records": body})})
    return {"Records": records}


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(ENV)
    return env


def cold_starts(which: str, runs: int) -> dict[str, float]:
    code = CHILD.format(layer=str(LAYER), root=str(ROOT), which=which, ours=str(OURS))
    samples = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", code],
            env=child_env(),
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        ).stdout
        samples.append(json.loads(out.strip().splitlines()[-1]))
    return {key: statistics.median(s[key] for s in samples) for key in samples[0]}


def per_call_us(call: Callable[[], Any], count: int, batch: int = 250) -> float:
    """Median CPU µs per call over batches, after a warm-up."""
    for _ in range(50):
        call()
    samples = []
    for _ in range(max(1, count // batch)):
        start = time.process_time_ns()
        for _ in range(batch):
            call()
        samples.append((time.process_time_ns() - start) / batch / 1000)
    return statistics.median(samples)


def per_second(call: Callable[[], Any], items: int, runs: int) -> float:
    """Items per CPU second over the median of ``runs`` calls, after one warm-up call."""
    call()
    samples = []
    for _ in range(runs):
        start = time.process_time()
        call()
        samples.append(time.process_time() - start)
    return items / statistics.median(samples)


def hand_written_against_botocore(calls: int) -> list[tuple[str, float, float]]:
    """The two hand-written pieces on the grant path, each against botocore doing the same call.

    Both sides get the same stubbed answers; their equality is proven in tests/unit.
    """
    import boto3

    from quota_uploads import wiring
    from quota_uploads.ledger import Ledger
    from quota_uploads.presign import UploadSigner

    settings = wiring.settings()
    hand_ledger = wiring.ledger()
    botocore_ledger = Ledger(boto3.client("dynamodb"), settings)
    hand_signer = wiring.signer()
    botocore_signer = UploadSigner(settings.bucket_name, wiring.s3, None)
    upload = hand_ledger.new_upload_id(1234)
    key = f"users/alice/{upload}/photo.jpg"

    def sign(signer: Any) -> Callable[[], Any]:
        return lambda: signer.put(
            key=key, size=1234, content_type="image/jpeg", checksum_sha256=None, expires_in=900
        )

    return [
        (
            "  grant: Ledger.grant (one UpdateItem), CPU µs",
            per_call_us(lambda: hand_ledger.grant("alice", upload), calls),
            per_call_us(lambda: botocore_ledger.grant("alice", upload), calls),
        ),
        (
            "  presigned PUT URL, CPU µs",
            per_call_us(sign(hand_signer), calls),
            per_call_us(sign(botocore_signer), calls),
        ),
    ]


def load(path: Path, name: str) -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def size_of(path: Path) -> int:
    return sum(
        f.stat().st_size for f in path.rglob("*") if f.is_file() and "__pycache__" not in f.parts
    )


def layer_size() -> int:
    built = ROOT / ".aws-sam" / "build" / "SharedLayer"
    if built.exists():
        return size_of(built)
    target = ROOT / ".bench-cache" / "layer"
    if not target.exists():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--target",
                str(target / "python"),
                "-r",
                str(LAYER / "requirements.txt"),
            ],
            check=True,
        )
    return size_of(target) + size_of(LAYER / "quota_uploads")


class _Tee(io.StringIO):
    """Keeps what is printed, and prints it."""

    def __init__(self, out: Any) -> None:
        super().__init__()
        self._out = out

    def write(self, text: str) -> int:
        self._out.write(text)
        return super().write(text)


def main() -> None:
    """Runs every measurement; the report is printed and kept in ``benchmarks/results``."""
    report = _Tee(sys.stdout)
    with contextlib.redirect_stdout(report):
        measure()
    results = ROOT / "benchmarks" / "results"
    results.mkdir(exist_ok=True)
    (results / "bench.txt").write_text(report.getvalue())


def measure() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    cold_runs, warm_calls, event_runs = (5, 1000, 1) if args.quick else (15, 5000, 5)
    small_batch_runs = 50 if args.quick else 400
    began = time.monotonic()
    os.environ.update(ENV)
    sys.path[:0] = [str(LAYER), str(ROOT)]
    # Lambda's code directory is read-only: ship bytecode, and measure with it.
    import site

    for path in (
        LAYER,
        ROOT / "functions",
        ROOT / "benchmarks",
        *map(Path, site.getsitepackages()),
    ):
        compileall.compile_dir(path, quiet=2)

    ours_cold = cold_starts("ours", cold_runs)
    twin_cold = cold_starts("twin", cold_runs)

    import boto3

    from benchmarks import naive_twin, stub_aws
    from quota_uploads import wiring
    from quota_uploads.accounting import plan_user_changes
    from quota_uploads.s3_events import parse_notification

    boto3.setup_default_session()
    assert boto3.DEFAULT_SESSION is not None  # set by the line above
    stub_aws.install(boto3.DEFAULT_SESSION.events)
    stub_aws.install_fast(wiring.dynamodb())
    stub_aws.install(naive_twin.dynamodb.meta.events)
    ours = load(OURS, "bench_api")
    ours_events = load(OUR_EVENTS, "bench_usage_events")
    ctx = context()

    def our_request() -> None:
        ours.lambda_handler(upload_event(), ctx)

    def twin_request() -> None:
        naive_twin.lambda_handler(upload_event(), ctx)

    import logging

    logging.disable(logging.WARNING)
    import warnings

    warnings.filterwarnings("ignore")
    # Both print EMF metrics to stdout per request, as in Lambda; keep them off the report.
    with contextlib.redirect_stdout(io.StringIO()):
        ours_warm = per_call_us(our_request, warm_calls)
        twin_warm = per_call_us(twin_request, warm_calls)

    def requests_made(call: Callable[[], Any]) -> int:
        stub_aws.calls.clear()
        with contextlib.redirect_stdout(io.StringIO()):
            call()
        return sum(stub_aws.calls.values())

    ours_grant_calls = requests_made(our_request)
    twin_grant_calls = requests_made(twin_request)
    # A real batch: up to 10 SQS messages of one S3 record each, here over 3 users.
    real_batch = sqs_event(10, 1, 3)
    ours_event_calls = requests_made(lambda: ours_events.lambda_handler(real_batch, ctx))
    twin_event_calls = requests_made(lambda: naive_twin.events_handler(real_batch, ctx))

    # Throughput: one oversized batch, 10,000 records over 100 users.
    users, per_message, messages = 100, 1000, 10
    batch = sqs_event(messages, per_message, users)
    records = messages * per_message
    bodies = [record["body"] for record in batch["Records"]]

    def dispatch() -> dict[str, list[Any]]:
        by_user: dict[str, list[Any]] = {}
        for body in bodies:
            for event in parse_notification(body):
                by_user.setdefault(event.owner.sub, []).append(event)
        return by_user

    def plan() -> None:
        for sub, user_events in dispatch().items():
            plan_user_changes(sub, user_events, {}, {})

    def ours_batch() -> None:
        result = ours_events.lambda_handler(batch, ctx)
        assert result == {"batchItemFailures": []}, result

    ours_parse_rate = per_second(dispatch, records, event_runs)
    ours_plan_rate = per_second(plan, records, event_runs)
    with contextlib.redirect_stdout(io.StringIO()):
        ours_rate = per_second(ours_batch, records, event_runs)
        twin_rate = per_second(lambda: naive_twin.events_handler(batch, ctx), records, event_runs)
        # Batches as the template delivers them, over more or fewer users.
        batch_rates = []
        for users_in_batch in (1, 3, 10):
            small = sqs_event(BATCH_SIZE, 1, users_in_batch)
            ours_call = partial(ours_events.lambda_handler, small, ctx)
            twin_call = partial(naive_twin.events_handler, small, ctx)
            mine = per_second(ours_call, BATCH_SIZE, small_batch_runs)
            theirs = per_second(twin_call, BATCH_SIZE, small_batch_runs)
            batch_rates.append((users_in_batch, mine, theirs))

    rows = [
        (f"cold init, CPU ms (median of {cold_runs})", ours_cold["init"], twin_cold["init"], 0.5),
        ("cold init + first request, CPU ms", ours_cold["first"], twin_cold["first"], None),
        ("warm presign request, CPU µs (median)", ours_warm, twin_warm, 0.5),
        ("peak RSS after first request, MiB", ours_cold["rss"], twin_cold["rss"], None),
        ("DynamoDB requests per grant", ours_grant_calls, twin_grant_calls, None),
        (
            "DynamoDB requests per batch (10 events, 3 users)",
            ours_event_calls,
            twin_event_calls,
            None,
        ),
        (
            f"S3 events applied per second, end to end (median of {event_runs})",
            ours_rate,
            twin_rate,
            None,
        ),
    ]
    print(f"\n{'measure':58} {'ours':>12} {'twin':>12} {'ratio':>7}  target")
    for name, mine, theirs, target in rows:
        ratio = mine / theirs if theirs else float("nan")
        verdict = ""
        if target is not None:
            verdict = f"≤ {target}x  {'PASS' if ratio <= target else 'MISS'}"
        print(f"{name:58} {mine:12,.1f} {theirs:12,.1f} {ratio:7.2f}  {verdict}")
    for users_in_batch, mine, theirs in batch_rates:
        name = f"  events/s in batches of {BATCH_SIZE} over {users_in_batch} user(s)"
        verdict = ""
        if users_in_batch == 10:
            verdict = f"≥ 1.0x  {'PASS' if mine >= theirs else 'MISS'}"
        print(f"{name:58} {mine:12,.0f} {theirs:12,.0f} {mine / theirs:7.2f}  {verdict}")
    verdict = "PASS" if ours_parse_rate >= 100_000 else "MISS"
    print(
        f"{'S3 events parsed and dispatched per user, per second':58} {ours_parse_rate:12,.0f}"
        f"{'':21}≥ 100,000  {verdict}"
    )
    print(f"{'  ... and planned into ledger changes, per second':58} {ours_plan_rate:12,.0f}")
    print(f"{'  ours per batch: 2 BatchGetItem + 1 TransactWriteItems per user':58}")

    heading = "hand-written against botocore, same call"
    print(f"\n{heading:58} {'ours':>12} {'botocore':>12} {'ratio':>7}")
    for name, mine, theirs in hand_written_against_botocore(warm_calls):
        print(f"{name:58} {mine:12,.1f} {theirs:12,.1f} {mine / theirs:7.2f}")

    print("\npackage sizes (bytes)")
    for name in ("api", "usage_events", "reservation_sweeper", "reconcile"):
        print(f"  functions/{name:24} {size_of(ROOT / 'functions' / name):>12,}")
    print(f"  {'shared layer (built, with dependencies)':34} {layer_size():>12,}")

    print(
        "\ncost of 1 million uploads (us-east-1 list prices; DynamoDB round trip "
        f"{DYNAMODB_LATENCY_MS} ms added to CPU)"
    )
    # Ours: the capacity table's costliest level (no other upload open), index writes included.
    for label, warm_us, grant_wru, event_wru, event_rru, batch_size in (
        ("ours", ours_warm, 2, 5, 1.5, BATCH_SIZE),
        ("twin", twin_warm, 1, 1, 0, BATCH_SIZE),
    ):
        api = HTTP_API_PER_MILLION
        invocations = 1 + 1 / batch_size
        duration_s = (warm_us / 1000 + DYNAMODB_LATENCY_MS) / 1000
        lambda_cost = (
            invocations * LAMBDA_PER_MILLION + 1e6 * duration_s * MEMORY_GB * LAMBDA_PER_GB_SECOND
        )
        dynamo = (grant_wru + event_wru) * WRU_PER_MILLION + event_rru * RRU_PER_MILLION
        total = api + lambda_cost + dynamo
        print(
            f"  {label}: API ${api:.2f} + Lambda ${lambda_cost:.2f} + DynamoDB ${dynamo:.2f} "
            f"= ${total:.2f}"
        )
    print(
        "  (ours writes each object's register in a transaction: 2 WRU per item, so events "
        "cost more than a bare ADD, which double-counts redeliveries)"
    )
    from benchmarks import capacity

    print(f"\n{capacity.report(quick=args.quick)}")
    print(f"\nbenchmark took {time.monotonic() - began:.0f} s")


if __name__ == "__main__":
    main()
