"""Write a backup's filestore files out of the repository, in Odoo's layout.

Each file the manifest lists is read from its content-addressed blob (in a
pack, packs.py), written to ``<dest>/<store_fname>`` (Odoo's
``<sha[:2]>/<sha>``) under a temporary name, hashed while it is written and
renamed into place only when its SHA-1 and size are the ones the manifest
recorded: a damaged or substituted blob never lands under a real name. The
destination is a directory of its own (the caller renames it into place
once the whole restore is done). Files are written on a small thread pool.
"""

from __future__ import annotations

import hashlib
import os
import threading
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from erpops.errors import VerificationFailed
from erpops.repo.capture import file_path

DEFAULT_WORKERS = 4
MAX_IN_FLIGHT = 64
READ_SIZE = 1 << 20


@dataclass(slots=True)
class FileToWrite:
    store_fname: str
    sha1: str | None  # None: no hash known (an archive without one); written as is
    size: int | None
    open_source: Callable[[], object]  # a readable binary stream of the content; closed here


@dataclass
class WriteResult:
    files: int = 0
    bytes: int = 0


def write_files(items: Iterable[FileToWrite], dest: Path, *, workers: int = DEFAULT_WORKERS,
                owner: tuple[int, int] | None = None, on_bytes: Callable[[int], None] = lambda n: None,
                check: Callable[[], None] = lambda: None) -> WriteResult:
    """Write every item under ``dest`` (created); VerificationFailed naming the first file
    whose content does not hash to its name. ``owner``: chown what is created (running
    as root for a filestore that Odoo's user owns). ``check()`` raises to stop."""
    dest.mkdir(parents=True, exist_ok=True)
    _chown(dest, owner)
    result = WriteResult()
    lock = threading.Lock()
    made_dirs: set[Path] = set()

    def one(item: FileToWrite) -> int:
        check()
        path = Path(file_path(str(dest), item.store_fname))
        with lock:
            if path.parent not in made_dirs:
                path.parent.mkdir(parents=True, exist_ok=True)
                _chown(path.parent, owner)
                made_dirs.add(path.parent)
        part = path.with_name(path.name + ".erpops-part")
        sha = hashlib.sha1()
        size = 0
        source = item.open_source()
        try:
            with open(part, "wb") as out:
                for block in iter(lambda: source.read(READ_SIZE), b""):
                    sha.update(block)
                    out.write(block)
                    size += len(block)
                    on_bytes(len(block))
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        finally:
            source.close()
        if (item.sha1 is not None and sha.hexdigest() != item.sha1) or (item.size is not None and size != item.size):
            part.unlink(missing_ok=True)
            raise VerificationFailed(f"filestore file {item.store_fname} restored with SHA-1 {sha.hexdigest()} "
                                     f"({size} bytes), not {item.sha1} ({item.size} bytes) as recorded",
                                     where=str(path), hint="the stored copy is damaged: erpops repo verify names "
                                                           "every damaged object; restore an older backup")
        _chown(part, owner)
        os.replace(part, path)
        return size

    pending: set = set()

    def collect(done) -> None:
        for future in done:
            result.bytes += future.result()
            result.files += 1

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="erpops-unpack") as pool:
        try:
            for item in items:
                if len(pending) >= MAX_IN_FLIGHT:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    collect(done)
                check()
                pending.add(pool.submit(one, item))
            while pending:
                done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                collect(done)
                check()
        except BaseException:
            for future in pending:
                future.cancel()
            raise
    return result


def blob_items(repo, files) -> list[FileToWrite]:
    """The manifest's FileEntry list as FileToWrite, each read from its blob, in
    pack order: the packs are then read front to back, not at random."""
    index = repo.blob_index()

    def where(f) -> tuple[str, int]:
        location = index.get(f.sha1)
        return (location.pack, location.offset) if location else ("", 0)  # missing: fails when read

    return [FileToWrite(f.store_fname, f.sha1, f.size, lambda sha=f.sha1: repo.get_blob(sha))
            for f in sorted(files, key=where)]


def owner_of(path: Path) -> tuple[int, int] | None:
    """The owner to give new files: that of ``path`` when running as root and it differs."""
    if os.geteuid() != 0:
        return None
    try:
        st = path.stat()
    except OSError:
        return None
    return None if (st.st_uid, st.st_gid) == (0, 0) else (st.st_uid, st.st_gid)


def _chown(path: Path, owner: tuple[int, int] | None) -> None:
    if owner is not None:
        os.chown(path, *owner)
