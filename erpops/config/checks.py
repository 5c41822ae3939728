"""Checks that span fields or sections of an inventory, each reported at its key.

They run on the raw document next to the pydantic validation, section by
section, so that a file with a type error in one place and a dangling
repository name in another gets both errors in one go. A section that does
not validate on its own is skipped here: pydantic already reported it.
"""

from __future__ import annotations

import re
from typing import Any, Callable

from pydantic import BaseModel, ValidationError

from erpops.config.model import FreezeWindow, Postgres, Repository
from erpops.errors import Diagnostic
from erpops.yamlsrc import YamlDocument, suggest

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # used in paths, backup ids, lock names
ODOO_DB = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # Odoo's own rule for database names
S3_MIN_PART = 5 * 1024**2


def cross_check(doc: YamlDocument) -> list[Diagnostic]:
    data = doc.data if isinstance(doc.data, dict) else {}
    out: list[Diagnostic] = []
    repos = data.get("repositories")
    envs = data.get("environments")
    if isinstance(repos, dict):
        for name, raw in repos.items():
            _check_name(doc, ("repositories", name), name, "repository", out)
            repo = _valid(Repository, raw)
            if repo is not None:
                _check_repository(doc, ("repositories", name), repo, out)
    if isinstance(envs, dict):
        for name, raw in envs.items():
            _check_name(doc, ("environments", name), name, "environment", out)
            if isinstance(raw, dict):
                _check_environment(doc, ("environments", name), raw, repos, out)
    return out


def _valid(model: type[BaseModel], raw: Any) -> Any:
    try:
        return model.model_validate(raw)
    except ValidationError:
        return None


def _check_name(doc: YamlDocument, loc: tuple, name: Any, what: str, out: list) -> None:
    if not isinstance(name, str):
        return  # pydantic reports a key that is not a string
    if not NAME.fullmatch(name):
        out.append(doc.diagnostic(loc, f"invalid {what} name {name!r}: use letters, digits, '_', '.', '-' "
                                       "(it appears in backup ids and paths)", key=True))


def _check_environment(doc: YamlDocument, loc: tuple, raw: dict, repos: Any, out: list) -> None:
    ref = raw.get("repository")
    if isinstance(ref, str):
        names = list(repos) if isinstance(repos, dict) else []
        if ref not in names:
            near = suggest(ref, names)
            if near:
                msg = f"no repository named {ref!r} — did you mean {near!r}?"
            elif names:
                msg = f"no repository named {ref!r}; defined: {', '.join(map(str, names))}"
            else:
                msg = f"no repository named {ref!r}: the file has no repositories: section"
            out.append(doc.diagnostic(loc + ("repository",), msg))

    tenants = raw.get("tenants")
    if isinstance(tenants, list):
        if not tenants:
            out.append(doc.diagnostic(loc + ("tenants",), "an empty tenants list acts on no database; "
                                                        "remove the key to discover the Odoo databases"))
        seen: set = set()
        for i, tenant in enumerate(tenants):
            if isinstance(tenant, str) and not (ODOO_DB.fullmatch(tenant) and len(tenant.encode()) <= 63):
                out.append(doc.diagnostic(loc + ("tenants", i), f"invalid database name {tenant!r}: at most 63 "
                                                               "letters, digits, '_', '.', '-'"))
            elif isinstance(tenant, str) and tenant in seen:
                out.append(doc.diagnostic(loc + ("tenants", i), f"tenant {tenant!r} is listed twice"))
            seen.add(tenant)

    postgres = _valid(Postgres, raw.get("postgres"))
    if postgres is not None:
        seen_nodes: dict[str, str] = {}
        nodes = [(("postgres", "primary"), postgres.primary, "the primary")]
        nodes += [(("postgres", "replicas", i), r, f"replicas[{i}]") for i, r in enumerate(postgres.replicas)]
        for where, node, described in nodes:
            if node.label in seen_nodes:
                out.append(doc.diagnostic(loc + where + (("name",) if node.name else ()),
                                          f"server name {node.label!r} is already used by {seen_nodes[node.label]}; "
                                          "give each server its own name:"))
            seen_nodes.setdefault(node.label, described)

    freeze = raw.get("freeze")
    if isinstance(freeze, list):
        for i, window_raw in enumerate(freeze):
            window = _valid(FreezeWindow, window_raw)
            if window is not None:
                _check_freeze(doc, loc + ("freeze", i), window, out.append)


def _check_freeze(doc: YamlDocument, loc: tuple, w: FreezeWindow, add: Callable[[Diagnostic], None]) -> None:
    fixed = w.start is not None or w.end is not None
    recurring = w.cron is not None or w.duration is not None
    if fixed and recurring:
        add(doc.diagnostic(loc, "a freeze window is either start+end or cron+duration, not both"))
    elif fixed:
        if w.start is None:
            add(doc.diagnostic(loc, "missing required key 'start' (a window with end: needs start:)"))
        elif w.end is None:
            add(doc.diagnostic(loc, "missing required key 'end' (a window with start: needs end:)"))
        elif w.end <= w.start:
            add(doc.diagnostic(loc + ("end",), f"end {w.end.isoformat()} is not after start {w.start.isoformat()}"))
    elif recurring:
        if w.cron is None:
            add(doc.diagnostic(loc, "missing required key 'cron' (a window with duration: needs cron:)"))
        elif w.duration is None:
            add(doc.diagnostic(loc, "missing required key 'duration' (a window with cron: needs duration:, e.g. 30h)"))
        elif float(w.duration) <= 0:
            add(doc.diagnostic(loc + ("duration",), "a freeze window's duration must be more than 0s"))
    else:
        add(doc.diagnostic(loc, "a freeze window needs start+end (a fixed period) or cron+duration (a recurring one)"))


def _check_repository(doc: YamlDocument, loc: tuple, repo: Repository, out: list) -> None:
    if repo.kind == "local":
        for key in ("object_lock", "endpoint", "region", "access_key_id", "secret_access_key"):
            if getattr(repo, key) is not None:
                out.append(doc.diagnostic(loc + (key,), f"{key} applies to S3 repositories only; "
                                                        f"this one is a local directory ({repo.url})", key=True))
    elif repo.part_size < S3_MIN_PART:
        out.append(doc.diagnostic(loc + ("part_size",), "S3 multipart parts must be at least 5MiB"))
    if (repo.access_key_id is None) != (repo.secret_access_key is None):
        missing = "secret_access_key" if repo.secret_access_key is None else "access_key_id"
        out.append(doc.diagnostic(loc, f"missing required key {missing!r} (access_key_id and "
                                       "secret_access_key go together)"))
