"""A repository in a local directory (or a mounted NFS/SMB share).

Writes are atomic: data goes to a temporary file in the target directory
(around the page cache: direct_io.py), is fsynced, then renamed into place
(``if_absent``: hard-linked, which fails if the name exists, so two writers of
the same content-addressed blob cannot clobber each other), and the directory
is fsynced. A crash leaves either the old state
or the new one, plus at most a ``.tmp-*`` file that ``list`` ignores.

A file system cannot enforce Object Lock, so a put with ``retain_until`` is
refused rather than silently writing an object that anyone can delete.
"""

from __future__ import annotations

import os
import secrets
import threading
from collections import OrderedDict
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO, Iterator

from erpops.errors import OperationFailed, UsageError
from erpops.repo.direct_io import DirectWriter, open_new
from erpops.repo.storage import ObjectExists, ObjectNotFound, ObjectStat, check_key

COPY_BUFFER = 1 << 20
OPEN_FILES_PER_THREAD = 4
TMP_PREFIX = ".tmp-"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SourceFailed(Exception):
    """Carries an error of the caller's reader past our own OSError handling."""


def _read_source(reader) -> bytes:
    try:
        return reader.read(COPY_BUFFER)
    except OSError as exc:
        raise SourceFailed() from exc


class LocalStorage:
    def __init__(self, root: Path | str):
        self.root = Path(root)
        self.url = f"file://{self.root}"
        self._open_files = threading.local()  # get_range's files, per thread

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _failed(self, what: str, key: str, exc: OSError) -> OperationFailed:
        return OperationFailed(f"cannot {what} {key!r} in {self.root}: {exc.strerror}",
                               hint="check that the directory exists, is writable by this user and has free space")

    def put_stream(self, key: str, reader: BinaryIO, *, if_absent: bool = False,
                   retain_until: datetime | None = None) -> int:
        final = self._path(key)
        if retain_until is not None:
            raise UsageError(f"{self.url} is a local directory, which cannot enforce Object Lock retention",
                             hint="use an S3 bucket with Object Lock enabled, or a repository without object_lock")
        if if_absent and final.exists():
            raise ObjectExists(f"object {key!r} already exists in {self.url}")
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp = final.parent / f"{TMP_PREFIX}{final.name}-{secrets.token_hex(6)}"
            fd, direct = open_new(tmp)
        except OSError as exc:
            raise self._failed("write", key, exc) from None
        try:
            try:
                out = DirectWriter(fd, direct)
                while piece := _read_source(reader):
                    out.write(piece)
                out.close()
                written = out.written
                os.fsync(fd)
            finally:
                os.close(fd)
            if if_absent:
                try:
                    os.link(tmp, final)  # fails with EEXIST instead of replacing
                except FileExistsError:
                    raise ObjectExists(f"object {key!r} already exists in {self.url}") from None
                finally:
                    os.unlink(tmp)
            else:
                os.replace(tmp, final)
            _fsync_dir(final.parent)
        except SourceFailed as failed:
            raise failed.__cause__ from None  # the source's own error, not a storage problem
        except OSError as exc:
            raise self._failed("write", key, exc) from None
        finally:
            if tmp.exists():
                tmp.unlink()
        return written

    def get_stream(self, key: str) -> BinaryIO:
        try:
            return open(self._path(key), "rb")
        except FileNotFoundError:
            raise ObjectNotFound(f"object {key!r} does not exist in {self.url}") from None
        except IsADirectoryError:
            raise ObjectNotFound(f"object {key!r} does not exist in {self.url} (it is a directory)") from None
        except OSError as exc:
            raise self._failed("read", key, exc) from None

    def get_range(self, key: str, offset: int, length: int) -> BinaryIO:
        """Reads with pread on a file this thread keeps open: a restore reads tens of
        thousands of blobs from a few hundred packs, and an open per blob costs more
        than the blob (the cache is per thread, so no descriptor is shared)."""
        files = getattr(self._open_files, "lru", None)
        if files is None:
            files = self._open_files.lru = OrderedDict()
        handle = files.pop(key, None)
        if handle is None:
            handle = self.get_stream(key)
            if len(files) >= OPEN_FILES_PER_THREAD:
                files.popitem(last=False)[1].close()
        files[key] = handle
        return _RangeReader(handle.fileno(), offset, length)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def stat(self, key: str) -> ObjectStat:
        try:
            st = self._path(key).stat()
        except FileNotFoundError:
            raise ObjectNotFound(f"object {key!r} does not exist in {self.url}") from None
        return ObjectStat(key, st.st_size, datetime.fromtimestamp(st.st_mtime, timezone.utc))

    def size(self, key: str) -> int:
        return self.stat(key).size

    def list(self, prefix: str = "") -> Iterator[str]:
        if not self.root.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames.sort()
            rel = Path(dirpath).relative_to(self.root)
            for name in sorted(filenames):
                if name.startswith(TMP_PREFIX):
                    continue
                key = name if rel == Path(".") else f"{rel.as_posix()}/{name}"
                if key.startswith(prefix):
                    yield key

    def stale_temporaries(self, older_than: datetime) -> Iterator[tuple[Path, int]]:
        """Temporary files (``.tmp-*``) last written before ``older_than``: what a killed
        writer left. For `repo prune`."""
        if not self.root.is_dir():
            return
        cutoff = older_than.timestamp()
        for dirpath, _dirnames, filenames in os.walk(self.root):
            for name in filenames:
                if name.startswith(TMP_PREFIX):
                    path = Path(dirpath) / name
                    try:
                        st = path.stat()
                    except FileNotFoundError:
                        continue
                    if st.st_mtime < cutoff:
                        yield path, st.st_size

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            raise ObjectNotFound(f"object {key!r} does not exist in {self.url}") from None
        except OSError as exc:
            raise self._failed("delete", key, exc) from None


class _RangeReader:
    """``length`` bytes from ``offset`` of an open file, read with pread (the file
    stays open for the next range; closing this reader leaves it open)."""

    def __init__(self, fd: int, offset: int, length: int):
        self._fd, self._offset, self._left = fd, offset, length

    def read(self, size: int = -1) -> bytes:
        want = self._left if size is None or size < 0 else min(size, self._left)
        data = os.pread(self._fd, want, self._offset) if want else b""
        self._offset += len(data)
        self._left -= len(data)
        return data

    def close(self) -> None:
        return None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
