"""A real headless browser for tests: Debian's Chromium driven by Playwright.

``tests/run.sh`` installs the ``chromium`` package when it is missing; Playwright (a test
dependency) drives that binary, so no browser is downloaded at test time. The ``browser_page``
fixture in ``tests/conftest.py`` yields a fresh :class:`playwright.sync_api.Page`; console
errors of the page are collected in ``page.console_errors`` (a list of str) so a test can
assert there were none.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from playwright.sync_api import Page, sync_playwright

#: Where Debian's package puts the binary (PATH is searched first).
CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "/usr/bin/chromium")


def chromium_binary() -> str:
    """The Chromium executable ($GEOEDGE_CHROMIUM, else PATH, else /usr/bin/chromium)."""
    configured = os.environ.get("GEOEDGE_CHROMIUM")
    if configured:
        return configured
    for candidate in CHROMIUM_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    pytest.fail("chromium not found (PATH, /usr/bin/chromium): run tests/run.sh")


@contextmanager
def chromium_page(width: int = 1280, height: int = 900) -> Iterator[Page]:
    """A page in a fresh headless Chromium, closed on exit."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_binary(),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.console_errors = errors  # type: ignore[attr-defined]
            yield page
        finally:
            browser.close()
