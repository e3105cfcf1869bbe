"""The web page of `nv-base serve`: one Flask app, served by waitress (basestation/serve_cli.py).

Everything the page needs ships in basestation/web/static/ (Leaflet, the Natural Earth borders and
coastlines, our scripts): the page fetches nothing from outside, and the Content-Security-Policy
says so to the browser too. The operator's own map (an XYZ tile folder, a georeferenced overview
picture) is served from the paths in the config. docs/web.md describes the page and its JSON API.
"""

from __future__ import annotations

import threading
from pathlib import Path

from flask import Flask, abort, g, redirect, render_template, send_file, send_from_directory

from basestation.baseconfig import ServeConfig
from basestation.store import Store
from basestation.web import api, auth

HERE = Path(__file__).resolve().parent
TILE_TYPES = ("png", "jpg", "jpeg", "webp")
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")


def create_app(where: str | Path, config: ServeConfig | None = None, *, password: str | None = None) -> Flask:
    """The page on the store at `where`: a SQLite file or a PostgreSQL URI (its tables, the page's
    included, are the migrations'; opening the store applies those it lacks)."""
    config = config or ServeConfig()
    Store(where, password=password).close()  # migrated before the first request; each thread opens its own
    app = Flask(__name__, static_folder=str(HERE / "static"), template_folder=str(HERE / "templates"))
    app.config.update(NV_DB=where, NV_SERVE=config, MAX_CONTENT_LENGTH=64 * 1024,
                      NV_TILE_TYPE=_tile_type(config.tiles), JSON_SORT_KEYS=False)
    local = threading.local()

    @app.before_request
    def _connect():
        # a PostgreSQL connection the server dropped (a restart) is opened again on the next request
        if getattr(local, "store", None) is None or getattr(local.store.db, "closed", False):
            local.store = Store(where, password=password)
        g.store = local.store

    @app.after_request
    def _headers(response):
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["X-Frame-Options"] = "DENY"
        if response.mimetype in ("application/json", "text/html"):
            response.headers["Cache-Control"] = "no-store"
        return response

    auth.install(app)
    app.register_blueprint(auth.blueprint)
    app.register_blueprint(api.blueprint, url_prefix="/api")

    @app.get("/")
    def index():
        if g.session is None:
            return redirect("/login")
        return render_template("index.html", session=g.session)

    @app.get("/tiles/<int:z>/<int:x>/<int:y>.<ext>")
    @auth.requires("read-only")
    def tile(z: int, x: int, y: int, ext: str):
        if config.tiles is None or ext != app.config["NV_TILE_TYPE"]:
            abort(404)
        return send_from_directory(config.tiles, f"{z}/{x}/{y}.{ext}", max_age=3600)

    @app.get("/overlay")
    @auth.requires("read-only")
    def overlay():
        if config.overlay is None or not config.overlay.is_file():
            abort(404)
        return send_file(config.overlay, max_age=3600)

    return app


def _tile_type(folder: Path | None) -> str | None:
    """The extension of the tiles in an XYZ folder ({z}/{x}/{y}.png), from the first tile found."""
    if folder is None:
        return None
    for z in sorted(p for p in folder.iterdir() if p.is_dir() and p.name.isdigit()):
        for x in sorted(p for p in z.iterdir() if p.is_dir()):
            for tile in x.iterdir():
                ext = tile.suffix.lstrip(".").lower()
                if ext in TILE_TYPES:
                    return ext
    return "png"
