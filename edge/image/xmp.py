"""The XMP packet of a frame (drones write their flight data there): namespaced name -> text.

Pillow hands over the packet of a JPEG (APP1), a TIFF (tag 700) or a PNG (iTXt) as bytes; we parse it
with the standard library's expat-based ElementTree, whose expat refuses entity-expansion bombs.
Both ways XMP writers spell a property are read: as an attribute of `rdf:Description`
(`drone-dji:RelativeAltitude="+80.20"`, as DJI writes it) and as an element with text.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from fractions import Fraction

MAX_XMP_BYTES = 1024 * 1024  # a drone's packet is a few kB; anything larger is not worth parsing

DJI = "http://www.dji.com/drone-dji/1.0/"
PIX4D_CAMERA = "http://pix4d.com/camera/1.0/"  # the Pix4D camera namespace, which Parrot writes too


def parse_xmp(packet: bytes | str | None) -> dict[str, str]:
    """{'{namespace}Name': text} for every simple property in the packet; {} when there is none or it
    does not parse (a broken packet is no reason to lose the frame)."""
    if not packet:
        return {}
    if isinstance(packet, str):
        packet = packet.encode("utf-8", "replace")
    if len(packet) > MAX_XMP_BYTES:
        return {}
    start = packet.find(b"<x:xmpmeta")
    end = packet.rfind(b"</x:xmpmeta>")
    if start >= 0 and end > start:
        packet = packet[start : end + len(b"</x:xmpmeta>")]
    try:
        root = ET.fromstring(packet)
    except ET.ParseError:
        return {}
    found: dict[str, str] = {}
    for element in root.iter():
        for name, value in element.attrib.items():
            if name.startswith("{"):
                found.setdefault(name, value)
        if len(element) == 0 and element.text and element.text.strip() and str(element.tag).startswith("{"):
            found.setdefault(str(element.tag), element.text.strip())
    return found


def xmp_number(properties: dict[str, str], namespace: str, name: str) -> float | None:
    """A property as a number: "+80.20", "-3.5" or a rational "4500/100"; None when absent or not a number."""
    text = properties.get(f"{{{namespace}}}{name}")
    if text is None:
        return None
    text = text.strip().lstrip("+")
    try:
        return float(Fraction(text)) if "/" in text else float(text)
    except (ValueError, ZeroDivisionError):
        return None
