"""`nv-base`: the base station's command line.

    nv-base listen --db DB [broker options]    subscribe and store detections until stopped
    nv-base list --db DB                       recent detections and unit status, as tables
    nv-base dead-letters --db DB               the messages that were refused, and why
    nv-base export --db DB --format csv|geojson [--out FILE]
    nv-base notifications --db DB [--retry [RULE]]   pending, sent, failed per rule (basestation/notify_cli.py)

    nv-base serve | user | reviews | config    the web page and what goes with it (basestation/cli_web.py)
    nv-base unit add|revoke|list|crl           provision field units (basestation/unit_cli.py)

DB is a SQLite file (the default) or a PostgreSQL URI, postgresql://USER@HOST:PORT/DBNAME, with its
password in --db-password-file, PGPASSWORD or ~/.pgpass (basestation/database.py).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
from pathlib import Path

from basestation import cli_web, notify_cli, unit_cli
from basestation.baseconfig import ConfigError
from basestation.certificates import CertificateError
from basestation.database import is_dsn, read_password
from basestation.export import write_csv, write_geojson
from basestation.listener import Listener, ListenerOptions
from basestation.listing import write_dead_letters, write_listing
from basestation.migrate import latest
from basestation.mosquitto import BrokerFilesError
from basestation.settings import SettingsError
from basestation.store import Store, StoreError
from basestation.unit_archive import ArchiveError
from basestation.units import UnitError
from edge import __version__
from edge.delivery.connection import ConnectionFailed, add_broker_arguments, settings_from_args

EXIT_FAILED = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nv-base", description="NatureVision base station: receive, store, list, export.")
    parser.add_argument("--version", action="version", version=f"nv-base {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    listen = sub.add_parser("listen", help="subscribe and store detections until stopped")
    add_database_arguments(listen)
    listen.add_argument("--group", help="share the load with other workers: subscribe via $share/GROUP/")
    listen.add_argument("--batch", type=int, default=500, help="messages per commit, at most (default 500)")
    listen.add_argument("--no-receipts", action="store_true", help="do not confirm stored records to the units")
    listen.add_argument("--config", type=Path, help="the base station's TOML config: notification rules, Home Assistant")
    add_broker_arguments(listen)

    lst = sub.add_parser("list", help="recent detections and unit status")
    add_database_arguments(lst)
    lst.add_argument("--limit", type=int, default=20, help="detections to show (default 20)")

    dead = sub.add_parser("dead-letters", help="the messages that were refused or could not be stored, and why")
    add_database_arguments(dead)
    dead.add_argument("--limit", type=int, default=20, help="dead letters to show, newest first (default 20)")

    exp = sub.add_parser("export", help="write detections as CSV or GeoJSON")
    add_database_arguments(exp)
    exp.add_argument("--format", choices=("csv", "geojson"), required=True)
    exp.add_argument("--out", type=Path, help="output file (default: standard output)")
    exp.add_argument("--alerts-only", action="store_true", help="only detections that raised an alert")
    exp.add_argument("--include-unlocated", action="store_true",
                     help="geojson: keep records without a location, as features with a null geometry")
    cli_web.add_parsers(sub, os.environ.get("NV_BASE_DB", "naturevision.db"))
    notify_cli.add_arguments(sub, add_database_arguments)
    unit_cli.add_arguments(sub)
    return parser


def add_database_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", default=os.environ.get("NV_BASE_DB", "naturevision.db"),
                        help="a SQLite file, or a PostgreSQL URI postgresql://USER@HOST:PORT/DBNAME "
                             "(default $NV_BASE_DB, else naturevision.db)")
    parser.add_argument("--db-password-file", type=Path,
                        help="PostgreSQL: a file holding the password (else PGPASSWORD, ~/.pgpass, or the URI)")


def open_store(args: argparse.Namespace, *, must_exist: bool) -> Store:
    """The store --db names; for reading commands a SQLite file must exist already (nv-base listen makes it)."""
    if must_exist and not is_dsn(args.db) and not Path(args.db).is_file():
        raise StoreError(f"{args.db}: no such database; pass --db PATH (the file nv-base listen writes) "
                         "or --db postgresql://USER@HOST:PORT/DBNAME")
    return Store(args.db, password=read_password(args.db_password_file))


def cmd_listen(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s nv-base listen: %(levelname)s %(message)s")
    settings = settings_from_args(args, default_client_id=f"nv-base-{socket.gethostname()}")
    config = cli_web.listen_config(args.config)  # a bad config fails before anything is opened
    store = open_store(args, must_exist=False)
    logging.info("storing in %s (%s, schema version %d%s)", store.name, store.dialect.name, latest(),
                 f"; migrated now: {', '.join(map(str, store.migrated))}" if store.migrated else "")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    options = ListenerOptions(group=args.group, batch=args.batch, receipts=not args.no_receipts)
    after_commit, close_hooks = None, (lambda: None)
    try:
        after_commit, close_hooks = cli_web.listen_hooks(config, settings, store,
                                                         lambda: open_store(args, must_exist=False))
        Listener(store, settings, options, after_commit=after_commit).run(stop)
    finally:
        close_hooks()
        store.close()
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    store = open_store(args, must_exist=True)
    write_listing(store, sys.stdout, limit=args.limit)
    return 0


def cmd_dead_letters(args: argparse.Namespace) -> int:
    store = open_store(args, must_exist=True)
    write_dead_letters(store, sys.stdout, limit=args.limit)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    store = open_store(args, must_exist=True)
    rows = store.detections(alerts_only=args.alerts_only)
    out = open(args.out, "w", newline="", encoding="utf-8") if args.out else sys.stdout
    try:
        if args.format == "csv":
            n = write_csv(rows, out)
            print(f"nv-base: exported {n} detection(s)", file=sys.stderr)
        else:
            n, left_out = write_geojson(rows, out, include_unlocated=args.include_unlocated)
            note = (f"; {left_out} without a location left out (use --include-unlocated, or --format csv)"
                    if left_out else "")
            print(f"nv-base: exported {n} detection(s){note}", file=sys.stderr)
    finally:
        if args.out:
            out.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handlers = {"listen": cmd_listen, "list": cmd_list, "dead-letters": cmd_dead_letters, "export": cmd_export,
                "serve": cli_web.cmd_serve, "user": cli_web.cmd_user, "reviews": cli_web.cmd_reviews,
                "config": cli_web.cmd_config, "unit": unit_cli.run,
                "notifications": lambda a: notify_cli.run(a, open_store(a, must_exist=True))}
    try:
        return handlers[args.command](args)
    except (StoreError, ConnectionFailed, ConfigError, SettingsError, UnitError, BrokerFilesError, CertificateError,
            ArchiveError) as exc:
        print(f"nv-base: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
