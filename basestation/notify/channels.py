"""How a notification leaves the base station: an HTTP POST of JSON (webhook), an e-mail through the
configured SMTP server (smtplib), or a message on an MQTT topic. Each send either returns, or raises
`Retry` (worth another try later: the other end is down or busy) or `GiveUp` (it will not work:
a 4xx answer, a refused recipient)."""

from __future__ import annotations

import json
import smtplib
import ssl
import threading
import urllib.error
import urllib.request
from email.message import EmailMessage

import paho.mqtt.client as mqtt

from basestation.baseconfig import SmtpConfig
from basestation.notify import rules
from edge import __version__
from edge.delivery.connection import BrokerSettings, ConnectionFailed, connect, new_client


class Retry(Exception):
    pass


class GiveUp(Exception):
    pass


def webhook(url: str, timeout_s: float):
    def send(body: dict) -> None:
        request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers={
            "Content-Type": "application/json", "User-Agent": f"nv-base/{__version__}"})
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as answer:
                answer.read(1024)
        except urllib.error.HTTPError as exc:
            if exc.code in (408, 425, 429) or exc.code >= 500:
                raise Retry(f"webhook {url} answered {exc.code} {exc.reason}") from None
            raise GiveUp(f"webhook {url} answered {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError) as exc:  # refused, timed out, reset, name not found
            raise Retry(f"webhook {url}: {getattr(exc, 'reason', exc)}") from None
    return send


def email(config: SmtpConfig, to: tuple[str, ...]):
    def send(body: dict) -> None:
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = config.sender, ", ".join(to), rules.subject(body)
        msg.set_content(rules.text(body))
        msg.add_attachment(json.dumps(body, indent=1).encode(), maintype="application", subtype="json",
                           filename=f"{body['id']}.json")
        where = f"SMTP server {config.host}:{config.port}"
        try:
            password = config.password_file.read_text().strip() if config.password_file else None
            kind = smtplib.SMTP_SSL if config.ssl else smtplib.SMTP
            kwargs = {"context": ssl.create_default_context()} if config.ssl else {}
            with kind(config.host, config.port, timeout=config.timeout_s, **kwargs) as smtp:
                if config.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if config.username:
                    smtp.login(config.username, password or "")
                smtp.send_message(msg)
        except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPAuthenticationError) as exc:
            raise GiveUp(f"{where} refused the message: {exc}") from None
        except (smtplib.SMTPException, OSError) as exc:
            raise Retry(f"{where}: {exc}") from None
    return send


class MqttChannel:
    """One connection to the broker for all MQTT rules, opened when first needed, kept by paho's own
    network thread."""

    def __init__(self, settings: BrokerSettings):
        self.settings = settings
        self.client: mqtt.Client | None = None
        self.lock = threading.Lock()

    def sender(self, topic: str, timeout_s: float):
        def send(body: dict) -> None:
            client = self._client()
            info = client.publish(topic, json.dumps(body, separators=(",", ":")), qos=1)
            try:
                info.wait_for_publish(timeout_s)
            except (RuntimeError, ValueError) as exc:
                raise Retry(f"MQTT {topic}: {exc}") from None
            if not info.is_published():
                raise Retry(f"MQTT {topic}: the broker at {self.settings.address} did not take it within {timeout_s:g} s")
        return send

    def _client(self) -> mqtt.Client:
        with self.lock:
            if self.client is None:
                client = new_client(self.settings, max_inflight=20)
                client.max_queued_messages_set(100)
                try:
                    connect(client, self.settings)
                except ConnectionFailed as exc:
                    raise Retry(str(exc)) from None
                client.loop_start()  # reconnects by itself from here on
                self.client = client
            return self.client

    def close(self) -> None:
        with self.lock:
            if self.client is not None:
                self.client.disconnect()
                self.client.loop_stop()
                self.client = None
