"""The browser tier: the dashboard in a real headless chromium (Debian's `chromium` and
`chromium-driver`, installed by scripts/bootstrap) driven by selenium, against real clusters
(the integration tier's `cluster_factory`).

Waiting is on what the page shows (WebDriverWait on an element or a text), never on time.
Screenshots go to a temporary directory, or into `$SHOAL_UI_SCREENSHOTS` (the README's
pictures: `SHOAL_UI_SCREENSHOTS=docs/ui scripts/test -m browser`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import cluster_factory  # noqa: F401 - the fixture, shared

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
WINDOW = (1440, 960)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    """A fresh headless chromium per test (its own profile: no state shared between tests)."""
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.fail("chromium and chromium-driver are needed (scripts/bootstrap installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",  # as root chromium refuses to start sandboxed
        "--disable-gpu",
        "--disable-dev-shm-usage",
        # No network but loopback here: keep chromium from trying anything else at start.
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-extensions",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-quic",
        "--metrics-recording-only",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        "--lang=en-US",
        "--force-device-scale-factor=1",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER, log_output=str(tmp_path / "chromedriver.log")), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        try:
            for entry in driver.get_log("browser"):
                print("browser console:", entry)  # shown when the test failed
        except Exception:  # noqa: BLE001 - logs are a debugging aid only
            pass
        driver.quit()


@pytest.fixture
def screenshot(tmp_path: Path) -> Callable[[object, str], Path]:
    target = Path(os.environ.get("SHOAL_UI_SCREENSHOTS") or tmp_path / "screenshots")
    target.mkdir(parents=True, exist_ok=True)

    def take(driver: object, name: str) -> Path:
        path = target / f"{name}.png"
        # The whole page and no more: a viewport as tall as the content, then back.
        height = driver.execute_script("return document.body.scrollHeight")  # type: ignore[attr-defined]
        metrics = {"width": WINDOW[0], "height": max(600, min(int(height) + 24, 3000)), "deviceScaleFactor": 1, "mobile": False}
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)  # type: ignore[attr-defined]
        try:
            driver.save_screenshot(str(path))  # type: ignore[attr-defined]
        finally:
            driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})  # type: ignore[attr-defined]
        assert path.stat().st_size > 10_000, f"screenshot {path} looks empty"
        return path

    return take
