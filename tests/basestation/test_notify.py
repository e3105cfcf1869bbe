"""Notification rules to a real local webhook, SMTP server and mosquitto; rate limits, retries, a dead
webhook that never slows storing, and notifications that are queued in the store with their detection
(SQLite and PostgreSQL), so that one pending while the webhook was down is sent once after a restart."""

from __future__ import annotations

import json
import threading
import time

from broker import BASE_USER, free_port, wait_for
from delivery import pki, site  # noqa: F401  (fixtures)
from detections import detection, event_phases
from notifyservers import Webhook, dead_webhook, smtp_server, webhook  # noqa: F401  (fixtures)

from basestation.baseconfig import parse
from basestation.cli import main
from basestation.notify import pending
from basestation.notify.worker import Notifier
from basestation.payloads import Accepted
from basestation.store import Store
from edge.delivery.connection import BrokerSettings
from edge.records.record import error_record

FAST = {"backoff_min_s": 0.05, "backoff_max_s": 0.2}


def config(rules: list[dict], **sections):
    return parse({"rules": rules, **sections}, __file__)


def alert(device="unit-1", n=10, score=0.9):
    record = detection(device, n, alert=True)
    record["score"] = record["scores"]["mining"] = score
    return record


def start(db, cfg, broker=None, **options) -> tuple[Store, Notifier]:
    """A store that queues notifications as it stores, and the notifier that sends them, as `nv-base
    listen --config` wires them (basestation/cli_web.py)."""
    store = Store(db)
    notifier = Notifier(cfg, lambda: Store(db), broker, **options).start()
    store.notify_rules = notifier.rules_for
    return store, notifier


def submit(store: Store, notifier: Notifier, records: list[dict]) -> None:
    """What the listener does: store a batch in one transaction, then wake the workers."""
    saved = store.save([Accepted("detection", r["device"], r, r["id"]) for r in records])
    notifier.wake(saved.new)


def rows(store: Store) -> list:
    return store.query("SELECT rule, record, state, attempts, last_error FROM notifications ORDER BY rule, record")


def test_webhook_gets_the_matching_records_as_json(webhook, tmp_path):
    first, update, end = event_phases("unit-2")
    rules = [{"name": "mining", "labels": ["mining"], "min_score": 0.8, "units": ["unit-1"], "webhook": webhook.url},
             {"name": "machines", "labels": ["excavator"], "webhook": webhook.url}]
    store, notifier = start(tmp_path / "base.db", config(rules, serve={"public_url": "https://base.example:8443/"}), **FAST)
    hit = alert()
    submit(store, notifier, [hit, alert(n=11, score=0.7), alert(device="unit-2", n=12), detection("unit-1", 3, alert=False),
                             error_record(source="card/x.jpg", error="card/x.jpg: broken", device="unit-1"), first, update, end])
    wait_for(lambda: len(webhook.bodies) == 2, 10, "two notifications")
    submit(store, notifier, [hit])  # redelivered: stored once, notified once
    wait_for(lambda: {r["state"] for r in rows(store)} == {"sent"}, 10, "both marked sent")
    notifier.close()
    assert len(webhook.bodies) == 2 and len(rows(store)) == 2
    by_rule = {b["rule"]: b for b in webhook.bodies}
    assert by_rule["mining"]["id"] == hit["id"] and by_rule["mining"]["score"] == 0.9
    assert by_rule["mining"]["url"] == f"https://base.example:8443/#detection={hit['id']}"
    assert by_rule["machines"]["id"] == first["id"] and by_rule["machines"]["event"]["phase"] == "start"


def test_a_failing_webhook_is_retried_with_backoff_then_given_up(tmp_path, capsys):
    flaky = Webhook(statuses=(500, 503))
    gone = Webhook(statuses=(404,))
    try:
        store, notifier = start(tmp_path / "base.db", config([{"name": "flaky", "webhook": flaky.url, "retries": 3},
                                                              {"name": "gone", "webhook": gone.url, "retries": 3}]), **FAST)
        submit(store, notifier, [alert()])
        wait_for(lambda: len(flaky.bodies) == 1, 10, "the third attempt to get through")
        wait_for(lambda: notifier.workers[1].counts.failed == 1, 10, "the 404 to be given up")
        notifier.close()
        assert flaky.attempts == 3 and notifier.workers[0].counts.retries == 2
        assert gone.attempts == 1  # a 4xx is not worth another try
        flaky_row, gone_row = rows(store)
        assert (flaky_row["state"], flaky_row["attempts"]) == ("sent", 3)
        assert (gone_row["state"], gone_row["attempts"]) == ("failed", 1) and "404" in gone_row["last_error"]

        assert main(["notifications", "--db", str(tmp_path / "base.db")]) == 0
        shown = capsys.readouterr().out
        assert "answered 404" in shown and shown.splitlines()[2].split()[:4] == ["gone", "0", "0", "1"]
        assert main(["notifications", "--db", str(tmp_path / "base.db"), "--retry", "gone"]) == 0  # the hook is fixed
        assert "1 failed notification(s) of rule gone pending again" in capsys.readouterr().out
        store, notifier = start(tmp_path / "base.db", config([{"name": "gone", "webhook": gone.url}]), **FAST)
        wait_for(lambda: rows(store)[1]["state"] == "sent", 10, "the failed one sent again")
        notifier.close()
        assert gone.attempts == 2 and len(gone.bodies) == 1
    finally:
        flaky.close()
        gone.close()


