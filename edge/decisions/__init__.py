"""From scores to decisions: thresholds and alerts per observation (alerts.py), events over a sequence of
observations (events.py). Imports edge.model (the manifest).
"""
