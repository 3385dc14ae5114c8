"""The web page in headless Chromium: sign up with the pool, upload, see the usage bar move, then
see the 507 plainly."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import FilePayload, Page, expect, sync_playwright

from tests.support.local_stack_process import local_stack_process

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "Correct-horse-42"


@pytest.fixture(scope="module")
def api() -> Iterator[str]:
    with local_stack_process("--parameter", "DefaultQuotaBytes=1000") as stack:
        yield stack.url


@pytest.fixture
def page(api: str) -> Iterator[Page]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(base_url=api)
        yield page
        browser.close()


def sign_in(page: Page, email: str, password: str, button: str = "Sign in") -> None:
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.get_by_role("button", name=button).click()


def test_upload_usage_and_refusal_in_the_browser(page: Page) -> None:
    page.goto("/")
    sign_in(page, "web-user@example.com", PASSWORD, "Sign up")
    usage = page.get_by_test_id("usage-text")
    expect(usage).to_contain_text("0 B used")

    page.set_input_files(
        "#picker", files=[FilePayload(name="notes.txt", mimeType="text/plain", buffer=b"n" * 600)]
    )
    expect(usage).to_contain_text("600 B used", timeout=15_000)
    expect(usage).to_contain_text("1 files")
    expect(page.locator("#files")).to_contain_text("notes.txt")
    width = page.locator("#bar-used").evaluate("e => e.style.width")
    assert width == "60%"
    warning = page.get_by_test_id("warning")
    expect(warning).to_be_hidden()

    page.set_input_files(
        "#picker", files=[FilePayload(name="more.txt", mimeType="text/plain", buffer=b"m" * 250)]
    )
    expect(usage).to_contain_text("850 B used", timeout=15_000)
    expect(warning).to_be_visible()
    expect(warning).to_contain_text("85%")

    page.set_input_files(
        "#picker", files=[FilePayload(name="big.bin", mimeType="", buffer=b"b" * 500)]
    )
    refusal = page.get_by_test_id("refusal")
    expect(refusal).to_be_visible()
    expect(refusal).to_contain_text("big.bin")
    expect(refusal).to_contain_text("only 150 B")
    expect(refusal).to_contain_text("Delete files")

    page.get_by_role("button", name="Delete notes.txt").click()
    expect(usage).to_contain_text("250 B used", timeout=15_000)
    expect(warning).to_be_hidden()


def test_the_pool_refuses_a_wrong_password_and_a_weak_one(page: Page) -> None:
    page.goto("/")
    refusal = page.get_by_role("alert")
    sign_in(page, "weak@example.com", "short", "Sign up")
    expect(refusal).to_contain_text("password policy")
    sign_in(page, "careful@example.com", PASSWORD, "Sign up")
    expect(page.get_by_test_id("usage-text")).to_contain_text("0 B used")
    page.reload()
    sign_in(page, "careful@example.com", PASSWORD + "!")
    expect(refusal).to_contain_text("Incorrect username or password")
    expect(page.locator("#app")).to_be_hidden()
