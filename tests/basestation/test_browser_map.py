"""`nv-base serve` on a real PostgreSQL, in a real headless Chromium: a drone scan's area record (a polygon
in `area`, no `geo`) is drawn on the map as its polygon, and a click on it opens its evidence."""

from __future__ import annotations

from browser import chromium, serve, stop
from detections import area_detection, detection
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait
from webfixtures import PASSWORDS, add_accounts

from basestation.payloads import Accepted
from basestation.store import Store


def test_serve_on_postgresql_draws_an_area_record_as_its_polygon(pg_databases, tmp_path):
    dsn = pg_databases.new()
    area = area_detection("drone-1", 50, west=-59.70, south=-3.60, size=0.02)
    frames = [detection("unit-1", n) for n in (1, 2)]
    store = Store(dsn)
    store.save([Accepted("detection", r["device"], r, r["id"]) for r in [area, *frames]])
    store.close()
    add_accounts(dsn)
    server, url = serve(dsn, tmp_path / "serve.log")
    driver = chromium(tmp_path, tmp_path)
    try:
        driver.get(url + "login")
        driver.find_element(By.ID, "name").send_keys("rui")
        driver.find_element(By.ID, "password").send_keys(PASSWORDS["rui"])
        driver.find_element(By.ID, "login-button").click()
        WebDriverWait(driver, 15).until(EC.text_to_be_present_in_element((By.ID, "live"), "live"))
        polygon = WebDriverWait(driver, 15).until(EC.presence_of_element_located((By.CSS_SELECTOR, "path.area-polygon")))
        assert driver.find_element(By.ID, "map").is_displayed()
        assert len(driver.find_elements(By.CSS_SELECTOR, "path.area-polygon")) == 1
        assert polygon.get_attribute("d").count("L") == 3  # four corners (Leaflet closes the ring itself)
        driver.execute_script("arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}))", polygon)
        WebDriverWait(driver, 15).until(EC.text_to_be_present_in_element((By.ID, "evidence"), area["id"]))
        assert "postgresql://" in (tmp_path / "serve.log").read_text() and pg_databases.server.password not in (
            tmp_path / "serve.log").read_text()
    finally:
        driver.quit()
        stop(server)
