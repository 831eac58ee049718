"""The app in a real browser: headless Debian Chromium driven by Playwright (never a downloaded browser).

A person's path: pick the tiny-random preset, type a prompt, press Generate, see the 3D viewer;
then start a long run, press Stop, and run again without reloading the page. Screenshots go
to test-artifacts/ (gitignored) for a human to look at.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from test_app import AppServer  # the same `python app.py` subprocess as the API tests

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
RUN_TIMEOUT_MS = 300_000  # a tiny-random run takes seconds alone, much longer on a busy 2-core machine


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    """A served app.py (default preset as shipped)."""
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's Chromium: apt-get install -y chromium chromium-driver")
    folder = tmp_path_factory.mktemp("browser")
    server = AppServer(folder / "outputs", folder / "server.log")
    try:
        server.wait_ready()
        yield server.url
    finally:
        server.close()


@pytest.fixture
def page(app_url):
    """A fresh page of the app in headless Chromium."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            tab = browser.new_page(viewport={"width": 1400, "height": 1000})
            tab.goto(app_url)
            tab.wait_for_selector("#generate")
            yield tab
        finally:
            browser.close()


def set_number(page, elem_id: str, value: int) -> None:
    """Type a value into a slider's number box and commit it."""
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Tab")


def test_generate_shows_the_model_and_stop_then_rerun_works(page):
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(exist_ok=True)
    page.locator("#preset input").click()
    page.get_by_role("option", name="tiny-random").click()
    expect(page.locator("#preset-info")).to_contain_text("tiny-random", timeout=60_000)
    expect(page.locator("#steps input[type=number]")).to_have_value("30", timeout=30_000)  # preset default
    set_number(page, "steps", 3)
    page.get_by_text("Advanced").click()
    set_number(page, "preview-every", 1)
    page.locator("#prompt textarea").fill("a red cube")
    page.locator("#generate").click()

    page.wait_for_selector("[data-testid=model3d] canvas", timeout=RUN_TIMEOUT_MS)
    expect(page.locator("#status")).to_contain_text("Done: 3 steps")
    expect(page.locator("#run-label")).to_contain_text("NOT a real generation")
    page.wait_for_timeout(1500)  # let the viewer draw the mesh before the picture
    page.screenshot(path=str(ARTIFACTS / "app_generate.png"), full_page=True)
    assert page.locator("[data-testid=model3d] canvas").count() >= 1
    expect(page.get_by_role("button", name="Download GLB")).to_be_visible()

    set_number(page, "steps", 500)
    page.locator("#generate").click()
    expect(page.locator("#status")).to_contain_text("Step ", timeout=RUN_TIMEOUT_MS)
    page.locator("#stop").click()
    expect(page.locator("#status")).to_contain_text("Stopped", timeout=60_000)

    set_number(page, "steps", 2)
    page.locator("#generate").click()
    expect(page.locator("#status")).to_contain_text("Done: 2 steps", timeout=RUN_TIMEOUT_MS)
    page.wait_for_selector("[data-testid=model3d] canvas", timeout=60_000)
    page.screenshot(path=str(ARTIFACTS / "app_after_stop.png"), full_page=True)
