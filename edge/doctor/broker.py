"""Broker checks: reach (TCP), TLS, and login (one MQTT CONNECT that leaves nothing behind)."""

from __future__ import annotations

import socket
import ssl
import time
from dataclasses import replace
from pathlib import Path

import paho.mqtt.client as mqtt

from edge.config import ConfigError, EdgeConfig, broker_settings
from edge.delivery.connection import PROTOCOLS, BrokerSettings, explain_socket_error
from edge.doctor.check import FAIL, Check, fail, ok, skipped, warn
from edge.doctor.system import _iso

# Thresholds (systemd/README.md states them too).
CERT_WARN_DAYS = 30
NETWORK_TIMEOUT_S = 5.0


# -- 8. broker -------------------------------------------------------------------------------------------

def check_broker(cfg: EdgeConfig | None, *, timeout_s: float = NETWORK_TIMEOUT_S,
                 cert_warn_days: float = CERT_WARN_DAYS) -> list[Check]:
    """TCP, then TLS, then MQTT CONNECT: each step only if the one before passed."""
    if cfg is None:
        return [skipped("broker")]
    if cfg.mqtt is None:
        return []
    m = cfg.mqtt
    settings = BrokerSettings(host=m.host, port=m.port, protocol=m.protocol, client_id=f"nv-doctor-{cfg.device.id}",
                              username=cfg.device.id, cafile=m.tls.ca if m.tls else None,
                              certfile=m.tls.cert if m.tls else None, keyfile=m.tls.key if m.tls else None,
                              keepalive=max(int(timeout_s) * 2, 5))
    checks = [check_broker_reach(settings, timeout_s)]
    if checks[-1].status == FAIL:
        return checks + [skipped("broker tls", "cannot reach the broker", "Fix the line above first."),
                         skipped("broker login", "cannot reach the broker", "Fix the line above first.")]
    if settings.cafile is None:
        checks.append(warn("broker tls", "off: detections (and the password, if any) cross the link in clear text",
                           "Add [mqtt.tls] with the base station's CA certificate (docs/mqtt.md)."))
    else:
        checks.append(check_broker_tls(settings, timeout_s, cert_warn_days))
        if checks[-1].status == FAIL:
            return checks + [skipped("broker login", "the TLS handshake failed", "Fix the line above first.")]
    try:
        password = broker_settings(cfg).password
    except ConfigError as exc:
        return checks + [fail("broker login", str(exc), "Make the password file readable by the service's user.")]
    return checks + [check_broker_login(replace(settings, password=password), timeout_s)]


def check_broker_reach(settings: BrokerSettings, timeout_s: float) -> Check:
    start = time.perf_counter()
    try:
        with socket.create_connection((settings.host, settings.port), timeout=timeout_s):
            pass
    except socket.gaierror as exc:
        return fail("broker reach", explain_socket_error(exc, settings),
                    "Check [mqtt] host; with no DNS on the site, put the base station's name in /etc/hosts.")
    except OSError as exc:
        return fail("broker reach", explain_socket_error(exc, settings),
                    "Check the link to the base station (radio, cable, Wi-Fi) and that mosquitto runs there "
                    "on this port (systemctl status mosquitto).")
    return ok("broker reach", f"{settings.address} answers (TCP connect in {(time.perf_counter() - start) * 1000:.0f} ms)")


def check_broker_tls(settings: BrokerSettings, timeout_s: float, cert_warn_days: float = CERT_WARN_DAYS) -> Check:
    name = "broker tls"
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies the certificate and the host name
    try:
        context.load_verify_locations(cafile=str(settings.cafile))
    except (ssl.SSLError, OSError) as exc:
        return fail(name, f"CA file {settings.cafile} is not a usable CA certificate ({exc})",
                    "Copy the base station's CA certificate (PEM) to that path again.")
    if settings.certfile is not None:
        try:
            context.load_cert_chain(str(settings.certfile), str(settings.keyfile))
        except (ssl.SSLError, OSError) as exc:
            return fail(name, f"{settings.certfile} with key {settings.keyfile} cannot be used ({exc})",
                        "Copy this unit's certificate and the key that matches it again.")
    try:
        with socket.create_connection((settings.host, settings.port), timeout=timeout_s) as raw, \
                context.wrap_socket(raw, server_hostname=settings.host) as tls:
            peer, version = tls.getpeercert(), tls.version()
    except ssl.SSLCertVerificationError as exc:
        return fail(name, explain_socket_error(exc, settings),
                    "Use the CA that signed the broker's certificate, and set [mqtt] host to a name in that certificate.")
    except (ssl.SSLError, OSError) as exc:
        return fail(name, explain_socket_error(exc, settings),
                    "Check that this unit's certificate is signed by the broker's CA and that the port speaks TLS.")
    now = time.time()
    ends = [("broker certificate", ssl.cert_time_to_seconds(peer["notAfter"]) if peer.get("notAfter") else None),
            ("CA", _not_after(settings.cafile))]
    if settings.certfile is not None:
        ends.append(("this unit's certificate", _not_after(settings.certfile)))
    days = {what: None if end is None else (end - now) / 86400 for what, end in ends}
    found = f"{version}, broker certificate verified for {settings.host}; expiry: " + ", ".join(
        f"{what} unknown" if d is None else f"{what} {_iso(now + d * 86400)[:10]} ({d:.0f} days)" for what, d in days.items())
    expired = [what for what, d in days.items() if d is not None and d < 0]
    soon = [what for what, d in days.items() if d is not None and 0 <= d < cert_warn_days]
    if expired:
        return fail(name, f"{found}: the {_listing(expired)} {'has' if len(expired) == 1 else 'have'} expired",
                    f"Get a renewed {_listing(expired)} from the base station's operator (docs/mqtt.md).")
    if soon:
        return warn(name, f"{found}: the {_listing(soon)} {'expires' if len(soon) == 1 else 'expire'} within "
                          f"{cert_warn_days:g} days",
                    f"Renew the {_listing(soon)} before then (docs/mqtt.md): the unit cannot connect once one has expired.")
    return ok(name, found)


