"""Human views of the repo catalog commands: plain aligned tables, never truncated.

Tables are plain text (two spaces between columns, no box drawing) so that a
backup id is never cut by the terminal width and the output stays greppable
from cron mail and scripts.
"""

from __future__ import annotations


def text_table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
    lines = ["  ".join(str(cell).ljust(w) for cell, w in zip(line, widths)).rstrip() for line in [headers, *rows]]
    return "\n".join(lines)


def show_prune(doc: dict) -> None:
    from erpops.ui.output import stdout
    from erpops.units import format_size

    out = stdout()
    verb = "would remove" if doc["dry_run"] else "removed"
    out.print(f"repository {doc['repository']}  retention: {doc['policy']}", markup=False)
    if doc["backups"]:
        rows = [[row["backup_id"], row["time"].strftime("%Y-%m-%d %H:%M:%SZ") if row["time"] else "-",
                 "yes" if row["verified"] else "no", row["action"], ", ".join(row["reasons"]) or "-",
                 row["status"] or ""] for row in doc["backups"]]
        out.print(text_table(["backup", "taken", "verified", "action", "kept by", "status"], rows), markup=False)
    else:
        out.print("no backups", markup=False)
    for d in doc["debris"]:
        out.print(f"debris {d['backup_id']} ({d['objects']} objects, {format_size(d['bytes'])}): {d['status']}",
                  markup=False)
    if doc["temporaries"]["removed"]:
        temp = doc["temporaries"]
        out.print(f"temporary files left by interrupted writes: {verb} {temp['removed']} "
                  f"({format_size(temp['removed_bytes'])})", markup=False)
    packs = doc["packs"]
    if packs["skipped_reason"]:
        out.print(f"packs: not pruned: {packs['skipped_reason']}", markup=False)
    else:
        out.print(f"packs: {packs['total']} stored, {packs['unreferenced']} unreferenced, {packs['unindexed']} without "
                  f"an index; {verb} {packs['removed']} ({format_size(packs['removed_bytes'])}), {packs['young']} "
                  f"younger than the grace period kept, {packs['locked']} under Object Lock; "
                  f"{format_size(packs['unused_bytes'])} of unreferenced blobs stay in packs still in use",
                  markup=False)
    for item in doc["cannot_delete"]:
        out.print(f"cannot delete {item['key']} until {item['until']:%Y-%m-%dT%H:%M:%SZ} (Object Lock)", markup=False)
    for error in doc["errors"]:
        out.print(f"failed: {error}", markup=False)
