"""Device checks: the microphone, and the image and audio sources (folders, HTTP snapshot, picamera2).
Nothing is opened: the running service holds the camera and the microphone."""

from __future__ import annotations

import os
import time
from pathlib import Path

from edge.audio.microphone import PORTAUDIO_HINT, MicrophoneError, find_device, import_sounddevice
from edge.config import ConfigError, EdgeConfig, FolderSource, HttpSource, MicrophoneSource, PicameraSource
from edge.doctor.check import Check, fail, ok, skipped, warn
from edge.features.logmel import LogMelSpec
from edge.image.decode import IMAGE_SUFFIXES
from edge.sources.folder import AUDIO_SUFFIXES, scan_folder
from edge.sources.item import SourceError
from edge.sources.picamera import import_picamera2
from edge.sources.snapshot import SnapshotSource
from edge.sources.timed import CaptureError

# -- 4. microphone ---------------------------------------------------------------------------------------

def check_microphone(cfg: EdgeConfig | None) -> list[Check]:
    if cfg is None:
        return [skipped("microphone")]
    if cfg.audio is None or not isinstance(cfg.audio.source, MicrophoneSource):
        return []
    return [check_input_device(cfg.audio.source.device, LogMelSpec.from_dict(cfg.audio.manifest.audio).sample_rate)]


def check_input_device(selector: str | int | None, rate: int) -> Check:
    """The device is there and takes the model's rate, or a rate we resample from. Only asks
    PortAudio (check_input_settings); no stream is opened."""
    name = "microphone"
    try:
        sd = import_sounddevice()
    except MicrophoneError as exc:
        fix = ("Install PortAudio: sudo apt install libportaudio2." if PORTAUDIO_HINT in str(exc)
               else "Install sounddevice into the service's venv: pip install sounddevice.")
        return fail(name, str(exc), fix)
    try:
        device = find_device(selector, sd)
    except MicrophoneError as exc:
        return fail(name, str(exc), "Plug the microphone in, or set [audio.source] device to a name or index "
                                    "of an input device listed here (`arecord -l` shows what ALSA sees).")
    tried = []
    # The order of edge.audio.microphone.Microphone: the model's rate (no resampling), else the device's own.
    for device_rate in dict.fromkeys((rate, device.default_rate)):
        for channels in dict.fromkeys((1, min(2, device.channels))):
            try:
                sd.check_input_settings(device=device.index, channels=channels, dtype="float32", samplerate=device_rate)
            except Exception as exc:  # noqa: BLE001 - sounddevice raises PortAudioError, ValueError, ...
                tried.append(f"{device_rate} Hz x {channels} ch: {exc}")
                continue
            how = "the model's rate" if device_rate == rate else f"resampled to the model's {rate} Hz"
            return ok(name, f"{device}: records {channels} ch at {device_rate} Hz ({how})")
    return fail(name, f"input device {device} takes none of the settings tried ({'; '.join(tried)})",
                "Use another input device: set [audio.source] device to it.")


# -- 5. sources ------------------------------------------------------------------------------------------

def check_sources(cfg: EdgeConfig | None) -> list[Check]:
    if cfg is None:
        return [skipped("sources")]
    checks = []
    for source in cfg.image.sources if cfg.image else ():
        checks.append(check_source(source, IMAGE_SUFFIXES))
    if cfg.audio is not None and isinstance(cfg.audio.source, FolderSource):
        checks.append(check_source(cfg.audio.source, AUDIO_SUFFIXES))
    return checks


def check_source(source, suffixes: tuple[str, ...]) -> Check:
    if isinstance(source, FolderSource):
        return check_folder(source, suffixes)
    if isinstance(source, HttpSource):
        return check_snapshot(source)
    if isinstance(source, PicameraSource):
        return check_picamera(source)
    return fail(f"source {source.name}", f"unknown source type {type(source).__name__}", "Update nv-edge.")


