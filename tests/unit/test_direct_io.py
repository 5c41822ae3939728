"""Repository files written around the page cache: every length comes out exact,
with O_DIRECT and without it (the way taken where a file system refuses it)."""

from __future__ import annotations

import hashlib
import io
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


def test_restored_files_large_and_small_come_out_exact_and_readable(tmp_path):
    from erpops.errors import VerificationFailed
    from erpops.repo.restore_files import DIRECT_MIN, FileToWrite, write_files

    contents = [os.urandom(n) for n in (10, DIRECT_MIN - 1, DIRECT_MIN, 3 * DIRECT_MIN + 12345)]
    items = []
    for data in contents:
        sha = hashlib.sha1(data).hexdigest()
        items.append(FileToWrite(f"{sha[:2]}/{sha}", sha, len(data), lambda data=data: io.BytesIO(data)))
    result = write_files(items, tmp_path / "filestore")
    assert result.files == 4 and result.bytes == sum(map(len, contents))
    for item, data in zip(items, contents):
        path = tmp_path / "filestore" / item.store_fname
        assert path.read_bytes() == data
        assert path.stat().st_mode & 0o777 == 0o666 & ~_umask()

    damaged = os.urandom(2 * DIRECT_MIN)  # a large file whose stored copy does not match its name
    sha = hashlib.sha1(b"what it should be").hexdigest()
    with pytest.raises(VerificationFailed, match="restored with SHA-1"):
        write_files([FileToWrite(f"{sha[:2]}/{sha}", sha, len(damaged), lambda: io.BytesIO(damaged))],
                    tmp_path / "other")
    assert not (tmp_path / "other" / sha[:2] / sha).exists()  # removed, never left under its name


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
