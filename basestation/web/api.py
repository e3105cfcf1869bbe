"""The JSON API the page uses, under /api/ (docs/web.md lists every endpoint, its parameters and answers).

Every endpoint needs a session; reading needs the role read-only, reviewing reviewer. Errors are
`{"error": "..."}` with 400 (a bad parameter), 401 (no session), 403 (role, CSRF), 404.
"""

from __future__ import annotations

import io
import time

from flask import Blueprint, Response, current_app, g, jsonify, request

from basestation import accounts, review_export, reviews
from basestation.export import write_csv as detections_csv
from basestation.export import write_geojson as detections_geojson
from basestation.reviews import ReviewError
from basestation.web import queries
from basestation.web.auth import requires

blueprint = Blueprint("api", __name__)


@blueprint.errorhandler(queries.BadRequest)
def _bad_request(exc):
    return jsonify(error=str(exc)), 400


@blueprint.get("/me")
@requires("read-only")
def me():
    s = g.session
    return jsonify(name=s.name, role=s.role, csrf=s.csrf, may_review=s.may("reviewer"), expires=s.expires)


@blueprint.get("/config")
@requires("read-only")
def config():
    serve = current_app.config["NV_SERVE"]
    tile_type = current_app.config["NV_TILE_TYPE"]
    return jsonify(
        tiles=None if serve.tiles is None else {"url": f"/tiles/{{z}}/{{x}}/{{y}}.{tile_type}", "max_zoom": serve.tiles_max_zoom},
        overlay=None if serve.overlay is None else {"url": "/overlay", "bounds": serve.overlay_bounds},
        basemap="/static/vendor/world-atlas/countries-50m.json", poll_s=2.0)


@blueprint.get("/detections")
@requires("read-only")
def detections():
    return jsonify(queries.records(g.store, queries.filters_from(request.args)))


@blueprint.get("/map")
@requires("read-only")
def map_box():
    west, south, east, north, limit = queries.box_from(request.args)
    return jsonify(queries.in_box(g.store, west, south, east, north, limit, queries.filters_from(request.args)))


@blueprint.get("/detections/<detection_id>")
@requires("read-only")
def detection(detection_id: str):
    found = queries.detail(g.store, detection_id)
    return jsonify(found) if found else _not_found(f"detection {detection_id}")


@blueprint.get("/detections/<detection_id>/series")
@requires("read-only")
def series(detection_id: str):
    found = queries.series(g.store, detection_id)
    return jsonify(found) if found else _not_found(f"detection {detection_id}")


@blueprint.get("/detections/<detection_id>/thumbnail")
@requires("read-only")
def thumbnail(detection_id: str):
    return _blob("thumbnails", detection_id)


@blueprint.get("/detections/<detection_id>/audio")
@requires("read-only")
def audio(detection_id: str):
    return _blob("audio_segments", detection_id)


@blueprint.get("/units")
@requires("read-only")
def units():
    return jsonify(units=queries.units(g.store), now=time.time())


@blueprint.get("/facets")
@requires("read-only")
def facets():
    return jsonify(queries.facets(g.store))


@blueprint.get("/reviews")
@requires("read-only")
def review_history():
    target = request.args.get("target", "")
    return jsonify(reviews=[r.as_json() for r in reviews.history(g.store, [target])[target]])


@blueprint.post("/reviews")
@requires("reviewer")
def review():
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return jsonify(error="send a JSON object: target_kind, target, verdict, note"), 400
    try:
        kept = reviews.add_review(g.store, target_kind=body.get("target_kind"), target=body.get("target"),
                                  verdict=body.get("verdict"), note=body.get("note") or "", reviewer=g.session.name,
                                  anchor=body.get("anchor"))
    except ReviewError as exc:
        return jsonify(error=str(exc)), 404 if "stored" in str(exc) else 400
    return jsonify(kept.as_json()), 201


@blueprint.get("/export/reviews.<fmt>")
@requires("read-only")
def export_reviews(fmt: str):
    if fmt not in review_export.WRITERS:
        return _not_found(f"format {fmt} (csv, json, geojson)")
    out = io.StringIO()
    review_export.WRITERS[fmt](reviews.labelled_rows(g.store), out)
    return _download(out.getvalue(), f"naturevision-reviews.{fmt}", review_export.MEDIA_TYPES[fmt])


@blueprint.get("/export/detections.<fmt>")
@requires("read-only")
def export_detections(fmt: str):
    if fmt not in ("csv", "geojson"):
        return _not_found(f"format {fmt} (csv, geojson)")
    rows = g.store.detections(alerts_only=request.args.get("alerts") in ("1", "true", "on"))
    out = io.StringIO()
    (detections_csv if fmt == "csv" else detections_geojson)(rows, out)
    return _download(out.getvalue(), f"naturevision-detections.{fmt}",
                     "text/csv" if fmt == "csv" else "application/geo+json")


@blueprint.get("/users")
@requires("admin")
def users():
    return jsonify(users=[{"name": n, "role": r, "created": c} for n, r, c in accounts.users(g.store)])


def _blob(table: str, detection_id: str):
    found = queries.blob(g.store, table, detection_id)
    if found is None:
        return _not_found(f"{table[:-1].replace('_', ' ')} of {detection_id}")
    data, mime = found
    return Response(data, mimetype=mime, headers={"Cache-Control": "private, max-age=86400"})


def _download(text: str, name: str, mime: str) -> Response:
    return Response(text, mimetype=mime, headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _not_found(what: str):
    return jsonify(error=f"{what}: not found"), 404

