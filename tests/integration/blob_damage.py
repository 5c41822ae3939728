"""Damage one filestore blob where it is stored (in its pack) and put it back:
what the restore, export and verify tests do to a repository."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from erpops.repo.blob_index import pack_key


def blob_file(repo, sha1: str) -> tuple[Path, int, int]:
    """The local pack file holding blob ``sha1``, the blob's offset and length in it."""
    location = repo.blob_index().get(sha1)
    assert location is not None, f"no pack holds blob {sha1}"
    return repo.storage.root / pack_key(location.pack), location.offset, location.length


@contextlib.contextmanager
def flipped_blob(repo, sha1: str, *, from_end: int = 20):
    """Flip a byte ``from_end`` bytes before the end of the blob, restore it afterwards."""
    path, offset, length = blob_file(repo, sha1)
    saved = path.read_bytes()
    damaged = bytearray(saved)
    damaged[offset + length - from_end] ^= 0xFF
    os.chmod(path, 0o644)
    path.write_bytes(bytes(damaged))
    try:
        yield path
    finally:
        path.write_bytes(saved)
