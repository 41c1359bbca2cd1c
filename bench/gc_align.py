"""The latency tail against the worker's garbage-collection pauses, from one bench run.

    .venv/bin/python bench/gc_align.py [/tmp/notify-bench/out] [port]        # bench/run.sh
    .venv/bin/python bench/gc_align.py /tmp/nb-x/out 21500 A          # one_scenario.sh, label A

Reads the latency scenario's JSON (outliers: each notification over 30 ms, with the wall-clock
time it was sent) and our server's log (one ``gc_pause`` line per collection of at least
``GC_PAUSE_LOG_MS``, 5 ms in the bench scripts): ``ours-latency.json`` and ``ours-<port>.log``
from ``bench/run.sh``, or ``<label>-latency.json`` and ``<label>-server.log`` from
``bench/one_scenario.sh``. Prints, per latency level: the pauses in that window by generation and
length, how many outliers were in flight during a pause, and the ``loop_block`` lines (a greenlet
that held the loop ``LOOP_BLOCK_LOG_MS`` or more, when the server logs them) by where they were,
and the load generator's own GC pauses and loop delay (its receipts are late by them too).
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
    label = sys.argv[3] if len(sys.argv) > 3 else None
    log_path = out / (f"{label}-server.log" if label else f"ours-{port}.log")
    latency_path = out / f"{label or 'ours'}-latency.json"
    pauses: list[tuple[float, float, int]] = []  # start s, end s, generation
    blocks: list[tuple[float, float, str]] = []  # start s, ms, where
    totals: list[tuple[float, dict[str, list[float]]]] = []  # drained at s, per generation
    for line in log_path.read_text(errors="replace").splitlines():
        if '"gc_pause"' in line:
            entry = json.loads(line)
            start = entry["started"]
            pauses.append((start, start + entry["duration_ms"] / 1000, entry["generation"]))
        elif '"gc_totals"' in line:
            entry = json.loads(line)
            totals.append((entry["started"], {k: v for k, v in entry.items() if k[:3] == "gen"}))
        elif '"loop_block"' in line:
            entry = json.loads(line)
            blocks.append((entry["started"], entry["duration_ms"], entry["where"]))
    latency = json.loads(latency_path.read_text().strip().splitlines()[-1])
    for level in latency["rates"]:
        begin, end = level["startedEpochMs"] / 1000, level["endedEpochMs"] / 1000 + 5
        window = [p for p in pauses if begin <= p[0] <= end]
        histogram = Counter((gen, bucket(1000 * (e - s))) for s, e, gen in window)
        overlapped = 0
        for sent_ms, latency_ms in level["outliers"]:
            sent, got = sent_ms / 1000, (sent_ms + latency_ms) / 1000
            if any(s <= got and e >= sent for s, e, _gen in window):
                overlapped += 1
        own = [(t / 1000, (t + ms) / 1000) for t, ms, _kind in level.get("loadgenGcPauses", [])]
        own_overlapped = sum(
            any(s <= (sent + ms) / 1000 and e >= sent / 1000 for s, e in own)
            for sent, ms in level["outliers"]
        )
        longest = max((1000 * (e - s) for s, e, gen in window if gen == 2), default=0.0)
        paused = sum(1000 * (e - s) for s, e, _gen in window)
        print(
            f"@{level['rate']}/s: p99 {level['p99']} ms, max {level['max']} ms; "
            f"{len(level['outliers'])} over 30 ms, {overlapped} of them in flight during a pause; "
            f"pauses >= 5 ms: {dict(sorted(histogram.items()))} ({paused:.0f} ms in all); "
            f"longest gen-2 {longest:.1f} ms"
        )
        if "loadgenGcPauses" in level:
            delay = level["loadgenLoopDelayMs"]
            kinds = Counter(kind for _t, _ms, kind in level["loadgenGcPauses"])
            print(
                f"    load generator: GC pauses >= 5 ms {dict(kinds)}, longest "
                f"{max((ms for _t, ms, _k in level['loadgenGcPauses']), default=0.0):.1f} ms, "
                f"{own_overlapped} outliers in flight during one; its loop delay "
                f"p99 {delay['p99']} ms, max {delay['max']} ms"
            )
        summed: dict[str, list[float]] = {}
        for at, per_gen in totals:
            if begin <= at <= end - 5:
                for gen, values in per_gen.items():
                    summed[gen] = [
                        a + b for a, b in zip(summed.get(gen, [0, 0, 0]), values, strict=True)
                    ]
        if summed:
            print(
                "    every collection (count, wall ms, CPU ms): "
                + ", ".join(
                    f"{g} {n:.0f} {w:.0f} {c:.0f}" for g, (n, w, c) in sorted(summed.items())
                )
            )
        held = [b for b in blocks if begin <= b[0] <= end]
        if held:
            where = Counter(w for _s, _ms, w in held)
            print(
                f"    loop held >= threshold: {len(held)}, longest "
                f"{max(ms for _s, ms, _w in held):.1f} ms; by where: {dict(where.most_common(6))}"
            )


if __name__ == "__main__":
    main()
