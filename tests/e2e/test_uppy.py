"""Stock Uppy in headless Chromium: a single PUT, a multipart upload, and a 507 as its error."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from playwright.sync_api import Page, sync_playwright

from tests.e2e.test_web_page import CHROMIUM, CHROMIUM_ARGS, PASSWORD, sign_in
from tests.support.local_stack_process import RunningProcess, eventually, multipart_stack
from tests.support.tokens import sign_in as cognito_sign_in

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
MIB = 1024 * 1024
EMAIL = "uppy-user@example.com"


@pytest.fixture(scope="module")
def stack() -> Iterator[RunningProcess]:
    with multipart_stack(20 * MIB) as running:
        yield running


@pytest.fixture
def page(stack: RunningProcess) -> Iterator[Page]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(base_url=stack.url)
        yield page
        browser.close()


def _get(api: str, path: str) -> Any:
    token = cognito_sign_in(api, EMAIL, PASSWORD)
    answer = requests.get(f"{api}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=5)
    answer.raise_for_status()
    return answer.json()


def used_bytes(api: str) -> int:
    return int(_get(api, "/usage")["usedBytes"])


def files(api: str) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = _get(api, "/files")["files"]
    return listed


def add_file(page: Page, name: str, size: int) -> None:
    """Adds a file the way the Dashboard does once it lists files (its picker is gone then)."""
    page.evaluate(
        """([name, size]) => uppy.addFile({
            name, type: "application/octet-stream", data: new Blob([new Uint8Array(size)]),
        })""",
        [name, size],
    )


def test_uppy_uploads_single_and_multipart_and_reports_507(
    page: Page, stack: RunningProcess
) -> None:
    page.goto("/uppy.html")
    sign_in(page, EMAIL, PASSWORD, "Sign up")
    page.get_by_test_id("usage-text").filter(has_text="0 bytes used").wait_for()

    add_file(page, "small.txt", 1000)
    eventually(lambda: used_bytes(stack.url), lambda used: used == 1000, timeout=20)

    add_file(page, "video.bin", 12 * MIB)
    eventually(lambda: used_bytes(stack.url), lambda used: used == 1000 + 12 * MIB, timeout=30)
    # S3 gives an object assembled from parts the ETag "<md5 of the parts' md5s>-<part count>".
    etags = {f["filename"]: f["etag"].strip('"') for f in files(stack.url)}
    assert etags["video.bin"].endswith("-3")  # 12 MiB in 5 MiB parts
    assert "-" not in etags["small.txt"]

    add_file(page, "too-big.bin", 10 * MIB)
    page.wait_for_function(
        "() => uppy.getFiles().some(f => f.name === 'too-big.bin' && f.error)", timeout=20_000
    )
    error = page.evaluate("() => uppy.getFiles().find(f => f.name === 'too-big.bin').error")
    assert "Delete files" in error
    assert used_bytes(stack.url) == 1000 + 12 * MIB