def _listing(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _not_after(path: Path) -> float | None:
    """The first certificate's expiry in a PEM file. The standard library has no public parser for a
    certificate file (and the unit has no `cryptography`): this is CPython's own test decoder."""
    try:
        return ssl.cert_time_to_seconds(ssl._ssl._test_decode_cert(str(path))["notAfter"])  # noqa: SLF001
    except (AttributeError, KeyError, ValueError, ssl.SSLError, OSError):
        return None


def check_broker_login(settings: BrokerSettings, timeout_s: float) -> Check:
    """CONNECT with the unit's user name and password under the doctor's own client id. A clean
    session that expires at once (MQTT 5) or a clean session (3.1.1), and no Last Will: the broker
    keeps nothing of this visit and the service's session is untouched."""
    name = "broker login"
    v5 = settings.v5
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=settings.client_id,
                         protocol=PROTOCOLS[settings.protocol], clean_session=None if v5 else True)
    if settings.username:
        client.username_pw_set(settings.username, settings.password)
    if settings.cafile:
        client.tls_set(ca_certs=str(settings.cafile), certfile=_str(settings.certfile), keyfile=_str(settings.keyfile),
                       cert_reqs=ssl.CERT_REQUIRED, tls_version=ssl.PROTOCOL_TLS_CLIENT)
    answer: dict = {}
    client.on_connect = lambda c, userdata, flags, reason, properties: answer.setdefault("reason", reason)
    client.on_disconnect = lambda c, userdata, flags, reason, properties: answer.setdefault("gone", reason)
    try:
        client.connect(settings.host, settings.port, keepalive=settings.keepalive, **({"clean_start": True} if v5 else {}))
    except (OSError, ssl.SSLError) as exc:
        return fail(name, explain_socket_error(exc, settings), "Fix the broker reach and tls lines first.")
    deadline = time.monotonic() + timeout_s
    while "reason" not in answer and "gone" not in answer and time.monotonic() < deadline:
        client.loop(timeout=0.2)
    reason = answer.get("reason")
    try:
        if reason is None:
            why = "closed the connection" if "gone" in answer else f"did not answer within {timeout_s:g} s"
            return fail(name, f"the broker at {settings.address} {why} after CONNECT as {settings.username!r}",
                        "Read the broker's log at the base station (journalctl -u mosquitto).")
        if reason.is_failure:
            text = str(reason).lower()
            if "not authori" in text or "user name or password" in text:
                fix = (f"Check that the password file holds the password the base station set for "
                       f"{settings.username!r} (mosquitto_passwd), and that the broker's ACL knows that user.")
            else:
                fix = "Read the broker's log at the base station (journalctl -u mosquitto)."
            # not explain_refusal(): its hint names nv-edge publish's options, the fix here names the config's
            return fail(name, f"the broker at {settings.address} refused user {settings.username!r}: {reason}", fix)
        return ok(name, f"accepted as {settings.username} (client id {settings.client_id}, MQTT {settings.protocol}); "
                        f"nothing published")
    finally:
        _disconnect(client, answer)


def _disconnect(client: mqtt.Client, answer: dict) -> None:
    """A clean DISCONNECT, so the broker logs a goodbye and not a lost unit."""
    if "gone" in answer:  # refused: the broker already closed it
        return
    client.disconnect()
    deadline = time.monotonic() + 2
    while "gone" not in answer and time.monotonic() < deadline:
        if client.loop(timeout=0.1) != mqtt.MQTT_ERR_SUCCESS:
            break


def _str(path: Path | None) -> str | None:
    return None if path is None else str(path)
