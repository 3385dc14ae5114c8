"""A 200 MiB multipart upload through the client library, in Chromium, on the local stack: its
parts one at a time against ``--concurrency`` parts at once.

The library runs in the page as an app would (``web/quota-uploads.js``, XMLHttpRequest to the
local S3), with the template's part size (64 MiB: 4 parts). Each round uploads the same
in-memory file once per concurrency, alternating, then deletes it, so every upload starts from
the same state; the time is the page's, from calling ``upload`` to its answer (the grant,
signing the parts, sending them, completing).

Two links. **Loopback**: here the local S3 is the bottleneck, one Python process answering one
request at a time (``local_stack.atomic_moto``) on a 2-core machine shared with the browser, so
parts sent together mostly wait for each other. **A modelled path**: the browser reaches the
stack through a SOCKS5 proxy in this process that gives every connection its own link, at most
``--connection-mib-s`` and ``--rtt-ms`` of round trip, as one TCP flow gets over a long or lossy
path; the path as a whole is not capped. That is the case parallel parts exist for, and it
shows whether the library really keeps ``concurrency`` connections busy.

``make bench-client`` runs it and writes ``benchmarks/results/client-upload.txt``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import statistics
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from benchmarks.run import ROOT
from tests.e2e.test_web_page import CHROMIUM, CHROMIUM_ARGS
from tests.support.local_stack_process import local_stack_process

MIB = 1024 * 1024
RESULTS = ROOT / "benchmarks" / "results" / "client-upload.txt"
CHUNK = 64 * 1024
# A client for /local/token's user and a file of random bytes (incompressible, as media is).
SET_UP = """async ([size]) => {
    const { QuotaUploads } = await import("/quota-uploads.js");
    const body = JSON.stringify({ user: "bench" });
    const { token } = await (await fetch("/local/token", { method: "POST", body })).json();
    window.client = new QuotaUploads({ apiUrl: "", getIdToken: async () => token });
    const bytes = new Uint8Array(size);
    for (let at = 0; at < size; at += 65536) crypto.getRandomValues(bytes.subarray(at, at + 65536));
    window.file = new File([bytes], "bench.bin");
}"""
UPLOAD = """async ([concurrency]) => {
    const started = performance.now();
    const result = await window.client.upload(window.file, { concurrency });
    const seconds = (performance.now() - started) / 1000;
    await window.client.remove(result.key);
    return { seconds, method: result.method, size: result.size };
}"""


class PathPerConnection:
    """A SOCKS5 proxy on loopback in which each connection is a path of its own: bytes go at
    most ``rate`` bytes/s each way and arrive ``rtt / 2`` after they are sent."""

    def __init__(self, rate: float, rtt: float) -> None:
        self._rate = rate
        self._delay = rtt / 2
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self.port = 0

    @contextlib.contextmanager
    def running(self) -> Iterator[PathPerConnection]:
        thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        thread.start()
        started = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        started.result(timeout=10)
        try:
            yield self
        finally:
            asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            thread.join(timeout=10)

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._connect, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _connect(self, client: asyncio.StreamReader, reply: asyncio.StreamWriter) -> None:
        """SOCKS5 without authentication, CONNECT to an IPv4 address or a name (RFC 1928)."""
        try:
            _, methods = await client.readexactly(2)
            await client.readexactly(methods)
            reply.write(b"\x05\x00")
            _, _, _, address_type = await client.readexactly(4)
            if address_type == 1:
                host = socket.inet_ntoa(await client.readexactly(4))
            else:
                host = (await client.readexactly((await client.readexactly(1))[0])).decode()
            port = int.from_bytes(await client.readexactly(2), "big")
            server, forward = await asyncio.open_connection(host, port)
            reply.write(b"\x05\x00\x00\x01" + bytes(6))
            await asyncio.gather(self._carry(client, forward), self._carry(server, reply))
        except (OSError, asyncio.IncompleteReadError):  # refused, unknown name, reset
            reply.close()

    async def _carry(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        in_flight: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                arrives, data = await in_flight.get()
                await asyncio.sleep(arrives - loop.time())
                if not data:  # the end, after what was sent before it
                    break
                sink.write(data)
                await sink.drain()
            sink.close()

        delivering = asyncio.create_task(deliver())
        sent_until = loop.time()
        while data := await source.read(CHUNK):
            # Paced: the sender waits for the path, as TCP's window makes it wait.
            sent_until = max(sent_until, loop.time()) + len(data) / self._rate
            await asyncio.sleep(sent_until - loop.time())
            in_flight.put_nowait((loop.time() + self._delay, data))
        in_flight.put_nowait((loop.time() + self._delay, b""))
        with contextlib.suppress(OSError):
            await delivering


@dataclass
class Timings:
    link: str
    seconds: dict[int, list[float]]

    def median(self, concurrency: int) -> float:
        return statistics.median(self.seconds[concurrency])


def upload_seconds(page: Page, concurrency: int, size: int) -> float:
    answer: dict[str, Any] = page.evaluate(UPLOAD, [concurrency])
    assert answer["method"] == "MULTIPART", answer
    assert answer["size"] == size, answer
    return float(answer["seconds"])


def measure(
    browser: Browser, url: str, link: str, levels: list[int], rounds: int, size: int
) -> Timings:
    page = browser.new_page(base_url=url)
    page.goto("/")
    page.evaluate(SET_UP, [size])
    upload_seconds(page, levels[-1], size)  # warm: Lambda environments, connections
    timings = Timings(link, {level: [] for level in levels})
    for _ in range(rounds):
        for level in levels:
            timings.seconds[level].append(upload_seconds(page, level, size))
    page.close()
    return timings


def chromium(playwright: Playwright, proxy_port: int | None = None) -> Browser:
    # Chromium sends nothing for loopback through a proxy unless told to (<-loopback>).
    proxy = [f"--proxy-server=socks5://127.0.0.1:{proxy_port}", "--proxy-bypass-list=<-loopback>"]
    arguments = CHROMIUM_ARGS + (proxy if proxy_port else [])
    return playwright.chromium.launch(executable_path=CHROMIUM, args=arguments)


def report(results: list[Timings], levels: list[int], size_mib: int, rounds: int) -> str:
    lines = [
        f"{size_mib} MiB multipart upload in the template's 64 MiB parts through "
        "web/quota-uploads.js in headless Chromium on the local stack; median of "
        f"{rounds} round(s), each timed from upload() to its answer",
        "",
        f"{'link':<36}  {'in flight':>9}  {'seconds':>7}  {'MiB/s':>6}  runs (s)",
    ]
    for timings in results:
        for level in levels:
            median = timings.median(level)
            runs = " ".join(f"{t:.2f}" for t in timings.seconds[level])
            lines.append(
                f"{timings.link:<36}  {level:>9}  {median:>7.2f}  {size_mib / median:>6.1f}  {runs}"
            )
        speedup = timings.median(levels[0]) / timings.median(levels[-1])
        lines.append(f"{'':<38}{levels[-1]} at once: {speedup:.2f}x the speed of one at a time")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--connection-mib-s", type=float, default=8)
    parser.add_argument("--rtt-ms", type=float, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one round")
    args = parser.parse_args()
    rounds = 1 if args.quick else args.rounds
    levels = [1, args.concurrency]
    size = args.size_mib * MIB
    path = PathPerConnection(args.connection_mib_s * MIB, args.rtt_ms / 1000)
    modelled = f"{args.connection_mib_s:g} MiB/s per connection, {args.rtt_ms:g} ms RTT"
    results: list[Timings] = []
    with local_stack_process() as stack, sync_playwright() as playwright, path.running():
        for link, port in (("loopback", None), (modelled, path.port)):
            browser = chromium(playwright, port)
            results.append(measure(browser, stack.url, link, levels, rounds, size))
            browser.close()
    text = report(results, levels, args.size_mib, rounds)
    print(text)
    RESULTS.write_text(text + "\n")


if __name__ == "__main__":
    main()
