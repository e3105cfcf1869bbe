"""The detection record contract: the JSON Schemas (schema/) and the pieces every record is made of
(record.py: ids, times, error and event records). Imports edge.decisions.
"""
