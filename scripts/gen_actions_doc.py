#!/usr/bin/env python3
"""Regenerate docs/actions.md from the action registry."""

from pathlib import Path

from erpops.actions.docs import actions_markdown

if __name__ == "__main__":
    target = Path(__file__).resolve().parents[1] / "docs" / "actions.md"
    target.write_text(actions_markdown())
    print(f"wrote {target}")
