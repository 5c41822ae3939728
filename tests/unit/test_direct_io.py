"""Repository files written around the page cache: every length comes out exact,
with O_DIRECT and without it (the way taken where a file system refuses it)."""

from __future__ import annotations

import os

import pytest

from erpops.repo.direct_io import ALIGN, BUFFER, DirectWriter, open_new


@pytest.mark.parametrize("direct", [True, False])
@pytest.mark.parametrize("length", [0, 1, ALIGN - 1, ALIGN, ALIGN + 1, BUFFER, BUFFER + 7, 3 * BUFFER + ALIGN + 5])
def test_a_written_file_holds_exactly_what_was_given(tmp_path, direct, length):
    data = os.urandom(length)
    path = tmp_path / "pack"
    fd, opened_direct = open_new(path)
    if not direct and opened_direct:  # the buffered way, as on a file system without O_DIRECT
        os.close(fd)
        path.unlink()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        writer = DirectWriter(fd, direct and opened_direct)
        for start in range(0, length, 100_003):  # pieces that never line up with blocks
            writer.write(data[start:start + 100_003])
        writer.close()
    finally:
        os.close(fd)
    assert writer.written == length
    assert path.read_bytes() == data


def test_o_direct_is_used_where_the_file_system_has_it(tmp_path):
    fd, direct = open_new(tmp_path / "x")
    os.close(fd)
    assert direct  # ext4 and tmpfs (Linux 6.6+) both take it; without it the figures in docs/performance.md do not hold
    with pytest.raises(FileExistsError):
        open_new(tmp_path / "x")  # never overwrites
