"""Getting records off the unit: the durable outbox (outbox.py), broker connection and link state
(connection.py, link.py), topics, the publisher thread (publisher.py), receipts and commands (confirmations.py,
inbound.py), heartbeats (health.py). Imports edge.records; never image or audio.
"""
