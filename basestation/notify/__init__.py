"""Notifications: rules that pick stored detections, and the channels that carry them (a webhook,
e-mail through SMTP, an MQTT topic). `Notifier` is fed by `nv-base listen` after each commit and
never blocks it: every rule has its own bounded queue and worker thread."""
