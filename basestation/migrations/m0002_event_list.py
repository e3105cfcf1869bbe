"""2: indexes for the event list: newest first (capture time, then id), filtered by any of unit,
label and alert, and a capture-time window.

Each index is (the filters' columns, time, id): a page is read off one index newest first, only rows
that match, and the scan stops at the page's end; a time window is a range inside it. One index per
combination of the three filters but the three together: those walk unit + label and check the alert,
which rides at the end of that index so that SQLite checks it without reading the row (150 ms down
to a few over a million rows, when no row of that unit and label has that alert). Without these, a
filter matching nothing (a label that never alerts, alerts only) walked every row of the label: 2 to 5 s.
"""

SQL = """
CREATE INDEX IF NOT EXISTS detections_time ON detections (time, id);
CREATE INDEX IF NOT EXISTS detections_device_time ON detections (device, time, id);
CREATE INDEX IF NOT EXISTS detections_label_time ON detections (label, time, id);
CREATE INDEX IF NOT EXISTS detections_alert_time ON detections (alert, time, id);
CREATE INDEX IF NOT EXISTS detections_device_label_time ON detections (device, label, time, id, alert);
CREATE INDEX IF NOT EXISTS detections_device_alert_time ON detections (device, alert, time, id);
CREATE INDEX IF NOT EXISTS detections_label_alert_time ON detections (label, alert, time, id);
"""
