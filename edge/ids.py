"""Record and event ids: UUIDv7, so that ids sort by creation time on the unit and at the base."""

from __future__ import annotations

import secrets
import time


def uuid7() -> str:
    """A UUIDv7 (RFC 9562): 48-bit Unix milliseconds, then random bits; sorts by creation time."""
    millis = time.time_ns() // 1_000_000
    value = (millis & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version
    value |= secrets.randbits(12) << 64
    value |= 0b10 << 62  # variant
    value |= secrets.randbits(62)
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def derived_uuid7(base: str, n: int) -> str:
    """The n-th id derived from a UUIDv7: same time and version bits, the rest from a hash of (base, n).
    One input that makes several records (a clip's events) gets ids that are the same every time it is
    classified, so a clip classified again after a crash is stored once."""
    import hashlib

    value = int(base.replace("-", ""), 16)
    if (value >> 76) & 0xF != 7:
        raise ValueError(f"{base!r} is not a UUIDv7")
    digest = int.from_bytes(hashlib.sha256(f"{base}/{n}".encode()).digest()[:8], "big")
    value = (value >> 64) << 64  # keep time, version, rand_a
    value |= 0b10 << 62
    value |= digest & ((1 << 62) - 1)
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
