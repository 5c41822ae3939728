"""The per-file tables a backup holds: the attachment list, the capture's results and
the blob index. They are kept in arrays so that memory stays flat in the number of
files; these tests pin both what they hold and what it costs per file."""

from __future__ import annotations

import gc
import hashlib
import json
import os
import tracemalloc

import pytest

from erpops.pg.attachments import AttachedFiles
from erpops.repo import keys
from erpops.repo.capture import capture_files
from erpops.repo.manifest import Manifest
from erpops.repo.blob_index import BlobIndex, PackInfo
from erpops.repo.repository import Repository
from erpops.transport.local import LocalTransport


def sha(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def bytes_per_item(build, count: int) -> float:
    """Memory held by what ``build(count)`` returns, per item (traced allocations)."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        held = build(count)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    del held
    return (after - before) / count


# --- the attachment list -----------------------------------------------------------


def test_attachment_rows_are_grouped_by_file_and_odoo_names_are_rebuilt_exactly():
    a, b = sha("a"), sha("b")
    table = AttachedFiles.of([
        (7, f"{a[:2]}/{a}", a), (9, f"{a[:2]}/{a}", a),  # two attachments of equal content share the file
        (3, f"{b[:2]}/{b}", None),
        (4, "moved/by-hand.pdf", b.upper()),  # name says nothing: the checksum does
        (5, f"checklist/{a}", None),  # not Odoo's layout, but its last part is a SHA-1
        (6, "mystery", None),  # nothing says what it holds: hashed when captured
    ])
    assert len(table) == 5
    assert [table.name(r) for r in range(5)] == [f"{a[:2]}/{a}", f"{b[:2]}/{b}", "moved/by-hand.pdf",
                                                  f"checklist/{a}", "mystery"]
    assert [table.sha1(r) for r in range(5)] == [a, b, b, a, None]
    assert table.attachment_ids(0) == [7, 9] and table.attachment_ids(4) == [6]
    assert table.file(0).store_fname == f"{a[:2]}/{a}" and table.file(0).attachment_ids == [7, 9]
    table.set_sha1(4, sha("mystery content"))
    assert table.sha1(4) == sha("mystery content") and table.name(4) == "mystery"


def test_the_manifest_order_does_not_depend_on_the_database_collation():
    names = ["b/x", "a/x", "A/x", "ab/y"]  # as a case-insensitive collation might order them
    table = AttachedFiles.of([(i, name, None) for i, name in enumerate(names)])
    assert [table.name(r) for r in table.name_order()] == sorted(names)
    in_order = AttachedFiles.of([(i, f"{s[:2]}/{s}", None) for i, s in enumerate(sorted(sha(str(n)) for n in range(50)))])
    assert isinstance(in_order.name_order(), range)  # the usual case: no sorting, no list
    assert in_order.sha1_order(in_order.name_order()) == in_order.name_order()


def test_an_attachment_list_costs_a_few_dozen_bytes_per_file():
    shas = sorted(sha(str(n)) for n in range(20_000))

    def build(count):
        return AttachedFiles.of((i, f"{s[:2]}/{s}", s) for i, s in enumerate(shas[:count]))

    assert bytes_per_item(build, 20_000) < 60  # an object per file cost about 250


# --- the blob index -------------------------------------------------------------------


def test_a_pack_index_round_trips_and_rejects_impossible_entries():
    entries = [(sha("a"), 0, 100, 80), (sha("b"), 100, 50, 3000)]
    info = PackInfo.from_json(PackInfo("p1", 150, entries).to_json(), "p1")
    assert len(info) == 2 and info.sha1(1) == sha("b")
    assert [(s, loc.offset, loc.length, loc.size) for s, loc in info.blobs] == entries
    with pytest.raises(ValueError, match="not the index of pack p2"):
        PackInfo.from_json(info.to_json(), "p2")
    bad = json.loads(info.to_json())
    bad["blobs"][1][1] = 140  # 140 + 50 goes past the pack's 150 bytes
    with pytest.raises(ValueError, match="impossible entry"):
        PackInfo.from_json(json.dumps(bad).encode(), "p1")


def test_the_blob_index_finds_blobs_and_keeps_the_first_copy():
    index = BlobIndex()
    index.add(PackInfo("p1", 150, [(sha("a"), 0, 100, 80), (sha("b"), 100, 50, 30)]))
    index.add(PackInfo("p2", 60, [(sha("b"), 0, 60, 30)]))  # written twice by two backups at once
    assert len(index) == 2 and sha("a") in index and sha("c") not in index and "not-a-sha" not in index
    assert index.get(sha("b")).pack == "p1" and index.get(sha("b")).offset == 100
    assert index.get(sha("c")) is None and index.get("not-a-sha") is None
    assert set(index.packs) == {"p1", "p2"}


def test_the_blob_index_costs_under_two_hundred_bytes_per_blob():
    def build(count):
        index = BlobIndex()
        for start in range(0, count, 500):
            index.add(PackInfo(os.urandom(16).hex(), 1 << 30,
                               [(sha(str(n)), n * 50_000, 40_100, 40_000) for n in range(start, start + 500)]))
        return index

    assert bytes_per_item(build, 20_000) < 200  # an object per blob cost about 340


# --- the capture's results ------------------------------------------------------------


@pytest.fixture
def repo(tmp_path):
    return Repository.init(str(tmp_path / "repo"), keys.Passphrase("pw", scrypt_n=1 << 10), chunk_size=4096)


def test_captured_files_become_manifest_entries_one_blob_per_content(repo, tmp_path):
    root = tmp_path / "filestore"
    same, other, unnamed = b"the same invoice", b"a delivery note", b"a file named by hand"
    files = {f"{sha('x')[:2]}/{hashlib.sha1(other).hexdigest()}": other,
             "copies/one.pdf": same, "copies/two.pdf": same, "by-hand": unnamed}
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(content)
    rows = [(1, "copies/two.pdf", hashlib.sha1(same).hexdigest()), (2, "copies/one.pdf", hashlib.sha1(same).hexdigest()),
            (3, "gone/away.pdf", None), (4, "by-hand", None),
            (5, f"{sha('x')[:2]}/{hashlib.sha1(other).hexdigest()}", None)]
    result = capture_files(repo, AttachedFiles.of(rows), str(root), LocalTransport())

    assert result.file_count == 4 and [m.store_fname for m in result.missing_files()] == ["gone/away.pdf"]
    assert result.new_files == 3 and result.new_bytes == len(same) + len(other) + len(unnamed)
    entries = list(result.file_entries())
    assert [e.store_fname for e in entries] == sorted(files)
    assert {e.store_fname: e.sha1 for e in entries}["by-hand"] == hashlib.sha1(unnamed).hexdigest()
    blobs = list(result.blob_objects())
    assert [b.sha1 for b in blobs] == sorted({hashlib.sha1(c).hexdigest() for c in files.values()})
    assert all(b.new and b.key == f"blobs/{b.sha1[:2]}/{b.sha1}" for b in blobs)

    manifest = Manifest.model_validate_json(b"".join(Manifest(
        backup_id="20261204T000000Z-lab-retail", environment="lab", tenant="retail", started_at="2026-12-04T00:00:00Z",
        finished_at="2026-12-04T00:00:01Z", snapshot_at="2026-12-04T00:00:00Z", duration_s=1, erpops_version="t",
        pg_version="15").iter_json(batch=2, objects=iter(blobs), files=iter(entries))))
    assert manifest.files == entries and manifest.objects == blobs

    again = capture_files(repo, AttachedFiles.of(rows), str(root), LocalTransport())
    assert again.new_files == 0 and not any(b.new for b in again.blob_objects())
    assert [b.stored_bytes for b in again.blob_objects()] == [b.stored_bytes for b in blobs]
