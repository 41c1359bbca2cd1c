"""Each override of a library's private code is fenced by a hash of the upstream source."""

from __future__ import annotations

import pytest

from app.patches.fence import load_all, source_hash

FENCES = load_all()

pytestmark = pytest.mark.unit


def test_every_patch_module_fences_something() -> None:
    assert FENCES, "app/patches/ registers no fence"


@pytest.mark.parametrize("item", FENCES, ids=[f.target for f in FENCES])
def test_upstream_source_is_the_one_the_override_was_written_against(item) -> None:  # type: ignore[no-untyped-def]
    assert source_hash(item.target) == item.sha256, (
        f"{item.target} changed upstream ({item.why}): read the change, adapt the override in "
        "app/patches/, then update the hash (python -m app.patches)"
    )
