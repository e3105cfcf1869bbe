"""Headless Chromium for the page's tests: Debian's chromium and chromedriver (make test installs them),
driven by selenium. No browser is downloaded; the flags keep Chromium off the network but for loopback."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--window-size=1400,900")
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"


def chromium(tmp_path: Path, downloads: Path):
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        pytest.skip("needs Debian's chromium and chromium-driver (make test installs them)")
    os.environ.setdefault("SE_AVOID_STATS", "true")  # selenium manager: no statistics sent anywhere
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER, log_output=str(tmp_path / "chromedriver.log")),
                              options=options)
    driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    return driver


def screenshot(driver, tmp_path: Path, name: str) -> Path:
    """A PNG in the test's folder; copied, shrunk to a palette, to docs/screenshots/ when
    NV_SCREENSHOTS=1 (how the ones in the docs were made)."""
    from PIL import Image

    path = tmp_path / f"{name}.png"
    time.sleep(0.6)  # let the map's zoom animation finish
    driver.save_screenshot(str(path))
    if os.environ.get("NV_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        image = Image.open(io.BytesIO(path.read_bytes())).convert("RGB").quantize(colors=256)
        image.save(SCREENSHOTS / f"{name}.png", optimize=True)
    return path


def serve(db: Path, log: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    """`nv-base serve` on a free loopback port, in its own process; (process, URL)."""
    from broker import wait_for

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = open(log, "w")
    proc = subprocess.Popen([sys.executable, "-m", "basestation.cli", "serve", "--db", str(db), "--port", "0", *extra],
                            stdout=out, stderr=subprocess.STDOUT, env=env)

    def url():
        if proc.poll() is not None:
            raise AssertionError(f"nv-base serve exited:\n{log.read_text()}")
        for line in log.read_text().splitlines():
            if line.startswith("nv-base serve: http://"):
                return line.split()[2]
        return None

    return proc, wait_for(url, 30, "nv-base serve to print its URL")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()

