"""A doctor's line: `Check`, its statuses, and the shorthands every check builds it with."""

from __future__ import annotations

from dataclasses import asdict, dataclass

OK, WARN, FAIL = "OK", "WARN", "FAIL"


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # OK | WARN | FAIL
    found: str  # what the check saw, with the numbers
    fix: str = ""  # for WARN and FAIL: one sentence saying what to do

    def to_dict(self) -> dict:
        return asdict(self)


def ok(name: str, found: str) -> Check:
    return Check(name, OK, found)


def warn(name: str, found: str, fix: str) -> Check:
    return Check(name, WARN, found, fix)


def fail(name: str, found: str, fix: str) -> Check:
    return Check(name, FAIL, found, fix)


def skipped(name: str, why: str = "config failed", fix: str = "Fix the config first (the config line says how), "
            "then run nv-edge doctor again.") -> Check:
    # WARN, not OK: nothing is known about it; not FAIL: the failure is counted once, where it is.
    return Check(name, WARN, f"skipped: {why}", fix)
