"""Home Assistant MQTT discovery (off by default; `[homeassistant] enabled = true` in the base config).

For each unit it hears of, `nv-base listen` publishes retained config messages under
`<prefix>/sensor/naturevision_<unit>/<sensor>/config`; Home Assistant then shows the unit as a device
whose sensors read the unit's own topics directly (the base station republishes nothing):

| sensor | from | value |
|---|---|---|
| state | naturevision/<unit>/status (retained) | online / offline / stopped |
| last_detection | naturevision/<unit>/detection | the record's label; its score, time, alert as attributes |
| outbox | naturevision/<unit>/health (retained) | records waiting in the unit's outbox |
| cpu_temperature | naturevision/<unit>/health | °C |
| disk_free | naturevision/<unit>/health | GB free on the unit's card |

Home Assistant's own MQTT user must be allowed to read those topics (docs/web.md shows the ACL lines),
and `nv-base` to write `<prefix>/sensor/#` (systemd/mosquitto/naturevision.acl has it).
"""

from __future__ import annotations

import json
import re

from edge import __version__
from edge.delivery import topics

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")

SENSORS = (
    ("state", topics.STATUS, "{{ value_json.state }}", {"icon": "mdi:access-point"}),
    ("last_detection", topics.DETECTION, "{{ value_json.label if value_json.label is defined else 'error' }}",
     {"icon": "mdi:pickaxe", "json_attributes_template":
      "{{ {'score': value_json.score, 'alert': value_json.alert, 'time': value_json.time, 'id': value_json.id} | tojson }}"}),
    ("outbox", topics.HEALTH, "{{ value_json.outbox.depth }}",
     {"unit_of_measurement": "records", "state_class": "measurement", "icon": "mdi:tray-full"}),
    ("cpu_temperature", topics.HEALTH, "{{ value_json.cpu_temp_c }}",
     {"unit_of_measurement": "°C", "device_class": "temperature", "state_class": "measurement"}),
    ("disk_free", topics.HEALTH, "{{ (value_json.disk_free_bytes / 1e9) | round(1) }}",
     {"unit_of_measurement": "GB", "device_class": "data_size", "state_class": "measurement"}),
)


def object_id(device: str) -> str:
    return "naturevision_" + _UNSAFE.sub("_", device)


def discovery_messages(device: str, prefix: str = "homeassistant") -> list[tuple[str, str]]:
    """(topic, retained JSON payload) of every sensor of one unit."""
    node = object_id(device)
    ha_device = {"identifiers": [node], "name": f"NatureVision {device}", "manufacturer": "NatureVision",
                 "model": "field unit"}
    messages = []
    for key, leaf, template, extra in SENSORS:
        state_topic = topics.topic(device, leaf)
        config = {"name": key.replace("_", " "), "unique_id": f"{node}_{key}", "object_id": f"{node}_{key}",
                  "state_topic": state_topic, "value_template": template, "device": ha_device,
                  "origin": {"name": "nv-base", "sw_version": __version__}, **extra}
        if key == "last_detection":
            config["json_attributes_topic"] = state_topic
        if leaf != topics.STATUS:
            config.update(availability_topic=topics.topic(device, topics.STATUS),
                          availability_template="{{ value_json.state }}", payload_available="online",
                          payload_not_available="offline")
        messages.append((f"{prefix}/sensor/{node}/{key}/config", json.dumps(config, separators=(",", ":"))))
    return messages


class Announcer:
    """Publishes each unit's discovery messages once per run of the listener, on the listener's own
    connection (retained, QoS 1), right after the commit that first named the unit."""

    def __init__(self, prefix: str = "homeassistant"):
        self.prefix = prefix
        self.announced: set[str] = set()

    def announce(self, client, devices: set[str]) -> None:
        for device in sorted(devices - self.announced):
            for topic, payload in discovery_messages(device, self.prefix):
                client.publish(topic, payload, qos=1, retain=True)
            self.announced.add(device)

    def forget(self) -> None:
        """After a reconnect: announce again (a broker that lost its state lost the retained configs)."""
        self.announced.clear()
