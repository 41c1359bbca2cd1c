"""Summarise a py-spy ``--format raw`` (collapsed stacks) file: inclusive and self shares.

.venv/bin/python bench/pyspy_summary.py /tmp/notify-bench/out/ours-throughput.pyspy.txt
"""

from __future__ import annotations

import collections
import re
import sys

LINE = re.compile(r":\d+\)$")


def main(path: str, top: int = 45) -> None:
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    with open(path) as samples:
        for line in samples:
            stack, _, count = line.rstrip().rpartition(" ")
            n = int(count)
            total += n
            frames = [LINE.sub(")", frame) for frame in stack.split(";")]
            for frame in set(frames):
                inclusive[frame] += n
            own[frames[-1]] += n
    print(f"samples: {total}")
    print("inclusive:")
    for frame, n in inclusive.most_common(top):
        print(f"{100 * n / total:5.1f}%  {frame}")
    print("self:")
    for frame, n in own.most_common(25):
        print(f"{100 * n / total:5.1f}%  {frame}")


if __name__ == "__main__":
    main(sys.argv[1])
