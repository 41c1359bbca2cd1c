"""The latency tail against the worker's garbage-collection pauses, from one bench run.

    .venv/bin/python bench/gc_align.py [/tmp/notify-bench/out] [port]

Reads ``ours-latency.json`` (outliers: each notification over 30 ms, with the wall-clock time it
was sent) and our server's log ``ours-<port>.log`` (one ``gc_pause`` line per collection of at
least ``GC_PAUSE_LOG_MS``, 5 ms in bench/run.sh) and prints, per latency level: the pauses in
that window by generation and length, and how many outliers were in flight during a pause.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

BUCKETS_MS = (5, 10, 25, 50, 100, 250, 1000)


def bucket(ms: float) -> str:
    for edge in BUCKETS_MS:
        if ms < edge:
            return f"<{edge}"
    return f">={BUCKETS_MS[-1]}"


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/notify-bench/out")  # noqa: S108
    port = sys.argv[2] if len(sys.argv) > 2 else "3300"
    pauses: list[tuple[float, float, int]] = []  # start s, end s, generation
    for line in (out / f"ours-{port}.log").read_text(errors="replace").splitlines():
        if '"gc_pause"' not in line:
            continue
        entry = json.loads(line)
        start = entry["started"]
        pauses.append((start, start + entry["duration_ms"] / 1000, entry["generation"]))
    latency = json.loads((out / "ours-latency.json").read_text().strip().splitlines()[-1])
    for level in latency["rates"]:
        begin, end = level["startedEpochMs"] / 1000, level["endedEpochMs"] / 1000 + 5
        window = [p for p in pauses if begin <= p[0] <= end]
        histogram = Counter((gen, bucket(1000 * (e - s))) for s, e, gen in window)
        overlapped = 0
        for sent_ms, latency_ms in level["outliers"]:
            sent, got = sent_ms / 1000, (sent_ms + latency_ms) / 1000
            if any(s <= got and e >= sent for s, e, _gen in window):
                overlapped += 1
        longest = max((1000 * (e - s) for s, e, gen in window if gen == 2), default=0.0)
        print(
            f"@{level['rate']}/s: p99 {level['p99']} ms, max {level['max']} ms; "
            f"{len(level['outliers'])} over 30 ms, {overlapped} of them in flight during a pause; "
            f"pauses >= 5 ms: {dict(sorted(histogram.items()))}; longest gen-2 {longest:.1f} ms"
        )


if __name__ == "__main__":
    main()
