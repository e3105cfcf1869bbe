"""From scores to decisions: alert groups (groups.py), thresholds and alerts per observation
(alerts.py), events over a sequence of observations (events.py, with the rolling mean of
smoothing.py). Imports edge.model (the manifest).
"""
