"""Compare the tile map `nv-edge classify` found in a mosaic with the mosaic's true tile map.

    nv-edge classify samples/scenes/mosaic_a.png --overlap 0 | python samples/compare_truth.py samples/scenes/mosaic_a.json

With overlap 0 the model's 48 px tiles are exactly the mosaic's tiles, so each can be scored.
"""

from __future__ import annotations

import json
import sys


def main() -> int:
    truth = json.load(open(sys.argv[1]))
    record = json.loads(sys.stdin.readline())
    if "error" in record:
        print(f"cannot compare: {record['error']}")
        return 1
    tiles = record.get("tiles")
    if not tiles or (tiles["rows"], tiles["cols"]) != (truth["rows"], truth["cols"]):
        print("cannot compare: run classify with --overlap 0 on the mosaic so that tiles match the truth map")
        return 1
    threshold = record.get("threshold") or 0.5
    label = next(iter(tiles["grid"]))
    hits = misses = false_alarms = quiet = 0
    rows = []
    for r, (found_row, true_row) in enumerate(zip(tiles["grid"][label], truth["labels"])):
        line = ""
        for score, true in zip(found_row, true_row):
            alert, real = score >= threshold, true == label
            hits += alert and real
            misses += real and not alert
            false_alarms += alert and not real
            quiet += not alert and not real
            line += {(True, True): "#", (False, True): "o", (True, False): "x", (False, False): "."}[(alert, real)]
        rows.append(line)
    print(f"{record['source']}: threshold {threshold} on '{label}'; # found, o missed, x false alarm, . quiet")
    print("\n".join("  " + row for row in rows))
    print(f"{label} tiles found {hits} of {hits + misses}; false alarms {false_alarms} of {false_alarms + quiet} other tiles")
    return 0


if __name__ == "__main__":
    sys.exit(main())
