"""The service's order of writes, in miniature, for the crash tests: it kills itself with SIGKILL
at a chosen step of a chosen item.

    python process_folder.py FOLDER STATE_DIR AFTER KILL_STEP KILL_AT_ITEM

For each item: claim (inside poll) -> classify -> outbox.put -> outbox.flush -> source.done.
KILL_STEP is one of claimed, put, flushed, done; KILL_AT_ITEM counts items from 1 in this run
(0: never). Prints one line per item done; exits 0 once the folder has nothing left to offer.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from edge.delivery.outbox import Outbox  # noqa: E402
from edge.image.decode import ImageError, open_frame  # noqa: E402
from edge.sources.folder import FolderSource  # noqa: E402
from edge.sources.ledger import Ledger  # noqa: E402


def main(folder: str, state_dir: str, after: str, kill_step: str, kill_at: int) -> int:
    ledger = Ledger.in_state_dir(state_dir)
    outbox = Outbox(Path(state_dir) / "outbox.db", batch=1000, max_delay_s=3600)  # only flush() commits
    source = FolderSource("card", folder, ledger, settle_s=0.0, poll_s=0.0, after=after, batch=3,
                          done_dir=Path(state_dir) / "done" if after == "move" else None)
    count = 0

    def step(name: str) -> None:
        if count == kill_at and name == kill_step:
            os.kill(os.getpid(), signal.SIGKILL)

    while items := source.poll():
        for item in items:
            count += 1
            step("claimed")
            try:
                frame = open_frame(item.path)
                record = {"id": item.record_id, "source": item.origin, "width": frame.width}
            except ImageError as exc:
                record = {"id": item.record_id, "source": item.origin, "error": str(exc)}
            outbox.put(record)
            step("put")
            outbox.flush()
            step("flushed")
            source.done(item, "error" if "error" in record else "ok")
            step("done")
            print(item.key.path, flush=True)
    outbox.close()
    ledger.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])))
