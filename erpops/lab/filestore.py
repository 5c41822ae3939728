"""The lab's Odoo filestore: files in Odoo's layout, each referenced by exactly one
ir_attachment row whose checksum is the SHA-1 of its content.

Odoo stores an attachment at filestore/<db>/<sha1[:2]>/<sha1> and records
store_fname '<sha1[:2]>/<sha1>'. Content is mostly random bytes (images, PDFs and
archives do not compress), sizes mostly 2–100 kB with a few multi-MB files, plus
some compressible text (CSV exports, HTML mails) so that compression is exercised
honestly. About 100 MB at --scale 1.
"""

from __future__ import annotations

import hashlib
import math
import os
import random
from dataclasses import dataclass
from pathlib import Path

BYTES_AT_SCALE_1 = 100_000_000
LARGE_AT_SCALE_1 = 8  # multi-MB files (2–8 MB)
TEXT_SHARE = 0.1


@dataclass(frozen=True)
class StoredFile:
    name: str
    res_model: str
    res_field: str | None
    res_id: int
    store_fname: str
    checksum: str
    file_size: int
    mimetype: str


def tenant_dir(filestore_root: Path, dbname: str) -> Path:
    return Path(filestore_root) / dbname


def write_file(root: Path, content: bytes) -> tuple[str, str]:
    """Write content where Odoo would; returns (checksum, store_fname)."""
    sha = hashlib.sha1(content).hexdigest()
    fname = f"{sha[:2]}/{sha}"
    target = root / fname
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(sha + ".tmp")
    tmp.write_bytes(content)
    os.replace(tmp, target)
    return sha, fname


def _sizes(scale: float, rng: random.Random) -> list[tuple[str, int]]:
    """(kind, size) for every file: kind is large | text | binary."""
    budget = int(BYTES_AT_SCALE_1 * scale)
    plan: list[tuple[str, int]] = []
    n_large = round(LARGE_AT_SCALE_1 * scale)
    if n_large == 0 and budget >= 1_000_000:
        n_large = 1
    for _ in range(n_large):
        size = min(rng.randint(2_000_000, 8_000_000), max(budget // 3, 200_000))
        plan.append(("large", size))
        budget -= size
    while budget > 2_000:
        # log-uniform 2–100 kB: many small files, fewer big ones, as in a real filestore
        size = min(int(math.exp(rng.uniform(math.log(2_000), math.log(100_000)))), budget)
        kind = "text" if rng.random() < TEXT_SHARE else "binary"
        plan.append((kind, size))
        budget -= size
    return plan


def _text(size: int, rng: random.Random) -> bytes:
    words = ["order", "product", "qty", "price", "customer", "store", "EUR", "total", "tax", "line"]
    out, n = [], 0
    header = "id,date,reference,customer,product,qty,price_unit,total\n"
    out.append(header)
    n += len(header)
    i = 0
    while n < size:
        i += 1
        row = (f"{i},2026-{1 + i % 12:02d}-{1 + i % 28:02d},{rng.choice(words).upper()}/{rng.randint(1, 99999):05d},"
               f"Customer {rng.randint(1, 20000)},Product {rng.randint(1, 5000)},{rng.randint(1, 9)},"
               f"{rng.randint(100, 20000) / 100:.2f},{rng.randint(100, 90000) / 100:.2f}\n")
        out.append(row)
        n += len(row)
    return "".join(out).encode()[:size]


def _owner(kind: str, i: int, counts: dict[str, int]) -> tuple[str, str | None, int, str, str]:
    """(res_model, res_field, res_id, name, mimetype) for the i-th file."""
    if kind == "text":
        return ("sale.order", None, 1 + i % max(counts.get("sale_order", 1), 1), f"export_{i:05d}.csv", "text/csv")
    if kind == "large":
        return ("account.move", None, 1 + i % max(counts.get("account_move", 1), 1),
                f"scan_{i:05d}.pdf", "application/pdf")
    choice = i % 4
    if choice in (0, 1):
        return ("product.template", "image_1920", 1 + i % max(counts.get("product_product", 1), 1),
                "image_1920", "image/jpeg" if choice == 0 else "image/png")
    if choice == 2:
        return ("account.move", None, 1 + i % max(counts.get("account_move", 1), 1),
                f"INV_{i:05d}.pdf", "application/pdf")
    return ("res.partner", None, 1 + i % max(counts.get("res_partner", 1), 1), f"contract_{i:05d}.pdf",
            "application/pdf")


def populate(root: Path, scale: float, counts: dict[str, int], seed: int = 42) -> list[StoredFile]:
    """Write the files for ``scale`` under ``root`` (the tenant's filestore dir)."""
    rng = random.Random(seed)
    seen: set[str] = set()
    files = []
    for i, (kind, size) in enumerate(_sizes(scale, rng)):
        while True:
            content = _text(size, rng) if kind == "text" else os.urandom(size)
            sha = hashlib.sha1(content).hexdigest()
            if sha not in seen:  # one row per file: never two attachments on one blob
                break
            size += 1
        seen.add(sha)
        checksum, fname = write_file(root, content)
        res_model, res_field, res_id, name, mimetype = _owner(kind, i, counts)
        files.append(StoredFile(name, res_model, res_field, res_id, fname, checksum, len(content), mimetype))
    return files


def insert_attachments(conn, files: list[StoredFile]) -> None:
    with conn.transaction(), conn.cursor() as cur:
        with cur.copy("COPY ir_attachment (name, res_model, res_field, res_id, company_id, type, store_fname, "
                      "checksum, file_size, mimetype) FROM STDIN") as copy:
            for f in files:
                copy.write_row((f.name, f.res_model, f.res_field, f.res_id, 1, "binary", f.store_fname,
                                f.checksum, f.file_size, f.mimetype))


def usage(root: Path) -> dict[str, int]:
    """{files, bytes} under a filestore directory."""
    files = total = 0
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            files += 1
            total += os.path.getsize(os.path.join(dirpath, name))
    return {"files": files, "bytes": total}
