"""Prints the README's benchmark table from bench/RESULTS.md (run after ``make bench``).

.venv/bin/python bench/readme_table.py > /tmp/table.md
"""

from __future__ import annotations

import re
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"

WANTED = [
    (
        "server CPU per webhook notification (64 in flight)",
        "throughput, 64 in flight: server CPU ms per notification",
        " ms",
    ),
    (
        "server CPU per socket `send_notification` (64 in flight)",
        "socket send_notification, 64 in flight: server CPU ms per notification",
        " ms",
    ),
    (
        "webhook → delivered, 1,000 clients, 64 in flight",
        "throughput (webhook → delivered), 1,000 clients, 64 in flight: delivered/s",
        "/s",
    ),
    (
        "`send_notification` acked, 64 in flight",
        "socket send_notification, 64 in flight: acked/s",
        "/s",
    ),
    ("webhook → client p99 @200/s, 1,000 clients", "latency @200/s, 1,000 clients: p99 ms", " ms"),
    ("webhook → client p99 @500/s", "latency @500/s, 1,000 clients: p99 ms", " ms"),
    ("webhook → client max @500/s", "latency @500/s, 1,000 clients: max ms", " ms"),
    ("webhook → client p99 @1,000/s", "latency @1000/s, 1,000 clients: p99 ms", " ms"),
    ("handshakes/s reaching 10,000", "connect 10000: handshakes/s", ""),
    (
        "memory per socket at 10,000 (RSS growth from start)",
        "connect 10000: KB per socket (RSS after − RSS at start)",
        " KB",
    ),
    (
        "fan-out, 1 user × 500 sockets: socket deliveries/s",
        "fan-out: 1 user × 500 sockets, socket deliveries/s",
        "",
    ),
    (
        "batch webhook to 1,000 recipients: stored and delivered",
        "batch webhook, 1,000 recipients: recipients/s stored and delivered",
        "/s",
    ),
]


def main() -> None:
    text = RESULTS.read_text()
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4:
            rows[cells[0]] = cells[1:]
    date = re.search(r"- Date: (.*)", text)
    print(
        f"The run of {date.group(1) if date else '?'} (`bench/RESULTS.md`; "
        "ratio > 1× means ours is better):\n"
    )
    print("| measurement | ours | Node peer | ours / peer |")
    print("|---|---|---|---|")
    for label, key, unit in WANTED:
        if key in rows:
            ours, peer, ratio = rows[key]
            peer_cell = (
                peer + unit if peer not in ("–", "") and not peer.startswith("n/a") else peer
            )
            print(f"| {label} | {ours}{unit} | {peer_cell} | {ratio} |")
    section = text[text.index("## Targets") : text.index("## Nothing lost")]
    print()
    print(
        section.replace("## Targets (issue 11)", "Against issue 11's targets:")
        .replace("## Floors", "Floors, same run:")
        .replace("## Garbage collection", "Garbage collection:")
        .strip()
    )


if __name__ == "__main__":
    main()
