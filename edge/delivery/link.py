"""One reconnecting connection to the broker: the loop shape that the unit's publisher and the base
station's listener share. It opens a client when one is due, lets paho read and write, notices a
lost or refused connection, backs off, and says why. What each side does on top (publishing from
the outbox, storing and acknowledging) stays with that side.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

import paho.mqtt.client as mqtt

from edge.delivery.connection import Backoff, BadSettings, BrokerSettings, ConnectionFailed, explain_refusal


class Link:
    def __init__(
        self,
        settings: BrokerSettings,
        backoff: Backoff,
        *,
        open_client: Callable[[], mqtt.Client],
        on_retry: Callable[[str, float], None],
        on_lost: Callable[[], None] = lambda: None,
        log,
    ):
        """`open_client` returns a configured client whose CONNECT is under way (raises
        ConnectionFailed); `on_retry(why, delay)` reports a wait before the next attempt;
        `on_lost` drops whatever belonged to the dead connection."""
        self.settings = settings
        self.backoff = backoff
        self.open_client = open_client
        self.on_retry = on_retry
        self.on_lost = on_lost
        self.log = log
        self.client: mqtt.Client | None = None
        self.connected = False
        self.stopping = False
        self.refusal = ""  # why the broker refused our last CONNECT
        self.next_attempt = 0.0

    def turn(self, stop: threading.Event, *, busy: bool) -> bool:
        """One turn of the loop: open a connection when due, else run paho's network loop briefly.
        False when there is no client this turn."""
        if self.client is None:
            now = time.monotonic()
            if now >= self.next_attempt:
                self._open()
            else:
                stop.wait(min(0.1, self.next_attempt - now))
            return False
        client = self.client
        rc = client.loop(timeout=0.01 if busy else 0.05)
        if rc != mqtt.MQTT_ERR_SUCCESS and self.client is client:
            self.lost(mqtt.error_string(rc))
        return True

    def _open(self) -> None:
        try:
            client = self.open_client()
        except BadSettings:
            raise
        except ConnectionFailed as exc:
            self._retry_later(str(exc))
            return
        self.client = client

    def _retry_later(self, why: str) -> None:
        delay = self.backoff.next()
        self.next_attempt = time.monotonic() + delay
        self.on_retry(why, delay)

    def accepted(self, reason) -> bool:
        """For on_connect: True when the broker took us; a refusal is remembered to explain the loss."""
        if reason.is_failure:
            self.refusal = explain_refusal(reason, self.settings)
            return False  # the broker closes the socket; loop() returns an error and lost() backs off
        self.connected = True
        self.backoff.reset()
        return True

    def dropped(self, client: mqtt.Client, reason) -> None:
        """For on_disconnect."""
        if client is self.client and not self.stopping:
            self.lost(str(reason))

    def lost(self, why: str) -> None:
        was_connected = self.connected
        self.connected = False
        client, self.client = self.client, None
        if client is not None:
            try:
                client.disconnect()  # closes the socket, if paho has not already
            except Exception:  # noqa: BLE001 - the connection is gone either way
                pass
        self.on_lost()
        if was_connected:
            self.log.warning("lost the broker at %s (%s)", self.settings.address, why)
        why = self.refusal or f"not connected to the broker at {self.settings.address} ({why})"
        self.refusal = ""
        self._retry_later(why)