def test_each_rule_is_rate_limited_and_says_how_many_it_held_back(webhook, tmp_path):
    now = [time.time() + 60]  # ahead of the store's clock, which dates the rows: they are due at once
    store, notifier = start(tmp_path / "base.db", config([{"name": "mining", "webhook": webhook.url, "max_per_hour": 2}]),
                            clock=lambda: now[0], **FAST)
    submit(store, notifier, [alert(n=n) for n in range(10, 15)])
    wait_for(lambda: notifier.workers[0].counts.suppressed == 3, 10, "three held back")
    assert len(webhook.bodies) == 2
    now[0] += 3601
    submit(store, notifier, [alert(n=20)])
    wait_for(lambda: len(webhook.bodies) == 3, 10, "the next one after the hour")
    notifier.close()
    assert webhook.bodies[-1]["suppressed"] == 3


def test_email_through_a_local_smtp_server(smtp_server, tmp_path):
    port, messages = smtp_server
    store, notifier = start(tmp_path / "base.db", config([{"name": "mail", "email": ["ops@example.org"]}],
                            smtp={"host": "127.0.0.1", "port": port, "sender": "nv-base@example.org"}), **FAST)
    hit = alert()
    submit(store, notifier, [hit])
    wait_for(lambda: messages, 10, "the e-mail")
    notifier.close()
    mail = messages[0]
    assert mail["To"] == "ops@example.org" and mail["From"] == "nv-base@example.org"
    assert mail["Subject"] == "[NatureVision] mining 0.90 at unit-1 (mail)"
    parts = list(mail.walk())
    assert hit["id"] in parts[1].get_payload(decode=True).decode()
    assert json.loads(parts[2].get_payload(decode=True))["id"] == hit["id"]


def test_mqtt_rule_publishes_on_the_broker(site, tmp_path):
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
        store, notifier = start(tmp_path / "base.db", config([{"name": "mqtt", "mqtt_topic": "naturevision-alerts/mining"}]),
                                settings, **FAST)
        hit = alert()
        submit(store, notifier, [hit])
        wait_for(lambda: got, 20, "the MQTT notification")
        notifier.close()
        assert got[0]["id"] == hit["id"] and got[0]["rule"] == "mqtt"
    finally:
        probe.loop_stop()
        probe.disconnect()


def test_submitting_never_waits_for_a_dead_webhook(dead_webhook, webhook, tmp_path):
    store, notifier = start(tmp_path / "base.db", config([{"name": "dead", "webhook": dead_webhook.url, "timeout_s": 30},
                                                          {"name": "alive", "webhook": webhook.url, "max_per_hour": 10000}]))
    records = [alert(n=n) for n in range(500)]
    began = time.monotonic()
    for i in range(0, len(records), 100):
        submit(store, notifier, records[i:i + 100])
    took = time.monotonic() - began
    wait_for(lambda: len(webhook.bodies) == 500, 60, "the live rule to get through while the dead one hangs")
    notifier.close(timeout_s=0.5)
    # Not a speed figure: a submit that waited for the dead webhook would take at least its 30 s timeout.
    assert took < 30, f"submitting 500 records took {took:.2f} s: it waited for the dead webhook"
    assert notifier.workers[0].counts.sent == 0


def test_a_notification_pending_while_the_webhook_is_down_is_sent_once_after_a_restart(database):
    port = free_port()  # nothing listens there yet: the webhook is down
    cfg = config([{"name": "ops", "webhook": f"http://127.0.0.1:{port}/hook", "retries": 50}])
    store, notifier = start(database, cfg, backoff_min_s=0.1, backoff_max_s=0.3)
    hit = alert()
    submit(store, notifier, [hit, detection("unit-1", 3, alert=False)])
    wait_for(lambda: rows(store)[0]["attempts"] >= 2, 20, "attempts against the webhook that is down")
    notifier.close()  # nv-base listen stops
    (row,) = rows(store)
    assert (row["rule"], row["record"], row["state"]) == ("ops", hit["id"], "pending")
    assert "refused" in row["last_error"].lower()
    store.close()

    hook = Webhook(port=port)  # the webhook is back
    try:
        store, notifier = start(database, cfg, **FAST)  # nv-base listen starts again: nothing new comes
        wait_for(lambda: rows(store)[0]["state"] == "sent", 20, "the pending notification to be sent")
        notifier.close()
        assert [b["id"] for b in hook.bodies] == [hit["id"]] and hook.attempts == 1  # once
        assert rows(store)[0]["last_error"] is None
        store.close()
    finally:
        hook.close()


def test_old_sent_notifications_are_forgotten_failed_ones_kept(tmp_path):
    store = Store(tmp_path / "base.db")
    now = time.time()
    old = now - (pending.KEEP_DAYS + 1) * 86400
    for record, state, done in (("a", "sent", old), ("b", "suppressed", old), ("c", "failed", old), ("d", "sent", now)):
        store.execute("INSERT INTO notifications (rule, record, state, next_try, created, done) VALUES (?, ?, ?, ?, ?, ?)",
                      ("ops", record, state, done, done, done))
    assert pending.prune(store, "ops", now) == 2
    assert [(r["record"], r["state"]) for r in rows(store)] == [("c", "failed"), ("d", "sent")]
