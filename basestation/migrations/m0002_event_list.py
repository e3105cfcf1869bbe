"""2: indexes for the event list: newest first (capture time, then id), by unit, by label, alerts only.

Each index ends in (time, id), the list's order, so a page is read off the index newest first and
the scan stops at the page's end; the alert index is partial (alert = 1: about a tenth of the rows).
A filter on two of unit, label and alert walks one index and checks the other on the rows it meets.
"""

SQL = """
CREATE INDEX IF NOT EXISTS detections_time ON detections (time, id);
CREATE INDEX IF NOT EXISTS detections_device_time ON detections (device, time, id);
CREATE INDEX IF NOT EXISTS detections_label_time ON detections (label, time, id);
CREATE INDEX IF NOT EXISTS detections_alert_time ON detections (time, id) WHERE alert = 1;
"""
