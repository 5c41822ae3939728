"""The benchmark's table: docs/performance.md between the bench markers."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

TARGETS = {"vs_odoo": 0.33, "vs_raw": 1.15, "second_vs_first": 0.10, "rss_mb": 256, "restore_vs_odoo": 0.5}


def _mb(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB"


def render(r: dict) -> str:
    full, odoo, raw, second = r["erpops_full"], r["odoo_zip"], r["raw"], r["erpops_second"]
    s = r["sizes"]

    def verdict(ok: bool) -> str:
        return "met" if ok else "**missed**"

    vs_odoo, vs_raw = full["wall_s"] / odoo["wall_s"], full["wall_s"] / raw["wall_s"]
    ratio2 = second["wall_s"] / full["wall_s"]
    up1, up2 = (_uploaded(full), _uploaded(second))
    ratio2_bytes = up2 / max(up1, 1)
    rss = [full["rss_bytes"], second["rss_bytes"]] + ([r["erpops_small"]["rss_bytes"]] if "erpops_small" in r else [])
    rss_ok = max(rss) <= TARGETS["rss_mb"] * 2**20
    lines = [
        f"Data set: lab scale {r['scale']:g} — database {s['db_bytes'] / 1e9:.2f} GB, filestore "
        f"{s['filestore_bytes'] / 1e9:.2f} GB in {s['files']:,} files (about 90 % incompressible). "
        f"Run {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} cores.",
        "",
        "| what | wall | output | ratio | target | |",
        "|---|---:|---:|---:|---|---|",
        f"| erpops full backup | {full['wall_s']:.1f} s | {_mb(full['out_bytes'])} | — | — | |",
        f"| Odoo zip (copy, `pg_dump --no-owner`, deflate) | {odoo['wall_s']:.1f} s | {_mb(odoo['out_bytes'])} "
        f"| erpops {vs_odoo:.2f}x | <= {TARGETS['vs_odoo']}x | {verdict(vs_odoo <= TARGETS['vs_odoo'])} |",
        f"| raw tools (`pg_dump -Fc -Z0 \\| zstd -1 -T2`, `tar \\| zstd -1 -T2`) | {raw['wall_s']:.1f} s "
        f"(db {raw['db_s']:.1f} + files {raw['files_s']:.1f}) | {_mb(raw['out_bytes'])} | erpops {vs_raw:.2f}x "
        f"| <= {TARGETS['vs_raw']}x | {verdict(vs_raw <= TARGETS['vs_raw'])} |",
        f"| erpops second backup (+{r['added']['files']} files, {r['added']['bytes'] / 1e6:.0f} MB = 1 % of the files) "
        f"| {second['wall_s']:.1f} s | {_mb(up2)} uploaded "
        f"| {ratio2:.2f}x the first | <= {TARGETS['second_vs_first']}x | {verdict(ratio2 <= TARGETS['second_vs_first'])} |",
        f"| the same, in bytes written to the repository | — | {_mb(up2)} of the first's {_mb(up1)} "
        f"| {ratio2_bytes:.3f}x the first | <= {TARGETS['second_vs_first']}x "
        f"| {verdict(ratio2_bytes <= TARGETS['second_vs_first'])} |",
        f"| erpops peak RSS (process; largest process of its tree) | full {_mb(full['rss_bytes'])}; second "
        f"{_mb(second['rss_bytes'])} | tree {_mb(max(full['tree_rss_bytes'], second['tree_rss_bytes']))} | — "
        f"| <= {TARGETS['rss_mb']} MiB | {verdict(rss_ok)} |",
    ]
    if "erpops_small" in r:
        sm, ss = r["erpops_small"], r["small_sizes"]
        lines.append(f"| erpops full backup at scale {ss['db_bytes'] / 1e9:.2f} GB db + {ss['filestore_bytes'] / 1e9:.2f} GB "
                     f"files (flatness) | {sm['wall_s']:.1f} s | RSS {_mb(sm['rss_bytes'])} | "
                     f"{full['rss_bytes'] / max(sm['rss_bytes'], 1):.2f}x RSS at full size | flat | "
                     f"{verdict(full['rss_bytes'] <= 1.25 * sm['rss_bytes'])} |")
    lines += _restore_rows(r, verdict)
    return "\n".join(lines) + "\n"


def _uploaded(run: dict) -> int:
    return sum(b.get("uploaded_bytes", 0) for b in (run.get("summary") or {}).get("backups", []))


def _restore_rows(r: dict, verdict) -> list[str]:
    if "restore_erpops" not in r:
        return []
    mine, odoo, raw = r["restore_erpops"], r["restore_odoo"], r["restore_raw"]
    ratio = mine["wall_s"] / odoo["wall_s"]
    rss = max(mine["rss_bytes"], r.get("restore_small", mine)["rss_bytes"])
    rows = [
        f"| erpops restore (`--as`, `--jobs 2`, DB + filestore in parallel) | {mine['wall_s']:.1f} s | — "
        f"| {ratio:.2f}x Odoo-style | <= {TARGETS['restore_vs_odoo']}x | {verdict(ratio <= TARGETS['restore_vs_odoo'])} |",
        f"| Odoo-style restore (extract zip, `psql -f dump.sql`, move filestore) | {odoo['wall_s']:.1f} s | — | — | — | |",
        f"| raw restore (`zstd -d`, `pg_restore -j2`, `zstd -dc \\| tar -x`) | {raw['wall_s']:.1f} s "
        f"(db {raw['db_s']:.1f} + files {raw['files_s']:.1f}) | — | erpops {mine['wall_s'] / raw['wall_s']:.2f}x | — | |",
        f"| erpops restore peak RSS (process; largest process of its tree) | {_mb(mine['rss_bytes'])} "
        f"| tree {_mb(mine['tree_rss_bytes'])} | — | <= {TARGETS['rss_mb']} MiB | {verdict(rss <= TARGETS['rss_mb'] * 2**20)} |",
    ]
    if "restore_small" in r:
        rows.append(f"| erpops restore at the small scale (flatness) | {r['restore_small']['wall_s']:.1f} s "
                    f"| RSS {_mb(r['restore_small']['rss_bytes'])} | — | flat | |")
    return rows


BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def write_doc(path: Path, table: str) -> None:
    text = path.read_text() if path.exists() else ""
    block = f"{BEGIN}\n{table}{END}"
    if BEGIN in text and END in text:
        text = text[:text.index(BEGIN)] + block + text[text.index(END) + len(END):]
    else:
        text = text.rstrip() + ("\n\n" if text else "") + block + "\n"
    path.write_text(text)
