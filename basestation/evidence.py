"""Evidence kept beside a detection: the alert's audio segment.

Units do not send audio yet (only a thumbnail of an image alert's best tile, in the `thumbnails`
table of the store). The table (migration 6) is there so that the page shows a segment as soon as
something puts one in, and hides the player while there is none. A segment is one short clip (WAV,
FLAC or Ogg).
"""

from __future__ import annotations

import time

from basestation.store import Store

AUDIO_TYPES = {"audio/wav", "audio/flac", "audio/ogg"}
MAX_AUDIO_BYTES = 4 * 1024 * 1024


def save_audio(store: Store, detection_id: str, device: str, mime: str, data: bytes) -> None:
    if mime not in AUDIO_TYPES:
        raise ValueError(f"{mime!r}: an audio segment is one of {', '.join(sorted(AUDIO_TYPES))}")
    if len(data) > MAX_AUDIO_BYTES:
        raise ValueError(f"an audio segment is at most {MAX_AUDIO_BYTES} bytes, not {len(data)}")
    store.execute("INSERT INTO audio_segments (id, device, received, mime, data) VALUES (?, ?, ?, ?, ?) "
                  "ON CONFLICT (id) DO NOTHING", (detection_id, device, time.time(), mime, data))
