"""Browser tests: Playwright for Python driving Debian's chromium (installed by .ci/run) against a live server.

Screenshots are kept in BROWSER_ARTIFACTS_DIR (default ``test-artifacts/browser/``, not committed).
"""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ARTIFACTS = Path(
    os.environ.get("BROWSER_ARTIFACTS_DIR", Path(__file__).resolve().parents[2] / "test-artifacts" / "browser")
)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    # Playwright's sync API runs an event loop in this thread while the browser is open, and the
    # tests' own ORM calls are plain sync calls: allowed for this module only, then put back, so
    # no later test (or process it starts) inherits the switch.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: .ci/run installs Debian's chromium"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
            try:
                yield browser
            finally:
                browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser, request: pytest.FixtureRequest) -> Iterator[object]:
    """A 1400 px wide page; ``page.shot(name)`` keeps a full-page screenshot under the test's name."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()
    page.set_default_timeout(10_000)
    folder = ARTIFACTS / request.node.name
    folder.mkdir(parents=True, exist_ok=True)

    def shot(name: str) -> Path:
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    page.shot = shot
    try:
        yield page
    finally:
        context.close()
