"""Converters for the service: the parsed config as the settings the broker connection, publisher and outbox take."""

from __future__ import annotations

from edge.config.errors import ConfigError
from edge.config.secret_files import read_secret
from edge.config.sections import EdgeConfig, MqttConfig
from edge.delivery.connection import BrokerSettings
from edge.delivery.outbox import OutboxLimits
from edge.delivery.publisher import PublisherOptions


def broker_settings(cfg: EdgeConfig) -> BrokerSettings:
    """How to reach the broker; the user name is the device id, so records, topics and ACL agree."""
    m = _need_mqtt(cfg)
    password = None if m.password_file is None else read_secret(m.password_file, config=cfg.path, where="mqtt.password_file")
    return BrokerSettings(
        host=m.host, port=m.port, protocol=m.protocol, client_id=f"nv-edge-{cfg.device.id}",
        username=cfg.device.id, password=password,
        cafile=m.tls.ca if m.tls else None, certfile=m.tls.cert if m.tls else None,
        keyfile=m.tls.key if m.tls else None, keepalive=m.keepalive_s,
    )


def publisher_options(cfg: EdgeConfig) -> PublisherOptions:
    m = _need_mqtt(cfg)
    return PublisherOptions(
        device=cfg.device.id, confirm=m.confirm, window=m.window, receipt_timeout_s=m.receipt_timeout_s,
        heartbeat_s=m.heartbeat_s, backoff_max_s=m.max_backoff_s, hold_max_s=max(m.max_backoff_s, 1.0),
        models=tuple({"name": x.name, "version": x.version, "sha256": x.model_sha256} for x in cfg.models()),
    )


def outbox_limits(cfg: EdgeConfig) -> OutboxLimits:
    o = cfg.outbox
    return OutboxLimits(
        max_records=o.max_records, max_bytes=int(o.max_mb * 2**20),
        routine_max_age_s=o.routine_max_age_days * 86400, alert_max_age_s=o.alert_max_age_days * 86400,
    )


def _need_mqtt(cfg: EdgeConfig) -> MqttConfig:
    if cfg.mqtt is None:
        raise ConfigError(f"{cfg.path}: [mqtt]: no such section; expected one when records are to be sent")
    return cfg.mqtt
