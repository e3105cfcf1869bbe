"""`nv-base serve` in a real headless Chromium: on a real PostgreSQL, a drone scan's area record (a polygon
in `area`, no `geo`) is drawn on the map as its polygon, and a click on it opens its evidence; on SQLite,
the map shows what is in its view (not the event list's page): dragged to a place, it shows a record
that the list's first page left out, and a record that arrives there live."""

from __future__ import annotations

from browser import chromium, serve, stop
from detections import area_detection, detection
from selenium.webdriver.common.action_chains import ActionChains
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


def test_the_map_shows_what_is_in_its_view_not_the_lists_page(tmp_path):
    db = tmp_path / "base.db"
    cluster = []
    for n in range(1000, 1520):  # 520 records within 0.01° of (-3.59, -59.69): more than the list's first page (500)
        record = detection("unit-1", n)
        record["geo"] = {"lat": -3.59 + (n % 23 - 11) / 2300, "lon": -59.69 + (n % 19 - 9) / 1900, "source": "exif"}
        cluster.append(record)
    far = detection("unit-2", 1)  # older than all of them, 0.15° (16 km) east
    far["geo"] = {"lat": -3.59, "lon": -59.54, "source": "exif"}
    store = Store(db)
    store.save([Accepted("detection", r["device"], r, r["id"]) for r in [far, *cluster]])
    store.close()
    add_accounts(db)
    server, url = serve(db, tmp_path / "serve.log")
    driver = chromium(tmp_path, tmp_path)
    wait = WebDriverWait(driver, 20)
    try:
        driver.get(url + "login")
        driver.find_element(By.ID, "name").send_keys("rui")
        driver.find_element(By.ID, "password").send_keys(PASSWORDS["rui"])
        driver.find_element(By.ID, "login-button").click()
        wait.until(EC.text_to_be_present_in_element((By.ID, "live"), "live"))
        wait.until(EC.text_to_be_present_in_element((By.ID, "map-cap"), "Showing the newest 500 of more"))
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "path.detection-marker")) == 500)
        assert driver.find_elements(By.CSS_SELECTOR, f'.event-button[data-id="{far["id"]}"]') == []
        assert driver.find_elements(By.CSS_SELECTOR, f"path.d-{far['id']}") == []
        # Fitted to the cluster at zoom 12 (2,913 px a degree of longitude): `far` is 437 px east of the
        # middle, beyond the map's edge. Drag the map 440 px west, from a point away from the markers.
        box = driver.find_element(By.ID, "map")
        drag = ActionChains(driver).move_to_element_with_offset(box, 200, 100).click_and_hold()
        for _ in range(11):
            drag = drag.move_by_offset(-40, 0)
        drag.release().perform()
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, f"path.d-{far['id']}")))
        wait.until(lambda d: not d.find_element(By.ID, "map-cap").is_displayed())  # one record in view: no cap
        assert driver.find_elements(By.CSS_SELECTOR, f'.event-button[data-id="{far["id"]}"]') == []
        assert len(driver.find_elements(By.CSS_SELECTOR, "path.detection-marker")) < 10  # the cluster is out of view

        late = detection("unit-2", 2000)  # arrives while the map looks there
        late["geo"] = {"lat": -3.591, "lon": -59.541, "source": "exif"}
        store = Store(db)
        store.save([Accepted("detection", "unit-2", late, late["id"])])
        store.close()
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, f"path.d-{late['id']}")))
        assert driver.find_elements(By.CSS_SELECTOR, f"path.d-{far['id']}")
    finally:
        driver.quit()
        stop(server)
