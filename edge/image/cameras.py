"""Sensor sizes of common drone cameras, for frames whose EXIF does not give the sensor size
(FocalPlaneXResolution). Keyed by EXIF Make and Model as the cameras write them, compared without
case and surrounding spaces.

The millimetres come from the makers' published specifications; where a maker gives only the sensor
type (1/1.3-inch) or the image sensor chip, the comment says how the width was worked out. A frame
whose camera is not here needs FocalPlaneXResolution, FocalLengthIn35mmFilm, or `--gsd`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Camera:
    name: str
    sensor_width_mm: float
    sensor_height_mm: float


CAMERAS: dict[tuple[str, str], Camera] = {
    # DJI Mavic 3 / Mavic 3 Classic, Hasselblad L2D-20c: 4/3 CMOS, 17.3 x 13.0 mm (DJI Mavic 3 specs; 4/3 type)
    ("dji", "l2d-20c"): Camera("DJI Mavic 3 (Hasselblad L2D-20c)", 17.3, 13.0),
    ("hasselblad", "l2d-20c"): Camera("DJI Mavic 3 (Hasselblad L2D-20c)", 17.3, 13.0),
    # DJI Mavic 3 Enterprise (M3E): wide camera 4/3 CMOS, 20 MP, 17.3 x 13.0 mm (DJI Mavic 3 Enterprise specs)
    ("dji", "m3e"): Camera("DJI Mavic 3 Enterprise", 17.3, 13.0),
    # DJI Mavic 3 Multispectral (M3M): RGB camera 4/3 CMOS, 20 MP, 17.3 x 13.0 mm (DJI Mavic 3M specs)
    ("dji", "m3m"): Camera("DJI Mavic 3 Multispectral (RGB)", 17.3, 13.0),
    # DJI Mini 3 Pro (FC3582), Mini 3 (FC3682), Mini 4 Pro (FC8482): 1/1.3-inch CMOS, 48 MP (DJI specs give
    # only the type); 9.7 x 7.3 mm is the 4:3 frame of a 1/1.3-inch type (12.2 mm diagonal)
    ("dji", "fc3582"): Camera("DJI Mini 3 Pro", 9.7, 7.3),
    ("dji", "fc3682"): Camera("DJI Mini 3", 9.7, 7.3),
    ("dji", "fc8482"): Camera("DJI Mini 4 Pro", 9.7, 7.3),
    # DJI Phantom 4 Pro / Pro V2.0 / Advanced (FC6310, FC6310S): 1-inch CMOS, 13.2 x 8.8 mm (DJI Phantom 4 Pro specs)
    ("dji", "fc6310"): Camera("DJI Phantom 4 Pro", 13.2, 8.8),
    ("dji", "fc6310s"): Camera("DJI Phantom 4 Pro V2.0", 13.2, 8.8),
    # DJI Air 2S (FC3411): 1-inch CMOS, 20 MP, 13.2 x 8.8 mm (DJI Air 2S specs)
    ("dji", "fc3411"): Camera("DJI Air 2S", 13.2, 8.8),
    # Parrot ANAFI: 1/2.4-inch CMOS, 21 MP (Parrot ANAFI specs): the Sony IMX230's 5344 x 4016 px at 1.12 um
    # = 5.99 x 4.50 mm
    ("parrot", "anafi"): Camera("Parrot ANAFI", 5.99, 4.50),
    # Autel EVO II (8K): 1/2-inch CMOS, 48 MP (Autel EVO II specs): the Sony IMX586's 8000 x 6000 px at 0.8 um
    # = 6.4 x 4.8 mm
    ("autel robotics", "evo ii"): Camera("Autel EVO II (8K)", 6.4, 4.8),
    # Autel EVO II Pro (6K): 1-inch CMOS, 20 MP, 13.2 x 8.8 mm (Autel EVO II Pro specs)
    ("autel robotics", "evo ii pro"): Camera("Autel EVO II Pro (6K)", 13.2, 8.8),
}


def find_camera(make: object, model: object) -> Camera | None:
    """The table's row for an EXIF Make and Model, or None."""
    if not isinstance(make, str) or not isinstance(model, str):
        return None
    return CAMERAS.get((make.strip("\x00 ").lower(), model.strip("\x00 ").lower()))
