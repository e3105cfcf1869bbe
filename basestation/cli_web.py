"""The web side of `nv-base`: the page, its accounts, the reviews, the base config.

    nv-base serve --db DB [--config base.toml] [--host H] [--port N] [--tiles DIR] [--overlay PNG --overlay-bounds S,W,N,E]
    nv-base user add NAME --role read-only|reviewer|admin [--password-file FILE]   (else asked twice)
    nv-base user passwd NAME [--password-file FILE] | user role NAME ROLE | user remove NAME | user list
    nv-base reviews --format csv|json|geojson [--out FILE]      reviewed records as labelled data
    nv-base config check base.toml

DB is a SQLite file or a PostgreSQL URI, as for `nv-base listen` (--db-password-file FILE, PGPASSWORD or
~/.pgpass for its password): the page's tables are migrations of the same store.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import sys
from dataclasses import replace
from pathlib import Path

from basestation import accounts, review_export, reviews
from basestation.baseconfig import BaseConfig, ConfigError, load
from basestation.database import is_dsn, read_password
from basestation.store import Store, StoreError

log = logging.getLogger("nv.base")


def add_parsers(sub, default_db: str) -> None:
    serve = sub.add_parser("serve", help="the web page: map, live events, evidence, review")
    _database_arguments(serve, default_db)
    serve.add_argument("--config", type=Path, help="the base station's TOML config ([serve] options)")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=int, help="port (default 8080; 0 picks a free one and prints it)")
    serve.add_argument("--tiles", type=Path, help="your XYZ tile folder, {z}/{x}/{y}.png, as a basemap")
    serve.add_argument("--overlay", type=Path, help="a georeferenced PNG/JPEG overview to lay on the map")
    serve.add_argument("--overlay-bounds", help="its bounds: SOUTH,WEST,NORTH,EAST in degrees")
    serve.add_argument("--insecure-cookies", action="store_true",
                       help="send the session cookie over plain HTTP too (only behind a trusted network)")

    user = sub.add_parser("user", help="accounts of the web page")
    verbs = user.add_subparsers(dest="verb", required=True)
    for verb, text in (("add", "make an account"), ("passwd", "set a new password (ends its sessions)")):
        p = verbs.add_parser(verb, help=text)
        p.add_argument("name")
        if verb == "add":
            p.add_argument("--role", choices=accounts.ROLES, required=True)
        p.add_argument("--password-file", type=Path, help="read the password from this file (else asked twice)")
    role = verbs.add_parser("role", help="change an account's role")
    role.add_argument("name")
    role.add_argument("role", choices=accounts.ROLES)
    verbs.add_parser("remove", help="remove an account and end its sessions").add_argument("name")
    verbs.add_parser("list", help="the accounts and their roles")
    for p in (user, *verbs.choices.values()):
        _database_arguments(p, default_db)

    rev = sub.add_parser("reviews", help="reviewed records as labelled data (CSV, JSON, GeoJSON)")
    _database_arguments(rev, default_db)
    rev.add_argument("--format", choices=tuple(review_export.WRITERS), required=True)
    rev.add_argument("--out", type=Path, help="output file (default: standard output)")

    config = sub.add_parser("config", help="check the base station's TOML config")
    config.add_argument("verb", choices=("check",))
    config.add_argument("path", type=Path)


def cmd_serve(args: argparse.Namespace) -> int:
    import waitress

    from basestation.web.app import create_app

    config = _config(args.config)
    serve = config.serve
    overrides = {k: getattr(args, k) for k in ("host", "port", "tiles", "overlay") if getattr(args, k) is not None}
    if args.overlay_bounds:
        try:
            overrides["overlay_bounds"] = tuple(float(v) for v in args.overlay_bounds.split(","))
            assert len(overrides["overlay_bounds"]) == 4
        except (ValueError, AssertionError):
            raise ConfigError(f"--overlay-bounds {args.overlay_bounds}: SOUTH,WEST,NORTH,EAST in degrees") from None
    if args.insecure_cookies:
        overrides["secure_cookies"] = False
    serve = replace(serve, **overrides)
    if (serve.overlay is None) != (serve.overlay_bounds is None):
        raise ConfigError("--overlay and --overlay-bounds go together")
    for option, path in (("--tiles", serve.tiles), ("--overlay", serve.overlay)):
        if path is not None and not path.exists():
            raise ConfigError(f"{option} {path}: no such file or folder")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s nv-base serve: %(levelname)s %(message)s")
    if serve.secure_cookies and serve.host not in ("127.0.0.1", "localhost", "::1"):
        print("nv-base serve: the session cookie is Secure: browsers on other machines log in only over HTTPS "
              "(a TLS reverse proxy in front), or pass --insecure-cookies on a trusted network", file=sys.stderr)
    store = _store(args)
    if not accounts.users(store):
        print(f"nv-base serve: no accounts yet; make one: nv-base user add NAME --role admin --db {store.name}",
              file=sys.stderr)
    name = store.name
    store.close()
    app = create_app(args.db, serve, password=read_password(args.db_password_file))
    server = waitress.create_server(app, host=serve.host, port=serve.port, threads=serve.threads, ident="nv-base")
    print(f"nv-base serve: http://{_url_host(serve.host)}:{server.effective_port}/ (database {name})", flush=True)
    try:
        server.run()
    finally:
        server.close()
    return 0


def cmd_user(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        if args.verb == "list":
            for name, role, _created in accounts.users(store):
                print(f"{name:<24} {role}")
        elif args.verb == "add":
            accounts.add_user(store, args.name, args.role, _password(args.password_file))
            print(f"nv-base: added {args.name} ({args.role})", file=sys.stderr)
        elif args.verb == "passwd":
            accounts.set_password(store, args.name, _password(args.password_file))
            print(f"nv-base: new password for {args.name}; their sessions are ended", file=sys.stderr)
        elif args.verb == "role":
            accounts.set_role(store, args.name, args.role)
        else:
            accounts.remove_user(store, args.name)
            print(f"nv-base: removed {args.name}", file=sys.stderr)
    except accounts.AccountError as exc:
        print(f"nv-base: error: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
    return 0


def cmd_reviews(args: argparse.Namespace) -> int:
    if not is_dsn(args.db) and not Path(args.db).is_file():
        raise StoreError(f"{args.db}: no such database; pass --db PATH or --db postgresql://USER@HOST:PORT/DBNAME")
    store = _store(args)
    try:
        rows = reviews.labelled_rows(store)
    finally:
        store.close()
    out = open(args.out, "w", newline="", encoding="utf-8") if args.out else sys.stdout
    try:
        result = review_export.WRITERS[args.format](rows, out)
    finally:
        if args.out:
            out.close()
    left = f"; {result[1]} without a location left out" if isinstance(result, tuple) and result[1] else ""
    print(f"nv-base: exported {result[0] if isinstance(result, tuple) else result} reviewed record(s){left}", file=sys.stderr)
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    config = load(args.path)
    print(f"{args.path}: OK: serve on {config.serve.host}:{config.serve.port}; {len(config.rules)} notification rule(s)"
          + "".join(f"\n  {r.name}: {r.channel}, labels {', '.join(r.labels) or 'any'}, units {', '.join(r.units) or 'any'}, "
                    f"score >= {r.min_score:g}, at most {r.max_per_hour}/h" for r in config.rules)
          + f"\n  Home Assistant discovery: {'on' if config.homeassistant.enabled else 'off'}")
    return 0


def listen_config(path: Path | None) -> BaseConfig | None:
    """`nv-base listen --config`'s file, checked; None without one."""
    return None if path is None else load(path)


