"""How to reach the broker: settings, a configured paho client, back-off, and failures explained.

Shared by the unit's publisher (`nv-edge publish`) and the base station's listener (`nv-base
listen`). paho-mqtt 2.x with the VERSION2 callback API; MQTT v5 unless 3.1.1 is asked for.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

PROTOCOLS = {"5": mqtt.MQTTv5, "3.1.1": mqtt.MQTTv311}
DEFAULT_PORT = 8883
DEFAULT_SESSION_EXPIRY_S = 7 * 86400  # keeps receipts/commands queued for a unit offline for a week


class ConnectionFailed(Exception):
    """The broker could not be reached or refused us; the message says where and what to check."""


class BadSettings(ConnectionFailed):
    """Settings that no retry can fix (a missing or unusable TLS file): stop and say so."""


@dataclass(frozen=True)
class BrokerSettings:
    host: str = "localhost"
    port: int = DEFAULT_PORT
    protocol: str = "5"  # "5" or "3.1.1"
    client_id: str = ""
    username: str | None = None
    password: str | None = None
    cafile: Path | None = None  # TLS is on when a CA file is given
    certfile: Path | None = None
    keyfile: Path | None = None
    keepalive: int = 30
    session_expiry_s: int = DEFAULT_SESSION_EXPIRY_S

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def v5(self) -> bool:
        return self.protocol == "5"


class Backoff:
    """Exponential back-off with jitter, so that a fleet does not reconnect in lockstep."""

    def __init__(self, min_s: float = 1.0, max_s: float = 60.0):
        self.min_s, self.max_s = min_s, max_s
        self.current = min_s

    def next(self) -> float:
        delay = self.current * random.uniform(0.8, 1.2)
        self.current = min(self.max_s, self.current * 2)
        return min(delay, self.max_s)

    def reset(self) -> None:
        self.current = self.min_s


def new_client(settings: BrokerSettings, *, manual_ack: bool = False, max_inflight: int = 20,
               will: tuple[str, bytes] | None = None) -> mqtt.Client:
    """A paho client with TLS, credentials and (optionally) a retained QoS-1 Last Will set."""
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=settings.client_id,
        protocol=PROTOCOLS[settings.protocol],
        clean_session=None if settings.v5 else False,  # 3.1.1: a persistent session
        manual_ack=manual_ack,
    )
    client.max_inflight_messages_set(max_inflight)
    client.max_queued_messages_set(0)  # our own window bounds what we hand to paho
    if settings.username:
        client.username_pw_set(settings.username, settings.password)
    if settings.cafile:
        for option, path in (("--cafile", settings.cafile), ("--certfile", settings.certfile), ("--keyfile", settings.keyfile)):
            if path is not None and not Path(path).is_file():
                raise BadSettings(f"{option} {path}: no such file")
        try:
            client.tls_set(ca_certs=str(settings.cafile), certfile=_str(settings.certfile), keyfile=_str(settings.keyfile),
                           cert_reqs=ssl.CERT_REQUIRED, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        except (ssl.SSLError, OSError) as exc:
            raise BadSettings(f"TLS files --cafile {settings.cafile} --certfile {settings.certfile} "
                                   f"--keyfile {settings.keyfile} cannot be used: {exc}") from None
    if will is not None:
        client.will_set(will[0], will[1], qos=1, retain=True)
    return client


def connect(client: mqtt.Client, settings: BrokerSettings, *, receive_maximum: int | None = None) -> None:
    """Open the socket (TCP and TLS) and send CONNECT; the CONNACK arrives in `client.loop()`."""
    properties = None
    if settings.v5:
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = settings.session_expiry_s  # > 0: the broker keeps our session
        if receive_maximum:
            properties.ReceiveMaximum = receive_maximum
    # v5: clean_start=False and a session expiry; 3.1.1: clean_session=False, set on the client
    options = {"clean_start": False, "properties": properties} if settings.v5 else {}
    try:
        client.connect(settings.host, settings.port, keepalive=settings.keepalive, **options)
    except (OSError, ssl.SSLError) as exc:
        raise ConnectionFailed(explain_socket_error(exc, settings)) from None


def explain_socket_error(exc: BaseException, settings: BrokerSettings) -> str:
    where = f"broker at {settings.address}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (f"TLS: the {where} presented a certificate that does not verify against --cafile "
                f"{settings.cafile} ({exc.verify_message}); check that the CA file is the one that signed "
                f"the broker's certificate and that --host matches the certificate's name")
    if isinstance(exc, ssl.SSLError):
        return (f"TLS handshake with the {where} failed ({exc.reason or exc}); the broker may require a client "
                f"certificate (--certfile/--keyfile) signed by its CA, or it does not speak TLS on this port")
    if isinstance(exc, ConnectionRefusedError):
        return f"cannot reach the {where}: connection refused (is mosquitto running and listening on that port?)"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the broker's host name {settings.host!r}: {exc.strerror}"
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return f"cannot reach the {where}: timed out (no link, or a firewall drops the packets)"
    return f"cannot reach the {where}: {exc}"


def explain_refusal(reason: mqtt.ReasonCode | int, settings: BrokerSettings) -> str:
    """A refused CONNACK, in words that say what to check."""
    text = str(reason)
    user = f"user {settings.username!r}" if settings.username else "an anonymous client"
    lowered = text.lower()
    if "user name or password" in lowered or "not authori" in lowered or "bad user" in lowered:
        # mosquitto answers a wrong password with "Not authorized", not "Bad user name or password"
        hint = "check --username/--password-file against the broker's password file (and its ACL)"
    elif "identifier" in lowered:
        hint = f"the broker refused client id {settings.client_id!r}; pass another --client-id"
    else:
        hint = "see the broker's log"
    return f"the broker at {settings.address} refused {user}: {text}; {hint}"


def explain_publish_refusal(reason: mqtt.ReasonCode) -> str:
    """A PUBACK with a failure code (MQTT v5 only: 3.1.1 has no way to say no)."""
    if "not authorized" in str(reason).lower():
        return (f"{reason}. The broker's ACL lets a unit write only under naturevision/<its user name>/: "
                f"check that --device matches --username.")
    return f"{reason}. See the broker's log."


def _str(path: Path | None) -> str | None:
    return None if path is None else str(path)


# -- command line ---------------------------------------------------------------------------------

def add_broker_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("broker")
    g.add_argument("--host", default=os.environ.get("NV_MQTT_HOST", "localhost"), help="broker host (default $NV_MQTT_HOST or localhost)")
    g.add_argument("--port", type=int, default=None, help=f"broker port (default {DEFAULT_PORT} with TLS, else 1883)")
    g.add_argument("--mqtt", choices=tuple(PROTOCOLS), default="5", help="MQTT protocol version (default 5)")
    g.add_argument("--client-id", help="MQTT client id; keep it stable so the broker keeps the session")
    g.add_argument("--username", help="MQTT user name")
    g.add_argument("--password-file", type=Path, help="file holding the MQTT password (default: $NV_MQTT_PASSWORD)")
    g.add_argument("--cafile", type=Path, help="CA certificate that signed the broker's certificate; turns TLS on")
    g.add_argument("--certfile", type=Path, help="this client's certificate (PEM), when the broker asks for one")
    g.add_argument("--keyfile", type=Path, help="this client's private key (PEM)")
    g.add_argument("--keepalive", type=int, default=30, help="seconds between keep-alive pings (default 30)")


def settings_from_args(args: argparse.Namespace, default_client_id: str) -> BrokerSettings:
    password = os.environ.get("NV_MQTT_PASSWORD")
    if args.password_file is not None:
        try:
            password = args.password_file.read_text().strip()
        except OSError as exc:
            raise ConnectionFailed(f"--password-file {args.password_file}: {exc.strerror or exc}") from None
    port = args.port or (DEFAULT_PORT if args.cafile else 1883)
    return BrokerSettings(
        host=args.host, port=port, protocol=args.mqtt, client_id=args.client_id or default_client_id,
        username=args.username, password=password, cafile=args.cafile, certfile=args.certfile,
        keyfile=args.keyfile, keepalive=args.keepalive,
    )
