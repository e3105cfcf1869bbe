"""`nv-base unit`: provisioning field units at the base station (basestation/units.py does the work).

    nv-base unit add NAME [--force] [--out DIR]   password, certificate, ACL check, reload; NAME.tar.gz for the unit
    nv-base unit revoke NAME                      password removed, certificate revoked (CRL), reload
    nv-base unit list                             every unit: access, certificate, state, last heard
    nv-base unit crl                              rewrite the CRL (before the broker's first start; before it expires)

Every command reads the base station's settings (--settings, default $NV_BASE_SETTINGS or
/etc/naturevision/base.toml; systemd/base.example.toml explains each key) and runs as root: it
writes mosquitto's files and reads the CA's key.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from basestation import units
from basestation.listing import write_units
from basestation.settings import DEFAULT_PATH, load_settings


def add_arguments(sub) -> None:
    unit = sub.add_parser("unit", help="provision field units: add, revoke, list, crl")
    unit.add_argument("--settings", type=Path, default=DEFAULT_PATH,
                      help=f"the base station's settings (default $NV_BASE_SETTINGS or {DEFAULT_PATH})")
    verbs = unit.add_subparsers(dest="unit_command", required=True)
    add = verbs.add_parser("add", help="provision a unit and write its archive NAME.tar.gz")
    add.add_argument("name", help="the unit's name: its device id and MQTT user name (e.g. unit-07)")
    add.add_argument("--force", action="store_true",
                     help="the unit exists already: give it a new password and certificate (the old archive stops working)")
    add.add_argument("--out", type=Path, default=Path("."), help="folder for the archive (default: the current folder)")
    revoke = verbs.add_parser("revoke", help="take a unit's access away")
    revoke.add_argument("name")
    verbs.add_parser("list", help="every unit, with its access, certificate, state and last heard time")
    verbs.add_parser("crl", help="rewrite the certificate revocation list and reload the broker")


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args.settings)
    if args.unit_command == "list":
        write_units(units.rows(settings), units.crl_next_update(settings), sys.stdout)
        return 0
    if args.unit_command == "add":
        done = units.add(settings, args.name, force=args.force, out_dir=args.out)
    elif args.unit_command == "revoke":
        done = units.revoke(settings, args.name)
    else:
        done = units.write_crl(settings)
    for line in done:
        print(f"nv-base unit {args.unit_command}: {line}")
    return 0
