"""Notification rules to a real local webhook, SMTP server and mosquitto; rate limits, retries, and a dead
webhook that never slows storing."""

from __future__ import annotations

import json
import threading
import time

from broker import BASE_USER, wait_for
from delivery import pki, site  # noqa: F401  (fixtures)
from detections import detection, event_phases
from notifyservers import Webhook, dead_webhook, smtp_server, webhook  # noqa: F401  (fixtures)

from basestation.baseconfig import parse
from basestation.notify.worker import Notifier
from edge.delivery.connection import BrokerSettings

FAST = {"backoff_min_s": 0.05, "backoff_max_s": 0.2}


def config(rules: list[dict], **sections):
    return parse({"rules": rules, **sections}, __file__)


def alert(device="unit-1", n=10, score=0.9):
    record = detection(device, n, alert=True)
    record["score"] = record["scores"]["mining"] = score
    return record


def test_webhook_gets_the_matching_records_as_json(webhook):
    start, update, end = event_phases("unit-2")
    rules = [{"name": "mining", "labels": ["mining"], "min_score": 0.8, "units": ["unit-1"], "webhook": webhook.url},
             {"name": "machines", "labels": ["excavator"], "webhook": webhook.url}]
    notifier = Notifier(config(rules, serve={"public_url": "https://base.example:8443/"}), **FAST).start()
    hit = alert()
    notifier.submit([hit, alert(score=0.7), alert(device="unit-2"), detection("unit-1", 3, alert=False),
                     {"id": "x", "device": "unit-1", "error": "broken"}, start, update, end])
    wait_for(lambda: len(webhook.bodies) == 2, 10, "two notifications")
    notifier.close()
    by_rule = {b["rule"]: b for b in webhook.bodies}
    assert by_rule["mining"]["id"] == hit["id"] and by_rule["mining"]["score"] == 0.9
    assert by_rule["mining"]["url"] == f"https://base.example:8443/#detection={hit['id']}"
    assert by_rule["machines"]["id"] == start["id"] and by_rule["machines"]["event"]["phase"] == "start"


def test_a_failing_webhook_is_retried_with_backoff_then_given_up():
    flaky = Webhook(statuses=(500, 503))
    gone = Webhook(statuses=(404,))
    try:
        notifier = Notifier(config([{"name": "flaky", "webhook": flaky.url, "retries": 3},
                                    {"name": "gone", "webhook": gone.url, "retries": 3}]), **FAST).start()
        notifier.submit([alert()])
        wait_for(lambda: len(flaky.bodies) == 1, 10, "the third attempt to get through")
        wait_for(lambda: notifier.workers[1].counts.failed == 1, 10, "the 404 to be given up")
        notifier.close()
        assert flaky.attempts == 3 and notifier.workers[0].counts.retries == 2
        assert gone.attempts == 1  # a 4xx is not worth another try
    finally:
        flaky.close()
        gone.close()


def test_each_rule_is_rate_limited_and_says_how_many_it_held_back(webhook):
    now = [1000.0]
    notifier = Notifier(config([{"name": "mining", "webhook": webhook.url, "max_per_hour": 2}]),
                        clock=lambda: now[0], **FAST).start()
    notifier.submit([alert(n=n) for n in range(10, 15)])
    wait_for(lambda: notifier.workers[0].counts.suppressed == 3, 10, "three held back")
    assert len(webhook.bodies) == 2
    now[0] += 3601
    notifier.submit([alert(n=20)])
    wait_for(lambda: len(webhook.bodies) == 3, 10, "the next one after the hour")
    notifier.close()
    assert webhook.bodies[-1]["suppressed"] == 3


def test_email_through_a_local_smtp_server(smtp_server):
    port, messages = smtp_server
    notifier = Notifier(config([{"name": "mail", "email": ["ops@example.org"]}],
                               smtp={"host": "127.0.0.1", "port": port, "sender": "nv-base@example.org"}), **FAST).start()
    hit = alert()
    notifier.submit([hit])
    wait_for(lambda: messages, 10, "the e-mail")
    notifier.close()
    mail = messages[0]
    assert mail["To"] == "ops@example.org" and mail["From"] == "nv-base@example.org"
    assert mail["Subject"] == "[NatureVision] mining 0.90 at unit-1 (mail)"
    parts = list(mail.walk())
    assert hit["id"] in parts[1].get_payload(decode=True).decode()
    assert json.loads(parts[2].get_payload(decode=True))["id"] == hit["id"]


def test_mqtt_rule_publishes_on_the_broker(site):
    site.broker.start()
    got = []
    ready = threading.Event()
    probe = site.mqtt_client(BASE_USER, "alert-probe")
    probe.on_message = lambda c, u, m: got.append(json.loads(m.payload))
    probe.on_subscribe = lambda *a: ready.set()
    probe.subscribe("naturevision-alerts/#", qos=1)
    probe.loop_start()
    try:
        assert ready.wait(10)
        cert, key = site.pki.clients[BASE_USER]
        settings = BrokerSettings(host="127.0.0.1", port=site.broker.port, client_id="nv-base-notify-test",
                                  username=BASE_USER, password=site.passwords[BASE_USER], cafile=site.pki.ca,
                                  certfile=cert, keyfile=key)
        notifier = Notifier(config([{"name": "mqtt", "mqtt_topic": "naturevision-alerts/mining"}]), settings, **FAST).start()
        hit = alert()
        notifier.submit([hit])
        wait_for(lambda: got, 20, "the MQTT notification")
        notifier.close()
        assert got[0]["id"] == hit["id"] and got[0]["rule"] == "mqtt"
    finally:
        probe.loop_stop()
        probe.disconnect()


def test_submitting_never_waits_for_a_dead_webhook(dead_webhook, webhook):
    notifier = Notifier(config([{"name": "dead", "webhook": dead_webhook.url, "timeout_s": 30},
                                {"name": "alive", "webhook": webhook.url, "max_per_hour": 10000}])).start()
    records = [alert(n=n) for n in range(500)]
    began = time.monotonic()
    for i in range(0, len(records), 100):
        notifier.submit(records[i:i + 100])
    took = time.monotonic() - began
    wait_for(lambda: len(webhook.bodies) == 500, 60, "the live rule to get through while the dead one hangs")
    notifier.close(timeout_s=0.5)
    # Not a speed figure: a submit that waited for the dead webhook would take at least its 30 s timeout.
    assert took < 30, f"submitting 500 records took {took:.2f} s: it waited for the dead webhook"
    assert notifier.workers[0].counts.sent == 0
