"""``python -m app.payloads``: write docs/EVENTS.md's payload schemas again from the models (for
the default configuration); ``--check`` only says whether the file is up to date."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.payloads.rules import DEFAULT_MAX_MESSAGE_LENGTH
from app.payloads.schema import with_events_section

EVENTS = Path(__file__).resolve().parents[2] / "docs" / "EVENTS.md"
DEFAULT_SETTINGS = {"MAX_MESSAGE_LENGTH": DEFAULT_MAX_MESSAGE_LENGTH}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if EVENTS.md is stale")
    options = parser.parse_args()
    written = EVENTS.read_text(encoding="utf-8")
    fresh = with_events_section(written, DEFAULT_SETTINGS)
    if options.check:
        if fresh != written:
            print(f"{EVENTS} is stale: run python -m app.payloads", file=sys.stderr)
            return 1
        return 0
    EVENTS.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
