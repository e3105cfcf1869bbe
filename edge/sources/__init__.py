"""Frame and clip sources for the field service (`nv-edge run`).

Every source has the same small surface (`edge/sources/item.py`):

    source.name                  stable name; the ledger keys files by it
    source.poll(now) -> [Item]   never blocks: one service thread drives several sources
    source.done(item, outcome)   the item's record is committed to the outbox
    source.release(item)         the item was not used (e.g. its card was pulled): offer it again
    source.close()

One module per kind: `folder.py` (a watched folder of images or audio clips), `snapshot.py` (an
IP camera's HTTP snapshot URL), `picamera.py` (the Pi camera). `factory.py` builds them from the
config; `ledger.py` remembers which files were done, so nothing is classified twice or skipped
across a crash or a restart.
"""
