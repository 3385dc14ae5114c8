"""The client library (web/quota-uploads.js) in headless Chromium against the local stack: through
the web page (cancel, resume after a reload, a 507, downloads) and called directly (progress).
S3's answers are changed or held with Playwright's request interception."""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import (
    Browser,
    FilePayload,
    Page,
    Request,
    Route,
    expect,
    sync_playwright,
)

from tests.e2e.test_web_page import CHROMIUM, CHROMIUM_ARGS, PASSWORD, sign_in
from tests.support.local_stack_process import RunningProcess, multipart_stack
from tests.support.tokens import claims_of, local_token
from tests.support.tokens import sign_in as cognito_sign_in

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
MIB = 1024 * 1024
PART = re.compile(r"[?&]partNumber=(\d+)")
# Uploads through the library in the page, with a token from POST /local/token.
UPLOAD_IN_PAGE = """async ([user, name, size]) => {
    const { QuotaUploads } = await import("/quota-uploads.js");
    const answer = await fetch("/local/token", { method: "POST", body: JSON.stringify({ user }) });
    const { token } = await answer.json();
    const client = new QuotaUploads({ apiUrl: "", getIdToken: async () => token });
    const bytes = Uint8Array.from({ length: size }, (_, index) => index % 253);
    const progress = [];
    const result = await client.upload(new File([bytes], name), {
        onProgress: ({ loaded }) => progress.push(loaded),
    });
    return { result, progress };
}"""


@pytest.fixture(scope="module")
def stack() -> Iterator[RunningProcess]:
    with multipart_stack(64 * MIB) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser, stack: RunningProcess) -> Iterator[Page]:
    context = browser.new_context(base_url=stack.url, accept_downloads=True)
    yield context.new_page()
    context.close()


