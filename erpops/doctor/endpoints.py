"""Can this machine reach every endpoint an environment names?

Reachability only: a TCP connect, then the cheapest real conversation the
protocol allows (a PostgreSQL login and ``SELECT``, a Redis ``PING``, an HTTP
request). Nothing is changed anywhere.
"""

from __future__ import annotations

import os
import socket
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from erpops.doctor.checks import Check
from erpops.errors import ErpopsError

TIMEOUT = 3.0


def _tcp(host: str, port: int) -> str | None:
    """None when a TCP connection opens, else the reason it did not."""
    try:
        with socket.create_connection((host, port), timeout=TIMEOUT):
            return None
    except OSError as exc:
        return exc.strerror or str(exc)


def postgres_node_check(role: str, node, primary=None) -> Check:
    from erpops.pg.connect import NodeTarget, connect

    target = NodeTarget.from_node(node, defaults=primary)
    name = f"PostgreSQL {role} {target.name} {target.address}"
    reason = _tcp(target.host, target.port)
    if reason:
        return Check(name, False, f"cannot connect: {reason}",
                     "check that PostgreSQL runs and listens there (listen_addresses, firewall)")
    try:
        with connect(target, connect_timeout=int(TIMEOUT)) as conn:
            version, in_recovery = conn.execute(
                "SELECT current_setting('server_version'), pg_is_in_recovery()").fetchone()
    except ErpopsError as exc:
        return Check(name, False, exc.message, exc.hint or "check the user and password reference")
    except Exception as exc:  # psycopg errors: the server answered but refused us
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return Check(name, False, f"reachable, but login failed: {first}",
                     "check the user, the password reference and pg_hba.conf")
    actual = "replica" if in_recovery else "primary"
    warn = "" if actual == role else f" (inventory says {role})"
    return Check(name, actual == role, f"PostgreSQL {version}, {actual}{warn}",
                 "" if actual == role else "update the inventory after a failover")


def redis_check(redis) -> Check:
    url = urllib.parse.urlsplit(redis.url)
    host, port = url.hostname or "127.0.0.1", url.port or 6379
    name = f"Redis {host}:{port} ({redis.role})"
    try:
        with socket.create_connection((host, port), timeout=TIMEOUT) as sock:
            password = _reveal(getattr(redis, "password", None))
            if password:
                sock.sendall(_resp("AUTH", password))
                if not sock.recv(256).startswith(b"+OK"):
                    return Check(name, False, "AUTH refused", "check the password reference")
            sock.sendall(_resp("PING"))
            answer = sock.recv(256)
    except OSError as exc:
        return Check(name, False, f"cannot connect: {exc.strerror or exc}", "check that redis-server runs there")
    if answer.startswith(b"+PONG"):
        return Check(name, True, "PONG")
    return Check(name, False, f"unexpected answer {answer[:40]!r}", "check the URL and password")


def _resp(*parts: str) -> bytes:
    out = f"*{len(parts)}\r\n".encode()
    for part in parts:
        data = part.encode()
        out += f"${len(data)}\r\n".encode() + data + b"\r\n"
    return out


def _reveal(ref: str | None) -> str | None:
    if not ref:
        return None
    from erpops.secrets import resolve

    return resolve(ref).reveal()


def http_check(name: str, url: str) -> Check:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="GET"), timeout=TIMEOUT) as resp:
            return Check(name, True, f"HTTP {resp.status} from {url}")
    except urllib.error.HTTPError as exc:  # it answered: reachable
        return Check(name, True, f"HTTP {exc.code} from {url}")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return Check(name, False, f"cannot reach {url}: {reason}", "check the URL, DNS and firewall")


def ssh_via_check(via: str) -> Check | None:
    parts = urllib.parse.urlsplit(via)
    if parts.scheme != "ssh" or not parts.hostname:
        return None
    port = parts.port or 22
    reason = _tcp(parts.hostname, port)
    name = f"SSH {parts.hostname}:{port}"
    if reason:
        return Check(name, False, f"cannot connect: {reason}", "check that sshd runs there and the port is open")
    return Check(name, True, "port open")


def path_check(name: str, path: str) -> Check:
    p = Path(os.path.expanduser(path))
    if p.is_dir() and os.access(p, os.R_OK | os.X_OK):
        return Check(name, True, f"{p} readable")
    if p.exists():
        return Check(name, False, f"{p} is not a readable directory", "fix its permissions")
    return Check(name, False, f"{p} does not exist", "check the path in the inventory")


def endpoint_checks(env, inventory=None) -> list[Check]:
    checks: list[Check] = []
    pg = getattr(env, "postgres", None)
    if pg is not None:
        checks.append(postgres_node_check("primary", pg.primary))
        for replica in pg.replicas or []:
            checks.append(postgres_node_check("replica", replica, pg.primary))
        for node in [pg.primary, *(pg.replicas or [])]:
            via = getattr(node, "via", None)
            if via and (check := ssh_via_check(via)):
                checks.append(check)
    if getattr(env, "redis", None) is not None:
        checks.append(redis_check(env.redis))
    filestore = getattr(env, "filestore", None)
    if filestore is not None and str(getattr(filestore, "via", None) or "local://").startswith("local://"):
        checks.append(path_check("filestore", filestore.path))
    for attr, label in (("odoo", "Odoo"), ("traefik", "Traefik API")):
        section = getattr(env, attr, None)
        url = getattr(section, "url", None) or getattr(section, "api_url", None)
        if url:
            checks.append(http_check(label, url))
    repo_name = getattr(env, "repository", None)
    repos = getattr(inventory, "repositories", None) or {}
    if repo_name and repo_name in repos:
        repo = repos[repo_name]
        endpoint = getattr(repo, "endpoint", None)
        if endpoint:
            checks.append(http_check(f"repository {repo_name}", endpoint))
        elif not str(repo.url).startswith("s3://"):
            local = str(repo.url).removeprefix("file://")
            checks.append(path_check(f"repository {repo_name}", local if Path(local).exists() else str(Path(local).parent)))
    return checks
