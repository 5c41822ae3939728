"""The human view of `erpops repo prune`: the keep/remove table and what was cleaned."""

from __future__ import annotations


def show_prune(doc: dict) -> None:
    from rich.table import Table

    from erpops.ui.output import stdout
    from erpops.units import format_size

    out = stdout()
    verb = "would remove" if doc["dry_run"] else "removed"
    out.print(f"repository {doc['repository']}  retention: {doc['policy']}", markup=False)
    if doc["backups"]:
        table = Table(box=None, pad_edge=False, show_edge=False)
        for column in ("backup", "taken", "verified", "action", "kept by", "status"):
            table.add_column(column, no_wrap=column not in ("kept by", "status"))
        for row in doc["backups"]:
            taken = row["time"].strftime("%Y-%m-%d %H:%M:%SZ") if row["time"] else "-"
            table.add_row(row["backup_id"], taken, "yes" if row["verified"] else "no", row["action"],
                          ", ".join(row["reasons"]) or "-", row["status"] or "")
        out.print(table)
    else:
        out.print("no backups", markup=False)
    for d in doc["debris"]:
        out.print(f"debris {d['backup_id']} ({d['objects']} objects, {format_size(d['bytes'])}): {d['status']}",
                  markup=False)
    blobs = doc["blobs"]
    if blobs["skipped_reason"]:
        out.print(f"blobs: not pruned: {blobs['skipped_reason']}", markup=False)
    else:
        out.print(f"blobs: {blobs['total']} stored, {blobs['unreferenced']} unreferenced; {verb} {blobs['removed']} "
                  f"({format_size(blobs['removed_bytes'])}), {blobs['young']} younger than the grace period kept, "
                  f"{blobs['locked']} under Object Lock", markup=False)
    for item in doc["cannot_delete"]:
        out.print(f"cannot delete {item['key']} until {item['until']:%Y-%m-%dT%H:%M:%SZ} (Object Lock)", markup=False)
    for error in doc["errors"]:
        out.print(f"failed: {error}", markup=False)
