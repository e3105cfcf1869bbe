"""Is the picture data whole? Checks on a JPEG's or a PNG's own structure, made after its header is read
and before a decoder allocates the picture: a file cut short, or a header that claims more than the
data holds, is refused instead of decoded into a confident answer.

Pillow alone lets both through. libjpeg only *warns* when a scan runs out of data (and fills the rest
of the picture with grey), and Pillow drops libjpeg's warnings: a JPEG cut short and closed with an end
marker (FF D9) decodes without a word. Pillow's PNG decoder stops at the end of the compressed rows
even when the header promised more, and leaves the missing rows black.
"""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass

CUT_SHORT = "the file ends before its picture does: it was cut short (an interrupted copy or transfer, a full card)"


class DamagedData(Exception):
    """The data cannot be the picture the header describes; the message says why, in plain words."""


# --- JPEG -----------------------------------------------------------------------------------------

_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # SOFn; C4, C8, CC are tables and a reserved code
_ARITHMETIC = frozenset({0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})  # can code a block in under one bit
_LOSSLESS = frozenset({0xC3, 0xC7, 0xCB, 0xCF})  # no 8x8 coefficients to account for
# What ends a scan's data: a marker, i.e. FF followed by anything but a stuffed 00, a restart (D0-D7)
# or another FF (fill before a marker).
_SCAN_END = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
# Bytes after a single scan's data in place of its end marker: enough for the decoder's read-ahead
# (at most 8 bytes), too few to stand in for missing blocks, and no marker, so a short scan stops it.
_NO_END = bytes(8)


@dataclass(frozen=True)
class Scan:
    components: tuple[int, ...]
    first: int  # spectral selection Ss..Se: the coefficients this scan codes
    last: int
    low_bit: int  # Al: the lowest bit it codes (0 = the coefficients are complete)
    data: tuple[int, int]  # offsets of its entropy-coded data


@dataclass(frozen=True)
class JpegLayout:
    marker: int  # SOFn: how the picture is coded
    width: int
    height: int
    sampling: dict[int, tuple[int, int]]  # component id -> (horizontal, vertical) sampling factors
    scans: tuple[Scan, ...]


def jpeg_layout(data: bytes) -> JpegLayout | None:
    """The frame header and the scans of a JPEG, up to its end marker or the end of the data; None if
    there is no frame header to read."""
    frame, scans, pos = None, [], 2
    while pos + 1 < len(data):
        if data[pos] != 0xFF:  # stray bytes between segments: libjpeg skips them, so do we
            pos = data.find(b"\xff", pos)
            if pos < 0:
                break
            continue
        marker = data[pos + 1]
        if marker == 0xD9:  # EOI
            break
        if marker == 0xFF or marker == 0x01 or 0xD0 <= marker <= 0xD7:  # fill, TEM, restart: no length
            pos += 1 if marker == 0xFF else 2
            continue
        end = pos + 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
        body, pos = data[pos + 4 : end], end
        if marker in _FRAMES and frame is None and len(body) >= 6:
            frame = (marker, body)
        elif marker == 0xDA and len(body) >= 1:  # SOS: its header, then its data up to the next marker
            found = _SCAN_END.search(data, pos)
            scans.append(_scan(body, pos, found.start() if found else len(data)))
            pos = scans[-1].data[1]
    if frame is None:
        return None
    marker, body = frame
    height, width, count = struct.unpack(">HHB", body[1:6])
    components = body[6 : 6 + 3 * count]  # id, sampling factors, quantisation table
    sampling = {components[i]: (components[i + 1] >> 4, components[i + 1] & 15) for i in range(0, len(components) - 1, 3)}
    return JpegLayout(marker=marker, width=width, height=height, sampling=sampling, scans=tuple(scans))


def _scan(header: bytes, start: int, end: int) -> Scan:
    count = header[0]
    tail = header[1 + 2 * count : 4 + 2 * count].ljust(3, b"\0")
    return Scan(components=tuple(header[1 : 1 + 2 * count : 2]), first=tail[0], last=tail[1], low_bit=tail[2] & 15,
                data=(start, end))


def jpeg_to_decode(data: bytes) -> bytes:
    """The bytes a decoder should read for this JPEG, once its scans are seen to be able to fill the
    picture its header claims. Raises DamagedData when they cannot.

    A single scan (a camera's baseline JPEG) is handed over up to the end of its data and without its
    end marker: a complete scan decodes exactly as before, and a scan short of data makes the decoder
    stop for lack of bytes (Pillow: "image file is truncated") instead of inventing the rest."""
    layout = jpeg_layout(data)
    if layout is None:
        return data  # no frame header we can read: the decoder will say what is wrong
    _check_enough_data(layout)
    _check_progression(layout)
    if len(layout.scans) == 1:
        return data[: layout.scans[0].data[1]] + _NO_END
    return data


