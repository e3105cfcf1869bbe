"""`nv-edge doctor`: what a technician with a laptop checks on a unit, one `Check` per line.

Each check is a plain function returning `Check`s. `run_checks` runs them in a fixed order and never
lets one stop the others: a check that raises becomes a FAIL naming the exception, and the checks
that need the config say "skipped: config failed" when it does not load (disk, clock and interpreter
still run). Nothing here changes the unit or its link: the outbox is only read; the broker sees one
CONNECT with a client id of its own and a clean session (never a publish, never a Last Will), so the
service's session is not taken over and nothing is left behind; the camera and the microphone are not
opened (the running service holds them).

Run it as the service's user (`sudo -u naturevision nv-edge doctor`): then a file the service could not
read fails here too, and the outbox is not touched by root.
"""

from __future__ import annotations

from pathlib import Path

from edge.doctor.broker import (
    CERT_WARN_DAYS,
    NETWORK_TIMEOUT_S,
    check_broker,
    check_broker_login,
    check_broker_reach,
    check_broker_tls,
)
from edge.doctor.check import FAIL, OK, WARN, Check, fail, ok, skipped, warn
from edge.doctor.config import check_config, fallback_state_dir
from edge.doctor.devices import (
    check_folder,
    check_input_device,
    check_microphone,
    check_picamera,
    check_snapshot,
    check_source,
    check_sources,
    count_files,
)
from edge.doctor.models import (
    AUDIO_HOP_SHARE,
    IMAGE_BATCH_MAX_S,
    LATENCY_RUNS,
    check_interpreter,
    check_model,
    check_models,
    median_latency_s,
)
from edge.doctor.system import (
    CLOCK_BACKWARDS_S,
    CLOCK_MIN_YEAR,
    DISK_FAIL_BYTES,
    DISK_WARN_BYTES,
    DISK_WARN_FRACTION,
    OUTBOX_OLD_S,
    SET_CLOCK,
    check_clock,
    check_disk,
    check_outbox,
    disk_status,
    newest_queued,
)

__all__ = [
    "OK", "WARN", "FAIL", "Check", "ok", "warn", "fail", "skipped", "run_checks",
    "check_config", "fallback_state_dir",
    "LATENCY_RUNS", "AUDIO_HOP_SHARE", "IMAGE_BATCH_MAX_S", "check_models", "check_model", "median_latency_s",
    "check_interpreter",
    "check_microphone", "check_input_device", "check_sources", "check_source", "check_folder", "count_files",
    "check_snapshot", "check_picamera",
    "DISK_FAIL_BYTES", "DISK_WARN_BYTES", "DISK_WARN_FRACTION", "OUTBOX_OLD_S", "CLOCK_MIN_YEAR",
    "CLOCK_BACKWARDS_S", "SET_CLOCK", "disk_status", "check_disk", "check_outbox", "check_clock", "newest_queued",
    "CERT_WARN_DAYS", "NETWORK_TIMEOUT_S", "check_broker", "check_broker_reach", "check_broker_tls",
    "check_broker_login",
]


# -- all of them ---------------------------------------------------------------------------------------

def run_checks(config_path: str | Path) -> list[Check]:
    """Every check, in order; one failing (or raising) never stops the others."""
    path = Path(config_path)
    cfg, config = check_config(path)
    state_dir = cfg.device.state_dir if cfg else fallback_state_dir(path)
    steps = (
        ("model", lambda: check_models(cfg)),
        ("interpreter", lambda: [check_interpreter()]),
        ("microphone", lambda: check_microphone(cfg)),
        ("sources", lambda: check_sources(cfg)),
        ("disk", lambda: [check_disk(state_dir)]),
        ("outbox", lambda: [check_outbox(cfg)]),
        ("clock", lambda: [check_clock(cfg)]),
        ("broker", lambda: check_broker(cfg)),
    )
    checks = [config]
    for name, step in steps:
        try:
            checks += step()
        except Exception as exc:  # noqa: BLE001 - a broken check must not hide the others
            checks.append(fail(name, f"the check itself failed: {type(exc).__name__}: {exc}",
                               "Report this with the output of nv-edge doctor --format json."))
    return checks
