"""Frames: decoding (decode.py), EXIF (exif.py), tiling (tiling.py), classifying a frame (classify.py), its
record (records.py) and a best-tile thumbnail (thumbnail.py). Imports features, model, decisions, records;
never edge.audio or edge.delivery.
"""
