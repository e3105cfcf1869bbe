"""The MQTT topic contract (docs/mqtt.md): every topic sits under naturevision/<device>/.

| topic                               | from         | QoS | retained |
|-------------------------------------|--------------|-----|----------|
| naturevision/<device>/detection     | unit         | 1   | no       |
| naturevision/<device>/thumbnail/<id>| unit         | 1   | no       |
| naturevision/<device>/status        | unit, broker | 1   | yes      |
| naturevision/<device>/health        | unit         | 1   | yes      |
| naturevision/<device>/receipt       | base station | 1   | no       |
| naturevision/<device>/command       | base station | 1   | no       |
"""

from __future__ import annotations

ROOT = "naturevision"
DETECTION = "detection"
THUMBNAIL = "thumbnail"
STATUS = "status"
HEALTH = "health"
RECEIPT = "receipt"
COMMAND = "command"
COMMAND_VERBS = ("heartbeat",)  # the only things a command may ask; nothing from MQTT runs code


def topic(device: str, leaf: str) -> str:
    if not device or any(c in device for c in "/+#\0"):
        raise ValueError(f"device id {device!r} cannot be part of an MQTT topic: no '/', '+', '#'")
    return f"{ROOT}/{device}/{leaf}"


def split(topic_name: str) -> tuple[str, str] | None:
    """naturevision/<device>/<leaf...> -> (device, leaf); None for anything else."""
    parts = topic_name.split("/", 2)
    if len(parts) != 3 or parts[0] != ROOT or not parts[1]:
        return None
    return parts[1], parts[2]