def check_folder(source: FolderSource, suffixes: tuple[str, ...]) -> Check:
    path = source.path
    name = f"source {source.name or 'folder'}"
    if not path.is_dir():
        return fail(name, f"{path}: no such folder (an SD card not mounted?)",
                    "Mount the card or create the folder (systemd-tmpfiles --create naturevision.conf makes the "
                    "default ones), or fix its path in the config.")
    writes = source.after != "keep"
    if not os.access(path, os.R_OK | os.X_OK | (os.W_OK if writes else 0)):
        need = "read and write (after = " + repr(source.after) + ")" if writes else "read"
        return fail(name, f"{path}: this user cannot {need} it",
                    "Give the service's user access (chown or chmod the folder), and run the doctor as that "
                    "user: sudo -u naturevision nv-edge doctor.")
    if source.after == "move" and source.done_dir is not None:
        target = source.done_dir if source.done_dir.is_dir() else source.done_dir.parent
        if not os.access(target, os.W_OK | os.X_OK):
            return fail(name, f"done_dir {source.done_dir}: this user cannot write there",
                        "Give the service's user write access to it, or fix done_dir in the config.")
    count, skipped = count_files(path, source.suffixes or suffixes, source.recursive, source.done_dir)
    access = "readable and writable" if writes else "readable"
    waiting = (f"{count} file(s) waiting" if writes
               else f"{count} file(s) in it (after = \"keep\": read files stay, the ledger knows which)")
    if skipped:
        first = next(iter(sorted(skipped.items())))
        return warn(name, f"{path}: {access}, {waiting}; {len(skipped)} entr{'y' if len(skipped) == 1 else 'ies'} "
                    f"named like a frame or clip will be skipped ({first[0]} {first[1]})",
                    "Replace them with regular files, or remove them: the service never reads them.")
    return ok(name, f"{path}: {access}, {waiting}")


def count_files(folder: Path, suffixes: tuple[str, ...], recursive: bool,
                done_dir: Path | None = None) -> tuple[int, dict[str, str]]:
    """(files the folder source would read, entries it would skip and why): the source's own rules."""
    found: dict[str, tuple[int, int]] = {}
    skipped: dict[str, str] = {}
    scan_folder(folder, tuple(s.lower() for s in suffixes), recursive=recursive, done_dir=done_dir,
                found=found, skipped=skipped)
    return len(found), skipped


def check_snapshot(source: HttpSource) -> Check:
    """One GET, as the service would make it."""
    name = f"source {source.name or source.url}"
    fix = ("Open the URL in a browser on the laptop: check the camera is on and on this network, "
           "and the url, username and password_file in the config.")
    try:
        camera = SnapshotSource(source.name or source.url, source.url, interval_s=source.interval_s,
                                timeout_s=source.timeout_s, username=source.username, password=source.password(),
                                ca_file=source.ca_file, tls_verify=source.tls_verify,
                                **({"max_bytes": source.max_bytes} if source.max_bytes else {}))
        start = time.perf_counter()
        data = camera.capture()
    except (CaptureError, SourceError, ConfigError) as exc:
        return fail(name, str(exc), fix)
    ms = (time.perf_counter() - start) * 1000
    return ok(name, f"{source.url}: an image of {len(data):,} bytes in {ms:.0f} ms (timeout {source.timeout_s:g} s)")


def check_picamera(source: PicameraSource) -> Check:
    name = f"source {source.name or f'picamera2:{source.camera}'}"
    try:
        picamera2 = import_picamera2()
    except SourceError as exc:
        return fail(name, str(exc), "sudo apt install python3-picamera2, and make the service's venv with "
                                    "--system-site-packages.")
    try:  # lists cameras without opening one: the service may hold it
        cameras = picamera2.Picamera2.global_camera_info()
    except Exception as exc:  # noqa: BLE001 - libcamera raises many kinds
        return fail(name, f"picamera2 imports but cannot list cameras: {type(exc).__name__}: {exc}",
                    "Check the ribbon cable and run rpicam-hello --list-cameras.")
    if source.camera >= len(cameras):
        return fail(name, f"camera {source.camera} not found; cameras: {cameras or 'none'}",
                    "Check the ribbon cable (rpicam-hello --list-cameras), or set camera to an index listed here.")
    info = cameras[source.camera]
    return ok(name, f"picamera2 imports; camera {source.camera}: {info.get('Model', info) if isinstance(info, dict) else info}")