def _api(stack: RunningProcess, email: str, method: str, path: str) -> Any:
    token = cognito_sign_in(stack.url, email, PASSWORD)
    answer = requests.request(
        method, f"{stack.url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    answer.raise_for_status()
    return answer.json()


def usage(stack: RunningProcess, email: str) -> dict[str, int]:
    found: dict[str, int] = _api(stack, email, "GET", "/usage")
    return found


def file_names(stack: RunningProcess, email: str) -> list[str]:
    return [file["filename"] for file in _api(stack, email, "GET", "/files")["files"]]


def signed_up(page: Page, email: str) -> None:
    page.goto("/")
    sign_in(page, email, PASSWORD, "Sign up")
    expect(page.get_by_test_id("usage-text")).to_contain_text("0 B used")


def upload_row(page: Page, name: str) -> Any:
    return page.locator("#uploads li").filter(has_text=name)


def wait_for(page: Page, condition: Callable[[], bool], timeout_ms: float = 30_000) -> None:
    """Polls ``condition`` while Playwright runs the page's event handlers and routes (the sync
    API runs them only inside its own calls)."""
    waited = 0.0
    while not condition():
        assert waited < timeout_ms, "condition not reached"
        page.wait_for_timeout(50)
        waited += 50


def part_of(request: Request) -> int:
    """The part number a request PUTs to S3, or 0 for any other request."""
    found = PART.search(request.url)
    return int(found.group(1)) if found and request.method == "PUT" else 0


def test_single_put_and_multipart_report_progress(page: Page, stack: RunningProcess) -> None:
    page.goto("/")
    single = page.evaluate(UPLOAD_IN_PAGE, ["progress", "small.bin", 3 * MIB])
    multi = page.evaluate(UPLOAD_IN_PAGE, ["progress", "large.bin", 12 * MIB])

    assert single["result"]["method"] == "PUT"
    assert multi["result"]["method"] == "MULTIPART"
    for upload, size in ((single, 3 * MIB), (multi, 12 * MIB)):
        assert upload["result"]["size"] == size
        assert upload["progress"][-1] == size
    # Parts report as they go: more steps than its 3 parts, each no more than the whole.
    assert len(set(multi["progress"])) > 3
    assert all(0 <= loaded <= 12 * MIB for loaded in multi["progress"])
    user = local_token(stack.url, "progress")
    listed = requests.get(f"{stack.url}/files", headers=user.headers, timeout=5).json()["files"]
    etags = {file["filename"]: file["etag"] for file in listed}
    assert etags["large.bin"].endswith("-3")  # 12 MiB in 5 MiB parts
    assert "-" not in etags["small.bin"]


def test_a_part_that_fails_twice_is_sent_again(page: Page, stack: RunningProcess) -> None:
    email = "retry@example.com"
    signed_up(page, email)
    attempts: Counter[int] = Counter()

    def flaky(route: Route) -> None:
        number = part_of(route.request)
        if not number:
            route.continue_()
            return
        attempts[number] += 1
        if number == 2 and attempts[number] <= 2:
            origin = {"Access-Control-Allow-Origin": stack.url}
            route.fulfill(status=503, headers=origin, body="<Error><Code>SlowDown</Code></Error>")
        else:
            route.continue_()

    page.route(PART, flaky)
    payload = FilePayload(name="flaky.bin", mimeType="", buffer=os.urandom(12 * MIB))
    page.set_input_files("#picker", files=[payload])

    expect(upload_row(page, "flaky.bin").locator(".state")).to_have_text("done", timeout=30_000)
    assert attempts == {1: 1, 2: 3, 3: 1}
    expect(page.locator("#files")).to_contain_text("flaky.bin", timeout=15_000)
    assert usage(stack, email)["usedBytes"] == 12 * MIB


def test_cancel_mid_upload_releases_the_reservation(page: Page, stack: RunningProcess) -> None:
    email = "cancel@example.com"
    signed_up(page, email)
    held: list[Route] = []
    # Every PUT to S3 waits, as on a slow link, until the upload is cancelled.
    page.route(re.compile(r"X-Amz-Signature="), lambda route: held.append(route))

    for name, size in (("big.bin", 12 * MIB), ("small.bin", MIB)):
        page.set_input_files(
            "#picker", files=[FilePayload(name=name, mimeType="", buffer=bytes(size))]
        )
        state = upload_row(page, name).locator(".state")
        expect(state).to_have_text("uploading")
        assert usage(stack, email)["reservedBytes"] == size
        wait_for(page, lambda: bool(held))
        page.get_by_role("button", name=f"Cancel {name}").click()
        expect(state).to_have_text("cancelled")
        # Released at once: a multipart reservation would otherwise stay a day, a single PUT's
        # until its URL expires.
        assert usage(stack, email)["reservedBytes"] == 0
        held.clear()

    expect(page.get_by_test_id("usage-text")).to_contain_text("0 B used, 0 B reserved")
    now = usage(stack, email)
    assert (now["usedBytes"], now["reservedBytes"], now["objectCount"]) == (0, 0, 0)
    assert file_names(stack, email) == []


def test_an_upload_interrupted_by_a_reload_resumes_with_the_missing_parts(
    page: Page, stack: RunningProcess, tmp_path: Path
) -> None:
    email = "resume@example.com"
    signed_up(page, email)
    video = tmp_path / "holiday.mp4"
    video.write_bytes(os.urandom(18 * MIB))  # parts of 5, 5, 5 and 3 MiB
    finished: list[int] = []
    page.on("requestfinished", lambda request: finished.append(part_of(request)))
    # Part 3 never gets through; the others do.
    page.route(PART, lambda route: None if part_of(route.request) == 3 else route.continue_())
    page.set_input_files("#picker", files=[video])
    wait_for(page, lambda: sorted(n for n in finished if n) == [1, 2, 4])

    # The reload cancels the part held; unrouted first, it might be let through.
    page.reload()
    page.unroute(PART)
    sent: list[int] = []
    page.on("request", lambda request: sent.append(part_of(request)))
    sign_in(page, email, PASSWORD)
    expect(page.get_by_test_id("usage-text")).to_contain_text("18.0 MiB reserved")
    page.set_input_files("#picker", files=[video])

    expect(upload_row(page, "holiday.mp4").locator(".state")).to_have_text("done", timeout=30_000)
    assert [n for n in sent if n] == [3]
    expect(page.get_by_test_id("usage-text")).to_contain_text("18.0 MiB used, 0 B reserved")
    assert file_names(stack, email) == ["holiday.mp4"]


def test_a_507_is_shown_with_its_numbers(page: Page, stack: RunningProcess) -> None:
    email = "full@example.com"
    signed_up(page, email)
    sub = claims_of(cognito_sign_in(stack.url, email, PASSWORD))["sub"]
    admin = local_token(stack.url, "operator", ["admins"])
    requests.put(
        f"{stack.url}/admin/users/{sub}/quota",
        headers=admin.headers,
        json={"quotaBytes": 1000},
        timeout=5,
    ).raise_for_status()
    page.reload()
    sign_in(page, email, PASSWORD)
    expect(page.get_by_test_id("usage-text")).to_contain_text("0 B used, 0 B reserved of 1000 B")
    page.set_input_files(
        "#picker", files=[FilePayload(name="notes.txt", mimeType="text/plain", buffer=b"n" * 600)]
    )
    expect(page.get_by_test_id("usage-text")).to_contain_text("600 B used", timeout=15_000)

    page.set_input_files(
        "#picker", files=[FilePayload(name="big.bin", mimeType="", buffer=b"b" * 500)]
    )

    expect(page.get_by_test_id("refusal")).to_have_text(
        "“big.bin” needs 500 B but only 400 B of your 1000 B are free (600 B used, 0 B reserved). "
        "Delete files to free space, then try again."
    )
    expect(upload_row(page, "big.bin").locator(".state")).to_have_text("no space")


@pytest.mark.parametrize("name", ["plain.txt", "Отчёт-été.bin"])
def test_a_download_gives_the_same_bytes_under_the_original_name(
    page: Page, stack: RunningProcess, name: str
) -> None:
    signed_up(page, f"download-{len(name)}@example.com")
    content = os.urandom(300_000)
    page.set_input_files("#picker", files=[FilePayload(name=name, mimeType="", buffer=content)])
    expect(page.locator("#files")).to_contain_text(name, timeout=15_000)

    with page.expect_download() as started:
        page.get_by_role("button", name=f"Download {name}").click()

    download = started.value
    assert download.suggested_filename == name
    assert Path(download.path()).read_bytes() == content
