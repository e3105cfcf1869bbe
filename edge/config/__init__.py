"""The field unit's config file: one TOML (`/etc/naturevision/edge.toml`) read into frozen dataclasses.

`load_config(path)` checks everything a running service would trip over later, at once: unknown keys,
types and ranges, that each model bundle loads as the service loads it (`edge.model.loaded.load_model`:
checksums, manifest, the section's task, and the manifest against the interpreter's real tensors; the
interpreter is opened for a moment and closed), that threshold overrides name alert labels of that model,
and that the files it names (CA, client certificate, password files, watched folders) are there.
Every error is a `ConfigError` that names the file and the key: "<file>: [section.key]: problem;
expected ...". Array tables are counted from 1 as people count them: `image.sources[1]` is the first
`[[image.sources]]`.

Relative paths resolve against `device.state_dir` (the outbox) or the config file's folder (all else).
Secrets live in files (`password_file`), never in the config, so the config can be shown and copied.
The example with every key explained is `systemd/edge.example.toml`.
"""

from edge.config.errors import ConfigError
from edge.config.reader import load_config
from edge.config.secret_files import read_secret
from edge.config.sections import (AFTER_ACTIONS, DEFAULT_PATH, DEFAULT_STATE_DIR, DEVICE_ID, AudioConfig, AudioSource,
                                  DeviceConfig, EdgeConfig, FolderSource, HttpSource, ImageConfig, ImageModelConfig,
                                  ImageSource, Location, MicrophoneSource, MqttConfig, OutboxConfig, PicameraSource,
                                  TlsConfig)
from edge.config.service import broker_settings, outbox_limits, publisher_options

__all__ = [
    "AFTER_ACTIONS", "DEFAULT_PATH", "DEFAULT_STATE_DIR", "DEVICE_ID",
    "AudioConfig", "AudioSource", "ConfigError", "DeviceConfig", "EdgeConfig", "FolderSource", "HttpSource",
    "ImageConfig", "ImageModelConfig", "ImageSource", "Location", "MicrophoneSource", "MqttConfig", "OutboxConfig",
    "PicameraSource", "TlsConfig",
    "broker_settings", "load_config", "outbox_limits", "publisher_options", "read_secret",
]
