"""Every override of a library's private code, one module per library.

Each module registers, with :func:`app.patches.fence.fence`, the upstream functions it replaces or
relies on, by a hash of their source at the locked version; ``tests/unit/test_patches.py`` fails
when an installed library no longer matches, so an upgrade cannot silently break an override.
"""
