"""Where and when a frame was taken, from its EXIF block (GPS IFD and capture time)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from PIL import Image

GPS_IFD = 0x8825
EXIF_IFD = 0x8769
_DATETIME = 0x0132
_DATETIME_ORIGINAL = 0x9003
_OFFSET_TIME_ORIGINAL = 0x9011
_SUBSEC_TIME_ORIGINAL = 0x9291
# GPS tags
_LAT_REF, _LAT, _LON_REF, _LON, _ALT_REF, _ALT = 1, 2, 3, 4, 5, 6


def read_geo(exif: Image.Exif) -> dict | None:
    """{'lat', 'lon'[, 'alt']} in decimal degrees / metres above sea level, or None when absent or invalid."""
    try:
        gps = exif.get_ifd(GPS_IFD)
    except Exception:  # noqa: BLE001 - a malformed GPS block counts as no position
        return None
    if not gps or _LAT not in gps or _LON not in gps:
        return None
    try:
        lat = _degrees(gps[_LAT]) * (-1 if str(gps.get(_LAT_REF, "N")).upper().startswith("S") else 1)
        lon = _degrees(gps[_LON]) * (-1 if str(gps.get(_LON_REF, "E")).upper().startswith("W") else 1)
    except (TypeError, ValueError, ZeroDivisionError, IndexError):
        return None
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        return None
    geo = {"lat": round(lat, 7), "lon": round(lon, 7)}
    if _ALT in gps:
        try:
            alt = float(gps[_ALT])
            ref = gps.get(_ALT_REF, 0)
            ref = ref[0] if isinstance(ref, bytes) and ref else ref
            geo["alt"] = round(-alt if ref == 1 else alt, 2)
        except (TypeError, ValueError, ZeroDivisionError):
            pass
    geo["source"] = "exif"
    return geo


def _degrees(dms) -> float:
    d, m, s = (float(v) for v in dms)
    return d + m / 60.0 + s / 3600.0


def read_capture_time(exif: Image.Exif) -> tuple[datetime, str] | None:
    """(UTC time, how it was known). EXIF time without an offset is taken as UTC and says so."""
    try:
        sub = exif.get_ifd(EXIF_IFD)
    except Exception:  # noqa: BLE001
        sub = {}
    text = sub.get(_DATETIME_ORIGINAL) or exif.get(_DATETIME)
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.strptime(text.strip("\x00 ").strip(), "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    subsec = str(sub.get(_SUBSEC_TIME_ORIGINAL, "")).strip("\x00 ")
    if subsec.isdigit():
        moment += timedelta(seconds=float("0." + subsec))
    offset = _parse_offset(sub.get(_OFFSET_TIME_ORIGINAL))
    if offset is None:
        return moment.replace(tzinfo=timezone.utc), "exif-assumed-utc"
    return (moment.replace(tzinfo=offset)).astimezone(timezone.utc), "exif"


def _parse_offset(text) -> timezone | None:
    if not isinstance(text, str):
        return None
    text = text.strip("\x00 ")
    if len(text) != 6 or text[0] not in "+-" or text[3] != ":":
        return None
    try:
        minutes = int(text[1:3]) * 60 + int(text[4:6])
    except ValueError:
        return None
    return timezone(timedelta(minutes=minutes if text[0] == "+" else -minutes))
