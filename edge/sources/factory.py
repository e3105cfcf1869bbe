"""Sources from the config: `[[image.sources]]` tables and `[audio.source]`.

Takes the typed tables of `edge/config/` (FolderSource, HttpSource, PicameraSource) or plain
dicts with the same keys, so it works before and after config parsing is settled.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from edge.sources.folder import FolderSource
from edge.sources.item import AUDIO, IMAGE, Source, SourceError
from edge.sources.ledger import Ledger
from edge.sources.picamera import PicameraSource
from edge.sources.snapshot import SnapshotSource, read_password_file

FOLDER_TYPES = {IMAGE: ("folder",), AUDIO: ("files", "folder")}
_CLASS_TYPES = {"FolderSource": "folder", "HttpSource": "http", "PicameraSource": "picamera2"}  # edge/config/


def build_sources(configs: Iterable[Any], state_dir: str | Path, ledger: Ledger | None = None, *,
                  kind: str = IMAGE) -> list[Source]:
    """One source per config table, in config order. A folder source needs `ledger` (opened in
    `state_dir` when not given). Raises SourceError naming the table and the key."""
    sources: list[Source] = []

    def shared_ledger() -> Ledger:  # opened only if some source needs it; one for all
        nonlocal ledger
        if ledger is None:
            ledger = Ledger.in_state_dir(state_dir)
        return ledger

    try:
        for n, config in enumerate(configs):
            where = f"image.sources[{n + 1}]" if kind == IMAGE else "audio.source"  # as edge/config/ names them
            source = _build(config, where, kind, shared_ledger)
            if any(s.name == source.name for s in sources):
                source.close()
                raise SourceError(f"{where}: a second source named {source.name!r}; give each a different `name`")
            sources.append(source)
    except BaseException:
        for source in sources:
            source.close()
        raise
    return sources


def _build(config: Any, where: str, kind: str, ledger) -> Source:
    get = _getter(config)
    type_ = get("type") or _CLASS_TYPES.get(type(config).__name__)
    name = get("name")
    try:
        if type_ in FOLDER_TYPES[kind]:
            path = _required(get, "path", where)
            suffixes = get("suffixes")
            return FolderSource(
                name or f"{type_}:{path}", path, ledger(), kind=kind,
                suffixes=tuple(suffixes) if suffixes else None,
                settle_s=float(get("settle_s", 2.0)), poll_s=float(get("poll_s", 1.0)), after=get("after", "keep"),
                done_dir=get("done_dir"), recursive=bool(get("recursive", False)),
            )
        if kind == IMAGE and type_ == "http":
            url = _required(get, "url", where)
            username, password_file = get("username"), get("password_file")
            return SnapshotSource(
                name or url, url, interval_s=float(get("interval_s", 60.0)), timeout_s=float(get("timeout_s", 10.0)),
                username=username, password=read_password_file(name or url, password_file) if password_file else None,
                ca_file=get("ca_file"), tls_verify=bool(get("tls_verify", True)),
                **({"max_bytes": int(get("max_bytes"))} if get("max_bytes") else {}),
            )
        if kind == IMAGE and type_ == "picamera2":
            camera = int(get("camera", 0))
            return PicameraSource(name or f"picamera2:{camera}", interval_s=float(get("interval_s", 30.0)),
                                  camera=camera, size=get("size"))
    except SourceError as exc:
        raise SourceError(f"{where}: {exc}") from None
    known = ", ".join(FOLDER_TYPES[kind] + (("http", "picamera2") if kind == IMAGE else ()))
    raise SourceError(f"{where}: type = {type_!r}: build_sources makes {kind} sources of type {known} only")


def _getter(config: Any):
    def get(key: str, default=None):
        value = config.get(key) if isinstance(config, dict) else getattr(config, key, None)
        return default if value is None else value

    return get


def _required(get, key: str, where: str):
    value = get(key)
    if value in (None, ""):
        raise SourceError(f"{where}: `{key}` is missing; add {key} = \"...\"")
    return value
