"""``python -m app.patches``: each fence's target, ``ok`` or ``CHANGED``, and its current hash."""

from app.patches.fence import load_all, source_hash

for item in load_all():
    current = source_hash(item.target)
    mark = "ok" if current == item.sha256 else "CHANGED"
    print(f"{mark:8} {item.target} {current}")
