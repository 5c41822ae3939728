"""The sections of an inventory, as pydantic models (docs/inventory.md is their reference).

Every model forbids unknown keys so that a typo is an error with a
did-you-mean rather than a silently ignored setting. Checks that need more
than one field or more than one section (does ``repository:`` name a
repository? is a freeze window complete?) live in ``erpops.config.checks``
so that they can be reported together with type errors, each at its key.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from erpops.config.cron import parse_cron
from erpops.config.types import (AwareDatetime, DurationField, OdooVersion, SecretRef, SizeField, ViaURL,
                                 one_of, parse_via, url_with)
from erpops.errors import UsageError

Tier = one_of("production", "staging", "development")


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=False)


# --- PostgreSQL ------------------------------------------------------------------


class PgNode(Section):
    """One PostgreSQL server: how to connect (host/port/user/password) and where
    its files and programs are (via/data_dir/bin_dir) for actions that need them."""

    name: str | None = None  # default: "host:port"; used by failover --to NAME
    host: str
    port: int = Field(5432, ge=1, le=65535)
    user: str = "postgres"
    password: SecretRef | None = None
    dbname: str = "postgres"
    sslmode: one_of("disable", "allow", "prefer", "require", "verify-ca", "verify-full") | None = None
    via: ViaURL = "local://"
    data_dir: str | None = None
    bin_dir: str | None = None
    priority: int | None = Field(None, ge=0)  # replicas: lower is promoted first

    @property
    def label(self) -> str:
        return self.name or f"{self.host}:{self.port}"

    @property
    def transport(self):
        return parse_via(self.via)


class PgBackRest(Section):
    stanza: str
    config: str | None = None  # pgbackrest.conf path; default: written by erpops
    cipher_pass: SecretRef | None = None


class Postgres(Section):
    primary: PgNode
    replicas: list[PgNode] = []
    pgbackrest: PgBackRest | None = None

    def node(self, name: str) -> PgNode:
        """A server of this cluster by name (primary or replica)."""
        from erpops.yamlsrc import suggest

        nodes = {n.label: n for n in [self.primary, *self.replicas]}
        if name in nodes:
            return nodes[name]
        near = suggest(name, nodes)
        raise UsageError(f"no PostgreSQL server named {name!r}",
                         hint=f"did you mean {near!r}?" if near else f"known: {', '.join(nodes)}")


# --- the other services of an environment ---------------------------------------------


class Filestore(Section):
    path: str
    via: ViaURL = "local://"


class Redis(Section):
    url: url_with(("redis", "rediss", "unix"))
    role: one_of("cache", "sessions", "queue")
    password: SecretRef | None = None


class Odoo(Section):
    version: OdooVersion
    url: url_with(("http", "https")) | None = None
    via: ViaURL = "local://"
    config: str | None = None  # odoo.conf path, where the admin password and db settings live
    admin_password: SecretRef | None = None  # Odoo's master password (database manager)


class Traefik(Section):
    api_url: url_with(("http", "https")) | None = None
    dynamic_dir: str | None = None  # the file provider's directory erpops writes routes into
    via: ViaURL = "local://"


class FreezeWindow(Section):
    """A period when changes are refused: either fixed (start + end) or
    recurring (cron + duration, evaluated in ``timezone``)."""

    name: str
    start: AwareDatetime | None = None
    end: AwareDatetime | None = None
    cron: str | None = None
    duration: DurationField | None = None
    timezone: str | None = None  # IANA zone for cron; default UTC

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None:
            parse_cron(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            ZoneInfo(value)
        except (ValueError, KeyError, OSError):
            raise ValueError(f"unknown time zone {value!r}; use an IANA name like Europe/Paris or UTC") from None
        return value

    def active_span(self, now: datetime) -> tuple[datetime, datetime] | None:
        """(start, end) of the occurrence covering ``now`` (aware), or None."""
        if self.start is not None and self.end is not None:
            return (self.start, self.end) if self.start <= now < self.end else None
        if self.cron is None or self.duration is None:
            return None
        zone = ZoneInfo(self.timezone or "UTC")
        local = now.astimezone(zone).replace(tzinfo=None)
        span = timedelta(seconds=float(self.duration))
        # look back a little further than the duration: local wall-clock time
        # may have jumped (DST); the exact test on elapsed time is below.
        fire = parse_cron(self.cron).last_fire(local, span + timedelta(hours=3))
        if fire is None:
            return None
        start = fire.replace(tzinfo=zone)
        end = (start.astimezone(timezone.utc) + span).astimezone(zone)  # elapsed time, across DST changes too
        return (start, end) if start <= now < end else None


class Environment(Section):
    """One place erpops protects: a PostgreSQL cluster, the Odoo databases
    (tenants) in it and what surrounds them. ``name`` is its key in the file."""

    tier: Tier
    description: str | None = None
    rpo: DurationField | None = None  # most data you accept to lose
    rto: DurationField | None = None  # longest you accept to be down
    postgres: Postgres
    tenants: list[str] | None = None
    """Odoo databases to act on. None (the default) means: discover them, i.e. every
    database of the cluster that has an ``ir_module_module`` table."""
    filestore: Filestore | None = None
    redis: Redis | None = None
    odoo: Odoo | None = None
    traefik: Traefik | None = None
    repository: str | None = None  # key of an entry of repositories:
    freeze: list[FreezeWindow] = []

    _name: str = PrivateAttr("")
    _repository: "Repository | None" = PrivateAttr(None)
    _from_lab: bool = PrivateAttr(False)

    @property
    def name(self) -> str:
        return self._name

    @property
    def is_production(self) -> bool:
        return self.tier == "production"

    @property
    def from_lab(self) -> bool:
        """True for the environment registered by the running lab."""
        return self._from_lab

    @property
    def backup_repository(self) -> "Repository":
        """The repository named by ``repository:`` (checked to exist at load time)."""
        if self._repository is None:
            raise UsageError(f"environment {self.name!r} has no repository",
                             hint="add `repository: NAME` to it in the inventory, naming an entry of repositories:")
        return self._repository

    def active_freeze(self, now: datetime | None = None) -> tuple[FreezeWindow, datetime, datetime] | None:
        """The freeze window in force at ``now`` (default: the current time), with its span."""
        now = now or datetime.now(timezone.utc)
        for window in self.freeze:
            span = window.active_span(now)
            if span:
                return window, span[0], span[1]
        return None


# --- repositories and audit ----------------------------------------------------


class ObjectLock(Section):
    mode: one_of("governance", "compliance")
    days: int = Field(gt=0)


class Retention(Section):
    keep_last: int | None = Field(None, ge=0)
    keep_hourly: int | None = Field(None, ge=0)
    keep_daily: int | None = Field(None, ge=0)
    keep_weekly: int | None = Field(None, ge=0)
    keep_monthly: int | None = Field(None, ge=0)
    keep_yearly: int | None = Field(None, ge=0)
    keep_within: DurationField | None = None  # every backup within this span before the newest


class Repository(Section):
    """Where logical backups and the filestore are kept: an S3 bucket+prefix
    (``s3://bucket/prefix``) or a local directory (``file:///path`` or a path)."""

    url: str
    endpoint: url_with(("http", "https")) | None = None  # S3-compatible endpoint; default AWS
    region: str | None = None
    key: SecretRef  # encryption key (AES-256-GCM); never stored in the repository
    access_key_id: SecretRef | None = None  # default: the usual AWS credential chain
    secret_access_key: SecretRef | None = None
    object_lock: ObjectLock | None = None
    retention: Retention | None = None
    part_size: SizeField = 16 * 1024**2

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if "://" not in value:
            return value  # a plain path
        scheme, rest = value.split("://", 1)
        if scheme == "s3":
            bucket = rest.split("/", 1)[0]
            if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket):
                raise ValueError(f"invalid S3 bucket name {bucket!r}: 3-63 lowercase letters, digits, dots "
                                 "and hyphens, starting and ending with a letter or digit")
        elif scheme == "file":
            if not rest.startswith("/"):
                raise ValueError(f"a file:// URL needs an absolute path (file:///srv/backups), got {value!r}")
        else:
            raise ValueError(f"unsupported repository URL {scheme + '://'!r}; use s3://BUCKET/PREFIX, "
                             "file:///PATH or a plain directory path")
        return value

    @property
    def kind(self) -> Literal["s3", "local"]:
        return "s3" if self.url.startswith("s3://") else "local"

    @property
    def bucket(self) -> str | None:
        return self.url[5:].split("/", 1)[0] if self.kind == "s3" else None

    @property
    def prefix(self) -> str:
        if self.kind != "s3":
            return ""
        rest = self.url[5:].split("/", 1)
        return rest[1].strip("/") if len(rest) == 2 else ""

    @property
    def path(self) -> str | None:
        """The directory of a local repository (``~`` expanded)."""
        import os

        if self.kind == "s3":
            return None
        return os.path.expanduser(self.url[7:] if self.url.startswith("file://") else self.url)


class Audit(Section):
    signing_key: SecretRef | None = None  # the operator's Ed25519 private key
    trusted_keys: list[str] = []  # public keys accepted by `audit verify`; relative to the inventory file