def _check_enough_data(layout: JpegLayout) -> None:
    """Huffman coding spends at least one bit on every 8x8 block of every component, whatever the picture."""
    factors = layout.sampling.values()
    if layout.marker in _ARITHMETIC or not factors or min(min(f) for f in factors) < 1:
        return  # (bad sampling factors: the decoder refuses those itself)
    h_max, v_max = max(h for h, _ in factors), max(v for _, v in factors)
    blocks = sum(_ceil(_ceil(layout.width * h, h_max), 8) * _ceil(_ceil(layout.height * v, v_max), 8) for h, v in factors)
    held = sum(end - start for start, end in (scan.data for scan in layout.scans))
    if held * 8 < blocks:
        raise DamagedData(
            f"its header says {layout.width}x{layout.height} pixels, but the file holds only {held:,} bytes of "
            f"picture data, too few for that size (at least {_ceil(blocks, 8):,}): it was cut short, or its "
            "header is damaged"
        )


def _check_progression(layout: JpegLayout) -> None:
    """A picture is whole when its scans have coded every coefficient of every component down to the
    last bit; a progressive file cut short stops before its last scans."""
    if layout.marker in _LOSSLESS:
        return
    done = {component: set() for component in layout.sampling}
    for scan in layout.scans:
        for component in scan.components:
            if scan.low_bit == 0 and component in done:
                done[component].update(range(scan.first, scan.last + 1))
    if any(not coded.issuperset(range(64)) for coded in done.values()):
        raise DamagedData(f"{CUT_SHORT}; the picture stops after {len(layout.scans)} of its passes")


# --- PNG ------------------------------------------------------------------------------------------

_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # by colour type: grey, RGB, palette, grey+alpha, RGBA
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def check_png(data: bytes) -> None:
    """Raises DamagedData unless the PNG's compressed rows (its IDAT chunks) inflate to exactly the rows
    its header (IHDR) promises. Inflates once, a megabyte at a time, keeping nothing."""
    header = next((body for kind, body in _png_chunks(data) if kind == b"IHDR"), b"")
    if len(header) < 13:
        return  # the decoder refuses a PNG without a header itself
    width, height, depth, colour, interlace = struct.unpack(">IIBBxxB", header[:13])
    expected = png_data_size(width, height, depth * _CHANNELS.get(colour, 4), interlace == 1)
    inflate, produced = zlib.decompressobj(), 0
    try:
        for kind, body in _png_chunks(data):
            for start in range(0, len(body) if kind == b"IDAT" else 0, 1 << 16):  # 64 kB in, at most 1 MB out
                piece = body[start : start + (1 << 16)]
                while piece and produced <= expected:
                    produced += len(inflate.decompress(piece, 1 << 20))
                    piece = inflate.unconsumed_tail
    except zlib.error:
        raise DamagedData("its compressed picture data is corrupt") from None
    if produced > expected or (inflate.eof and produced < expected):
        raise DamagedData(
            f"its header says {width}x{height} pixels, but its picture data holds "
            f"{'more' if produced > expected else 'less'} than that: the header is damaged"
        )
    if not inflate.eof:
        raise DamagedData(CUT_SHORT)


def png_data_size(width: int, height: int, bits_per_pixel: int, interlaced: bool) -> int:
    """Bytes of filtered rows (a filter byte, then the pixels) that a PNG of this size inflates to."""
    passes = _ADAM7 if interlaced else ((0, 0, 1, 1),)
    size = 0
    for x0, y0, dx, dy in passes:
        columns, rows = _ceil(max(width - x0, 0), dx), _ceil(max(height - y0, 0), dy)
        if columns and rows:
            size += rows * (1 + _ceil(columns * bits_per_pixel, 8))
    return size


def _png_chunks(data: bytes):
    """(kind, body) of each chunk up to IEND; the last body comes short when the file does."""
    view, pos = memoryview(data), 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", view[pos : pos + 8])
        if kind == b"IEND":
            return
        yield kind, view[pos + 8 : pos + 8 + length]
        pos += 12 + length


def _ceil(a: int, b: int) -> int:
    return -(-a // b)