def listen_hooks(config: BaseConfig | None, settings, store: Store, connect):
    """For `nv-base listen --config`: (after_commit, close) that feed the notification rules and, when
    enabled, announce units to Home Assistant; (None, nothing) without a config. The listener's `store`
    queues the notifications as it stores (Store.notify_rules); the workers open their own (`connect`)."""
    if config is None:
        return None, lambda: None
    from basestation.homeassistant import Announcer
    from basestation.notify.worker import Notifier

    notifier = Notifier(config, connect, settings).start()
    store.notify_rules = notifier.rules_for
    announcer = Announcer(config.homeassistant.prefix) if config.homeassistant.enabled else None
    connection = [None]

    def after_commit(new_records, devices, client) -> None:
        notifier.wake(new_records)
        if announcer is not None and client is not None:
            if client is not connection[0]:  # a new connection: the broker may have lost the retained configs
                connection[0] = client
                announcer.forget()
            announcer.announce(client, devices)

    return after_commit, notifier.close


def _database_arguments(parser, default_db: str) -> None:
    parser.add_argument("--db", default=default_db,
                        help="a SQLite file, or a PostgreSQL URI postgresql://USER@HOST:PORT/DBNAME "
                             "(default $NV_BASE_DB, else naturevision.db)")
    parser.add_argument("--db-password-file", type=Path,
                        help="PostgreSQL: a file holding the password (else PGPASSWORD, ~/.pgpass, or the URI)")


def _store(args: argparse.Namespace) -> Store:
    return Store(args.db, password=read_password(args.db_password_file))


def _config(path: Path | None) -> BaseConfig:
    return BaseConfig() if path is None else load(path)


def _password(path: Path | None) -> str:
    if path is not None:
        try:
            return path.read_text(encoding="utf-8").splitlines()[0] if path.stat().st_size else ""
        except OSError as exc:
            raise accounts.AccountError(f"--password-file {path}: {exc.strerror or exc}") from None
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise accounts.AccountError("the two passwords differ")
    return first


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else ("127.0.0.1" if host in ("0.0.0.0", "") else host)
