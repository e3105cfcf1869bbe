"""The page in a real headless Chromium: a unit publishes through a real mosquitto (`nv-edge publish`),
`nv-base listen` stores, `nv-base serve` shows. Log in, see the detection arrive live, open its evidence,
mark it a false alarm, export, check the file; a read-only account cannot review."""

from __future__ import annotations

import csv
import random

from broker import wait_for
from browser import chromium, screenshot, serve, stop
from delivery import pki, site  # noqa: F401  (fixtures)
from detections import detection
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait
from webfixtures import PASSWORDS, ROLES, jpeg

from basestation import accounts
from basestation.store import Store
from edge.delivery.outbox import Outbox


def located(n: int, *, alert: bool = False, tiled: bool = False) -> dict:
    """A record near the Brazil–Guyana border, so the map shows borders around the detections."""
    rng = random.Random(n)
    record = detection("unit-1", n, alert=alert, tiled=tiled)
    record["geo"] = {"lat": round(3.4 + rng.uniform(-0.8, 0.8), 5), "lon": round(-59.9 + rng.uniform(-0.8, 0.8), 5),
                     "source": "exif"}
    return record


def log_in(driver, url: str, name: str) -> None:
    driver.get(url + "login")
    driver.find_element(By.ID, "name").send_keys(name)
    driver.find_element(By.ID, "password").send_keys(PASSWORDS[name])
    driver.find_element(By.ID, "login-button").click()
    WebDriverWait(driver, 15).until(EC.text_to_be_present_in_element((By.ID, "live"), "live"))


def overview_picture(path) -> None:
    from PIL import Image, ImageDraw

    picture = Image.new("RGB", (200, 160), (70, 120, 70))
    draw = ImageDraw.Draw(picture)
    for i in range(0, 200, 20):
        draw.line([(i, 0), (i, 160)], fill=(210, 200, 130))
        draw.line([(0, i), (200, i)], fill=(210, 200, 130))
    picture.save(path)


def test_a_detection_arrives_live_is_reviewed_and_exported(site, tmp_path):
    alert = located(10, alert=True, tiled=True)
    alert_geo = alert["geo"]
    site.broker.start()
    db = tmp_path / "base.db"
    listener = site.listener(db)
    listener.wait_log("listening on")
    store = Store(db)
    for name in ("ada", "rui"):
        accounts.add_user(store, name, ROLES[name], PASSWORDS[name])
    store.close()
    overview = tmp_path / "overview.png"  # the operator's georeferenced picture of the alert's surroundings
    overview_picture(overview)
    bounds = (alert_geo["lat"] - 0.25, alert_geo["lon"] - 0.35, alert_geo["lat"] + 0.25, alert_geo["lon"] + 0.35)
    server, url = serve(db, tmp_path / "serve.log", "--overlay", str(overview),
                        f"--overlay-bounds={','.join(map(str, bounds))}")
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    driver = chromium(tmp_path, downloads)
    try:
        driver.get(url + "login")
        driver.find_element(By.ID, "name").send_keys("ada")
        driver.find_element(By.ID, "password").send_keys("not-her-password")
        driver.find_element(By.ID, "login-button").click()
        assert "Wrong name or password" in driver.find_element(By.ID, "login-error").text
        log_in(driver, url, "ada")
        assert driver.find_element(By.ID, "map-note").is_displayed()  # nothing located yet: the page works without it
        assert driver.find_elements(By.CSS_SELECTOR, ".event-button") == []

        # A unit publishes: a few routine frames and one tiled alert with its best-tile thumbnail.
        with Outbox(tmp_path / "outbox.db") as outbox:
            for n in range(1, 10):
                outbox.put(located(n))
            outbox.put(alert, thumbnail=jpeg())
        publisher = site.publisher(tmp_path / "outbox.db")
        item = WebDriverWait(driver, 60).until(
            EC.element_to_be_clickable((By.CSS_SELECTOR, f'.event-button[data-id="{alert["id"]}"]')))
        assert driver.current_url.rstrip("/") == url.rstrip("/")  # no reload: it came by polling
        WebDriverWait(driver, 20).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".event-button")) == 10)
        assert driver.find_element(By.ID, "map").is_displayed()
        assert driver.execute_script(  # the overview loaded, and the borders' canvas lies under it, in its own pane
            "const i = document.querySelector('.leaflet-overlay-pane img.leaflet-image-layer');"
            "return i && i.complete && i.naturalWidth === 200 && !!document.querySelector('.leaflet-basemap-pane canvas');")
        WebDriverWait(driver, 20).until(lambda d: "online" in d.find_element(By.ID, "units").text)
        screenshot(driver, tmp_path, "map")

        item.click()
        WebDriverWait(driver, 15).until(EC.visibility_of_element_located((By.ID, "review-form")))
        WebDriverWait(driver, 15).until(lambda d: d.execute_script(
            "const i = document.getElementById('thumbnail'); return i && i.complete && i.naturalWidth === 48;"))
        heatmap = driver.find_element(By.ID, "heatmap-mining")
        assert "16 × 16 tiles" in heatmap.get_attribute("aria-label")
        WebDriverWait(driver, 15).until(lambda d: d.find_elements(By.CSS_SELECTOR, "svg.chart circle"))
        assert driver.find_elements(By.ID, "audio") == []  # no audio segment: no player
        assert alert["id"] in driver.find_element(By.ID, "evidence").text
        screenshot(driver, tmp_path, "evidence")

        driver.find_element(By.ID, "verdict-false_alarm").click()
        driver.find_element(By.ID, "review-note").send_keys("tailings pond seen last year; not new")
        driver.find_element(By.ID, "review-save").click()
        WebDriverWait(driver, 15).until(EC.text_to_be_present_in_element((By.ID, "review-status"), "Saved: false alarm"))
        assert "ada" in driver.find_element(By.ID, "review-history").text
        WebDriverWait(driver, 15).until(lambda d: "false alarm" in d.find_element(
            By.CSS_SELECTOR, f'.event-button[data-id="{alert["id"]}"]').text)
        screenshot(driver, tmp_path, "review")

        driver.find_element(By.ID, "export-csv").click()
        done = downloads / "naturevision-reviews.csv"
        wait_for(done.exists, 20, "the CSV download")
        rows = list(csv.DictReader(done.open(encoding="utf-8")))
        assert [(r["record_id"], r["device"], r["label"], r["verdict"], r["reviewer"]) for r in rows] == [
            (alert["id"], "unit-1", "mining", "false_alarm", "ada")]
        assert rows[0]["note"] == "tailings pond seen last year; not new" and rows[0]["time"] == alert["time"]
        assert float(rows[0]["score"]) == alert["score"]

        # A read-only account sees the verdict but is offered no form.
        driver.find_element(By.CSS_SELECTOR, "form.who button").click()
        WebDriverWait(driver, 15).until(EC.presence_of_element_located((By.ID, "login-button")))
        log_in(driver, url, "rui")
        WebDriverWait(driver, 30).until(EC.element_to_be_clickable(
            (By.CSS_SELECTOR, f'.event-button[data-id="{alert["id"]}"]'))).click()
        WebDriverWait(driver, 15).until(EC.text_to_be_present_in_element((By.ID, "evidence"), "may look but not review"))
        assert driver.find_elements(By.ID, "review-form") == []
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"
                  and "/login - Failed to load resource: the server responded with a status of 401" not in e["message"]]
        assert errors == [], errors
        publisher.stop()
    finally:
        driver.quit()
        stop(server)
