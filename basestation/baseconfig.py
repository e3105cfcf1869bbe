"""The base station's one TOML file (`nv-base listen --config`, `nv-base serve --config`): the web
page's options, notification rules, the SMTP server, Home Assistant discovery.

Checked whole when it is read: an error names the file and the key (`base.toml: rules[2].min_score:
a number from 0 to 1, not 'high'`), and an unknown key is an error too, so a typo is not silently
ignored. systemd/base.example.toml explains every key.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

PHASES = ("start", "update", "end")
RULE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
TOPIC = re.compile(r"^[^#+\0]{1,200}$")


class ConfigError(Exception):
    """The file cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class ServeConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    threads: int = 8
    secure_cookies: bool = True  # cookies only over HTTPS (browsers also send them to http://localhost)
    tiles: Path | None = None  # an XYZ tile folder: {z}/{x}/{y}.png or .jpg
    tiles_max_zoom: int = 18
    overlay: Path | None = None  # a georeferenced PNG or JPEG overview
    overlay_bounds: tuple[float, float, float, float] | None = None  # south, west, north, east (degrees)
    public_url: str | None = None  # how people reach the page: links in notifications


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int = 25
    starttls: bool = False
    ssl: bool = False
    username: str | None = None
    password_file: Path | None = None
    sender: str = "nv-base@localhost"
    timeout_s: float = 10.0


@dataclass(frozen=True)
class Rule:
    name: str
    labels: tuple[str, ...] = ()  # empty: any label
    units: tuple[str, ...] = ()  # empty: any unit
    min_score: float = 0.0
    alerts_only: bool = True
    phases: tuple[str, ...] = ("start",)
    max_per_hour: int = 60
    webhook: str | None = None
    email: tuple[str, ...] = ()
    mqtt_topic: str | None = None
    retries: int = 5
    timeout_s: float = 10.0

    @property
    def channel(self) -> str:
        return "webhook" if self.webhook else "email" if self.email else "mqtt"


@dataclass(frozen=True)
class HomeAssistantConfig:
    enabled: bool = False
    prefix: str = "homeassistant"


@dataclass(frozen=True)
class BaseConfig:
    path: Path | None = None
    serve: ServeConfig = ServeConfig()
    smtp: SmtpConfig | None = None
    homeassistant: HomeAssistantConfig = HomeAssistantConfig()
    rules: tuple[Rule, ...] = field(default_factory=tuple)


def load(path: Path) -> BaseConfig:
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the base-station config: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    return parse(data, Path(path))


# One base.toml holds both: the sections read here, and those `nv-base unit` reads (basestation/settings.py).
WEB_SECTIONS = ("serve", "smtp", "homeassistant", "groups", "rules")
UNIT_SECTIONS = ("broker", "tls", "store", "units")


def parse(data: dict, path: Path) -> BaseConfig:
    t = _Table(data, str(path), "")
    t.only(*WEB_SECTIONS, *UNIT_SECTIONS)
    groups = _groups(t.table("groups"))
    smtp = t.table("smtp")
    rules = tuple(_rule(r, groups) for r in t.tables("rules"))
    names = [r.name for r in rules]
    for name in names:
        if names.count(name) > 1:
            raise ConfigError(f"{path}: rules: two rules are named {name!r}; names must differ")
    smtp_config = _smtp(smtp) if smtp.data else None
    for rule, table in zip(rules, t.tables("rules")):
        if rule.email and smtp_config is None:
            raise ConfigError(f"{path}: {table.where('email')}: e-mail needs an [smtp] section")
    ha = t.table("homeassistant")
    ha.only("enabled", "prefix")
    return BaseConfig(path=path, serve=_serve(t.table("serve")), smtp=smtp_config, rules=rules,
                      homeassistant=HomeAssistantConfig(enabled=ha.boolean("enabled", False),
                                                        prefix=ha.text("prefix", "homeassistant", pattern=TOPIC)))


def _serve(t: _Table) -> ServeConfig:
    t.only("host", "port", "threads", "secure_cookies", "tiles", "tiles_max_zoom", "overlay", "overlay_bounds",
           "public_url")
    bounds = t.get("overlay_bounds")
    if bounds is not None:
        if (not isinstance(bounds, list) or len(bounds) != 4 or not all(_is_number(b) for b in bounds)
                or not (-90 <= bounds[0] < bounds[2] <= 90 and -180 <= bounds[1] < bounds[3] <= 180)):
            raise ConfigError(f"{t.file}: {t.where('overlay_bounds')}: [south, west, north, east] in degrees, "
                              f"south < north and west < east")
        bounds = tuple(float(b) for b in bounds)
    overlay = t.path("overlay")
    if (overlay is None) != (bounds is None):
        raise ConfigError(f"{t.file}: {t.where('overlay')}: an overlay needs overlay_bounds, and bounds an overlay")
    url = t.text("public_url", None)
    if url is not None and urlsplit(url).scheme not in ("http", "https"):
        raise ConfigError(f"{t.file}: {t.where('public_url')}: an http:// or https:// address")
    return ServeConfig(host=t.text("host", "127.0.0.1"), port=t.integer("port", 8080, 1, 65535),
                       threads=t.integer("threads", 8, 1, 64), secure_cookies=t.boolean("secure_cookies", True),
                       tiles=t.path("tiles"), tiles_max_zoom=t.integer("tiles_max_zoom", 18, 0, 24), overlay=overlay,
                       overlay_bounds=bounds, public_url=url)


