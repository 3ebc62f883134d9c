"""Debian's Chromium, headless, driven by Selenium through Debian's chromedriver (both
installed by scripts/setup.sh; no browser is ever downloaded)."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = (
    "--headless",
    "--no-sandbox",  # as root in a container there is no user namespace to sandbox in
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
)


@contextlib.contextmanager
def chromium(width: int = 1366, height: int = 860) -> Iterator[WebDriver]:
    """A fresh browser (a new profile in a temporary folder), a laptop's screen."""
    with tempfile.TemporaryDirectory(prefix="ppr-chromium-") as profile:
        options = Options()
        options.binary_location = CHROMIUM
        for flag in FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={profile}")
        options.add_argument(f"--window-size={width},{height}")
        driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
        try:
            yield driver
        finally:
            driver.quit()


def until(driver: WebDriver, what: str, check: Callable[[WebDriver], Any], timeout: float = 60):
    """Wait for the page to show something (a bound on a hang, not a measurement). The
    page redraws its tables at every frame: an element may go stale while it is read."""
    wait = WebDriverWait(
        driver, timeout, poll_frequency=0.05, ignored_exceptions=(StaleElementReferenceException,)
    )
    return wait.until(check, what)


def text(driver: WebDriver, css: str) -> str:
    return str(driver.find_element(By.CSS_SELECTOR, css).text)


def fill(driver: WebDriver, fields: dict[str, str]) -> None:
    """Type into inputs by css selector (clearing what they held)."""
    for css, value in fields.items():
        el = driver.find_element(By.CSS_SELECTOR, css)
        el.clear()
        el.send_keys(value)


def table(driver: WebDriver, css: str) -> list[list[str]]:
    """The body rows of a table, cell texts (read at once, between two redraws)."""
    rows: list[list[str]] = driver.execute_script(
        "return [...document.querySelectorAll(arguments[0] + ' tbody tr')]"
        ".map((r) => [...r.cells].map((c) => c.innerText.trim()))",
        css,
    )
    return rows


def fetch(driver: WebDriver, path: str, method: str = "GET", body: str | None = None,
          headers: dict[str, str] | None = None) -> dict[str, Any]:  # fmt: skip
    """``fetch`` from inside the page (its cookies, its origin): status and JSON body."""
    result: dict[str, Any] = driver.execute_async_script(
        """
        const [path, method, body, headers, done] = arguments;
        fetch(path, {method, headers, body: body === null ? undefined : body})
          .then(async (r) => done({status: r.status, body: await r.json()}))
          .catch((e) => done({status: 0, body: String(e)}));
        """,
        path,
        method,
        body,
        headers or {},
    )
    return result


def screenshot(driver: WebDriver, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(path))
    return path
