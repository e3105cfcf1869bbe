"""A base-station database with detections, units and accounts, and the page's Flask app on it: on a
SQLite file and on a real PostgreSQL (tests/pgserver.py; with PostGIS when the server has it)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from detections import detection, event_phases
from PIL import Image

from basestation import accounts
from basestation.payloads import Accepted
from basestation.store import Store
from basestation.web.app import create_app

PASSWORDS = {"ada": "reviewer-pass-1", "rui": "read-only-pass-1", "root": "admin-pass-123"}
ROLES = {"ada": "reviewer", "rui": "read-only", "root": "admin"}
HTTPS = "https://localhost"  # the session cookie is Secure


def jpeg(colour=(140, 110, 60)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (48, 48), colour).save(out, "JPEG")
    return out.getvalue()


WEB_BACKENDS = ("sqlite", "postgresql")


def fill(db: str | Path) -> dict:
    """Ten frames of unit-1 (the 10th a tiled alert with a thumbnail), an audio event of unit-2, unit states."""
    store = Store(db)
    frames = [detection("unit-1", n, tiled=(n == 10)) for n in range(1, 11)]
    phases = event_phases("unit-2")
    items = [Accepted("detection", r["device"], r, r["id"]) for r in frames + phases]
    items.append(Accepted("thumbnail", "unit-1", jpeg(), frames[-1]["id"]))
    items.append(Accepted("status", "unit-1", {"schema": "1.0", "device": "unit-1", "state": "online",
                                                "time": "2026-05-01T10:00:00.000Z"}))
    items.append(Accepted("health", "unit-1", {"device": "unit-1", "time": "2026-05-01T10:00:01.000Z",
                                                "outbox": {"depth": 3}, "disk_free_bytes": 12_300_000_000,
                                                "cpu_temp_c": 51.2, "clock": {"synchronized": False}}))
    store.save(items)
    store.close()
    return {"frames": frames, "phases": phases, "alert": frames[-1]}


def add_accounts(db: str | Path) -> None:
    store = Store(db)
    for name, password in PASSWORDS.items():
        accounts.add_user(store, name, ROLES[name], password)
    store.close()


def log_in(client, name: str, password: str | None = None):
    """The login form as a browser fills it: GET (cookie + hidden token), then POST."""
    page = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    return client.post("/login", data={"name": name, "password": password or PASSWORDS[name], "csrf": token})


def csrf(client) -> str:
    return client.get("/api/me").get_json()["csrf"]


@pytest.fixture(params=WEB_BACKENDS)
def backend(request, tmp_path):
    """A fresh database as `--db` takes it: a SQLite file, or a PostgreSQL URI."""
    if request.param == "sqlite":
        yield str(tmp_path / "base.db")
        return
    databases = request.getfixturevalue("pg_databases")
    dsn = databases.new()
    yield dsn
    databases.drop(dsn)


@pytest.fixture
def store(backend):
    """The store on `backend`, closed at the end."""
    s = Store(backend)
    yield s
    s.close()


@pytest.fixture
def web(backend):
    db = backend
    data = fill(db)
    add_accounts(db)
    app = create_app(db)
    app.testing = True
    return app, db, data


def https_client(app):
    """A test client whose requests come over HTTPS, so that the Secure session cookie goes back."""
    c = app.test_client()
    c.environ_base["wsgi.url_scheme"] = "https"
    return c


@pytest.fixture
def client(web):
    return https_client(web[0])
