"""Open a psycopg connection to an inventory node.

A node is the inventory's ``postgres.primary`` or one of its ``replicas``: a
pydantic model or a plain dict with host, port, user, password (a secret
reference) and dbname. Replicas usually omit user/password/dbname and inherit
them from the primary, which is what ``NodeTarget.from_node(node, defaults=primary)``
does. The password is resolved only here, and only revealed to libpq.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from erpops.errors import OperationFailed
from erpops.secrets import Secret, resolve


def _get(obj: Any, key: str, default: Any = None) -> Any:
    if obj is None:
        return default
    if isinstance(obj, dict):
        value = obj.get(key, default)
    else:
        value = getattr(obj, key, default)
    return default if value is None else value


@dataclass(frozen=True)
class NodeTarget:
    """Everything needed to reach one PostgreSQL server."""

    name: str
    host: str
    port: int
    user: str
    password_ref: str | None
    dbname: str

    @classmethod
    def from_node(cls, node: Any, defaults: Any = None) -> "NodeTarget":
        return cls(
            name=str(_get(node, "name") or _get(node, "label") or _get(node, "host", "postgres")),
            host=str(_get(node, "host", _get(defaults, "host", "127.0.0.1"))),
            port=int(_get(node, "port", _get(defaults, "port", 5432))),
            user=str(_get(node, "user", _get(defaults, "user", "postgres"))),
            password_ref=_get(node, "password", _get(defaults, "password")),
            dbname=str(_get(node, "dbname", _get(defaults, "dbname", "postgres"))),
        )

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def password(self) -> Secret | None:
        return resolve(self.password_ref) if self.password_ref else None


def connect(target: NodeTarget, *, dbname: str | None = None, autocommit: bool = True,
            connect_timeout: int = 5, application_name: str = "erpops", password: Secret | None = None):
    """A psycopg 3 connection; errors become OperationFailed naming the node, never the password."""
    import psycopg

    secret = password if password is not None else target.password()
    db = dbname or target.dbname
    try:
        return psycopg.connect(
            host=target.host, port=target.port, user=target.user, dbname=db,
            password=secret.reveal() if secret else None,
            connect_timeout=connect_timeout, application_name=application_name,
            autocommit=autocommit,
        )
    except psycopg.OperationalError as exc:
        raise OperationFailed(
            f"cannot connect to PostgreSQL {target.name} ({target.address}, database {db}): "
            f"{_first_line(exc)}",
            where=target.name,
            hint="check that the server is running and the inventory's host, port, user and password",
        ) from None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
