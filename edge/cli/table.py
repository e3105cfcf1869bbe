"""`--format table`: one line per record, for people (classify and listen)."""

from __future__ import annotations


class TableWriter:
    COLUMNS = ("source", "label", "score", "alert", "tiles/at", "best box / audio / error")

    def __init__(self, stream):
        self.stream = stream
        self.stream.write("{:<40} {:<12} {:>6} {:<5} {:>7}  {}\n".format(*self.COLUMNS))

    def write(self, record: dict) -> None:
        source = record["source"] if len(record["source"]) <= 40 else "…" + record["source"][-39:]
        if "error" in record:
            line = f"{source:<40} {'ERROR':<12} {'':>6} {'':<5} {'':>7}  {record['error']}"
        elif record["kind"] == "audio":  # "at": the window's (or event's) offset into the clip, or its time
            alert = "YES" if record["alert"] else "no"
            place, event = record.get("audio") or record["event"], record.get("event")
            at = f"{place['offset_s']:.2f}s" if "offset_s" in place else record["time"][11:19]
            detail = (f"event {event['phase']}, {event['duration_s']:.1f} s" if event
                      else f"{place['duration_s']:.2f} s, {place['rms_dbfs']:.0f} dBFS")
            line = f"{source:<40} {record['label']:<12} {record['score']:>6.3f} {alert:<5} {at:>7}  {detail}"
        else:
            tiles = record.get("tiles")
            grid = f"{tiles['rows']}x{tiles['cols']}" if tiles else "1"
            box = ",".join(map(str, tiles["best"]["box"])) if tiles else ""
            alert = "YES" if record["alert"] else "no"
            if "out_of_domain" in record:  # why the model cannot judge it: the alert column alone would hide it
                box = f"{box}  out of domain: {record['out_of_domain']['why']}".lstrip()
            line = f"{source:<40} {record['label']:<12} {record['score']:>6.3f} {alert:<5} {grid:>7}  {box}"
        self.stream.write(line + "\n")
        self.stream.flush()
