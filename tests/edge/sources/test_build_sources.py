"""build_sources: from [[image.sources]] / [audio.source] tables (dicts or edge/config/'s
dataclasses) to running sources, with errors that name the table."""

from __future__ import annotations

import sys

import pytest

from edge.sources.factory import build_sources
from edge.sources.folder import FolderSource
from edge.sources.item import AUDIO, SourceError
from edge.sources.ledger import Ledger
from edge.sources.snapshot import SnapshotSource


def test_builds_each_kind_from_plain_tables_in_config_order(tmp_path):
    (tmp_path / "incoming").mkdir()
    (tmp_path / "camera.pass").write_text("s3cret\n")
    configs = [
        {"type": "folder", "path": str(tmp_path / "incoming"), "settle_s": 0.5, "after": "move",
         "done_dir": str(tmp_path / "done"), "recursive": True},
        {"type": "http", "url": "http://192.0.2.1/picture", "username": "viewer",
         "password_file": str(tmp_path / "camera.pass"), "interval_s": 5},
    ]
    folder, camera = build_sources(configs, tmp_path / "state")
    assert isinstance(folder, FolderSource) and isinstance(camera, SnapshotSource)
    assert (folder.settle_s, folder.after, folder.recursive) == (0.5, "move", True)
    assert (tmp_path / "done").is_dir()
    assert folder.ledger.path == tmp_path / "state" / "sources.db"
    assert camera.name == "http://192.0.2.1/picture" and camera.interval_s == 5
    assert folder.name == f"folder:{tmp_path / 'incoming'}"  # stable across reordering the config


def test_uses_the_ledger_it_is_given_and_names_it_is_given(tmp_path):
    with Ledger(tmp_path / "mine.db") as ledger:
        (src,) = build_sources([{"type": "folder", "path": str(tmp_path), "name": "card"}], tmp_path, ledger)
        assert src.ledger is ledger and src.name == "card"


def test_audio_files_is_a_folder_of_clips(tmp_path):
    (src,) = build_sources([{"type": "files", "path": str(tmp_path)}], tmp_path / "state", kind=AUDIO)
    assert isinstance(src, FolderSource) and src.kind == AUDIO and ".wav" in src.suffixes


def test_takes_the_config_dataclasses(tmp_path):
    config = pytest.importorskip("edge.config")
    (tmp_path / "incoming").mkdir()
    folder, camera = build_sources([config.FolderSource(path=tmp_path / "incoming", settle_s=3.0),
                                    config.HttpSource(url="http://192.0.2.1/picture", timeout_s=2.0)], tmp_path)
    assert isinstance(folder, FolderSource) and folder.settle_s == 3.0
    assert isinstance(camera, SnapshotSource) and camera.timeout_s == 2.0


@pytest.mark.parametrize(("configs", "message"), [
    ([{"type": "folder", "path": "/x"}, {"type": "rtsp", "url": "rtsp://cam"}],
     r"image.sources\[2\]: type = 'rtsp': build_sources makes image sources of type folder, http, picamera2 only"),
    ([{"type": "folder"}], r"image.sources\[1\]: `path` is missing"),
    ([{"type": "folder", "path": "/nowhere/at/all"}], r"image.sources\[1\]: .*/nowhere/at/all does not exist"),
    ([{"type": "http", "url": "http://cam/p", "username": "u", "password_file": "/nowhere/camera.pass"}],
     r"image.sources\[1\]: .*cannot read password_file /nowhere/camera.pass"),
    ([{"type": "picamera2"}], r"image.sources\[1\]: picamera2 is not installed: on Raspberry Pi OS run sudo apt"),
    ([{"type": "http", "url": "http://cam/p"}, {"type": "http", "url": "http://cam/p"}],
     r"image.sources\[2\]: a second source named 'http://cam/p'"),
])
def test_errors_name_the_table(tmp_path, monkeypatch, configs, message):
    monkeypatch.setitem(sys.modules, "picamera2", None)
    if configs[0].get("path") == "/x":
        configs[0]["path"] = str(tmp_path)
    with pytest.raises(SourceError, match=message):
        build_sources(configs, tmp_path / "state")
