"""A video where PyAV is not installed: one error record saying what to install, nothing else."""

from __future__ import annotations

import sys

import jsonschema

from edge.decisions.alerts import resolve_thresholds
from edge.image.classify import ClassifyOptions
from edge.image.footage import fragment, video_records
from edge.model.loaded import load_model
from edge.records.schemas import load_schema


def test_without_pyav_a_video_is_one_error_record_naming_the_file_and_the_install(tiny_int8, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "av", None)  # as on a unit without the extra: `import av` raises ImportError
    video = tmp_path / "DJI_0001.MP4"
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42")
    model = load_model(tiny_int8)
    options = ClassifyOptions(thresholds=resolve_thresholds(model.manifest, {}))
    warnings = []
    ((record, frame),) = list(video_records(model, video, options, device="unit-7", warn=warnings.append))
    jsonschema.Draft202012Validator(load_schema("detection")).validate(record)
    assert frame is None and warnings == [] and record["source"] == str(video)
    assert record["error"] == (f"{video}: video files need PyAV, which is not installed: "
                               f"pip install 'naturevision[video]'")


def test_the_fragment_of_a_frame():
    assert fragment("DJI_0001.MP4", 12.0) == "DJI_0001.MP4#t=12.0"
    assert fragment("a/b.mov", 0.0) == "a/b.mov#t=0.0"
    assert fragment("b.mov", 1 / 30) == "b.mov#t=0.033" and fragment("b.mov", 2.5) == "b.mov#t=2.5"