def _smtp(t: _Table) -> SmtpConfig:
    t.only("host", "port", "starttls", "ssl", "username", "password_file", "sender", "timeout_s")
    if "host" not in t.data:
        raise ConfigError(f"{t.file}: {t.where('host')}: the SMTP server's host name is needed")
    config = SmtpConfig(host=t.text("host", ""), port=t.integer("port", 25, 1, 65535), starttls=t.boolean("starttls", False),
                        ssl=t.boolean("ssl", False), username=t.text("username", None),
                        password_file=t.path("password_file"), sender=t.text("sender", "nv-base@localhost"),
                        timeout_s=t.number("timeout_s", 10.0, 0.1, 300))
    if config.ssl and config.starttls:
        raise ConfigError(f"{t.file}: {t.where('ssl')}: ssl (port 465) and starttls (port 587) exclude each other")
    return config


def _groups(t: _Table) -> dict[str, tuple[str, ...]]:
    return {name: t.strings(name) for name in t.data}


def _rule(t: _Table, groups: dict[str, tuple[str, ...]]) -> Rule:
    t.only("name", "labels", "group", "units", "min_score", "alerts_only", "phases", "max_per_hour", "webhook", "email",
           "mqtt_topic", "retries", "timeout_s")
    name = t.text("name", None, pattern=RULE_NAME)
    if name is None:
        raise ConfigError(f"{t.file}: {t.where('name')}: every rule needs a name (letters, digits, '_', '-')")
    labels = t.strings("labels")
    group = t.text("group", None)
    if group is not None:
        if group not in groups:
            raise ConfigError(f"{t.file}: {t.where('group')}: no group {group!r} in [groups]"
                              + (f" (there: {', '.join(sorted(groups))})" if groups else ""))
        labels = tuple(dict.fromkeys(labels + groups[group]))
    phases = t.strings("phases", ("start",))
    if not set(phases) <= set(PHASES):
        raise ConfigError(f"{t.file}: {t.where('phases')}: a list of {', '.join(PHASES)}")
    webhook = t.text("webhook", None)
    if webhook is not None and (urlsplit(webhook).scheme not in ("http", "https") or not urlsplit(webhook).hostname):
        raise ConfigError(f"{t.file}: {t.where('webhook')}: an http:// or https:// address")
    email = t.strings("email")
    for address in email:
        if "@" not in address:
            raise ConfigError(f"{t.file}: {t.where('email')}: {address!r} is not an e-mail address")
    topic = t.text("mqtt_topic", None, pattern=TOPIC)
    if sum(x is not None and x != () for x in (webhook, email, topic)) != 1:
        raise ConfigError(f"{t.file}: {t.where('')}: give exactly one of webhook, email, mqtt_topic")
    return Rule(name=name, labels=labels, units=t.strings("units"), min_score=t.number("min_score", 0.0, 0.0, 1.0),
                alerts_only=t.boolean("alerts_only", True), phases=phases,
                max_per_hour=t.integer("max_per_hour", 60, 1, 100_000), webhook=webhook, email=email, mqtt_topic=topic,
                retries=t.integer("retries", 5, 0, 100), timeout_s=t.number("timeout_s", 10.0, 0.1, 300))


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class _Table:
    """One TOML table and where it is (`rules[2]`), for messages that name the key."""

    def __init__(self, data, file: str, prefix: str):
        if not isinstance(data, dict):
            raise ConfigError(f"{file}: {prefix or 'the file'}: a table ([section]) is expected")
        self.data, self.file, self.prefix = data, file, prefix

    def where(self, key: str) -> str:
        return f"{self.prefix}.{key}" if self.prefix and key else (self.prefix or key)

    def only(self, *keys: str) -> None:
        unknown = sorted(set(self.data) - set(keys))
        if unknown:
            raise ConfigError(f"{self.file}: {self.where(unknown[0])}: unknown key; known here: {', '.join(keys)}")

    def get(self, key: str):
        return self.data.get(key)

    def table(self, key: str) -> _Table:
        return _Table(self.data.get(key, {}), self.file, self.where(key))

    def tables(self, key: str) -> list[_Table]:
        items = self.data.get(key, [])
        if not isinstance(items, list):
            raise ConfigError(f"{self.file}: {self.where(key)}: write each as [[{key}]]")
        return [_Table(item, self.file, f"{self.where(key)}[{i + 1}]") for i, item in enumerate(items)]

    def _fail(self, key: str, what: str, value) -> None:
        raise ConfigError(f"{self.file}: {self.where(key)}: {what}, not {value!r}")

    def text(self, key: str, default, *, pattern: re.Pattern | None = None):
        value = self.data.get(key, default)
        if value is not default and (not isinstance(value, str) or not value or (pattern and not pattern.match(value))):
            self._fail(key, "text" + (f" matching {pattern.pattern}" if pattern else ""), value)
        return value

    def strings(self, key: str, default: tuple = ()) -> tuple[str, ...]:
        value = self.data.get(key, list(default))
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            self._fail(key, "a list of text", value)
        return tuple(value)

    def boolean(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            self._fail(key, "true or false", value)
        return value

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        value = self.data.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            self._fail(key, f"a whole number from {low} to {high}", value)
        return value

    def number(self, key: str, default: float, low: float, high: float) -> float:
        value = self.data.get(key, default)
        if not _is_number(value) or not low <= value <= high:
            self._fail(key, f"a number from {low:g} to {high:g}", value)
        return float(value)

    def path(self, key: str) -> Path | None:
        value = self.text(key, None)
        return None if value is None else Path(value)
