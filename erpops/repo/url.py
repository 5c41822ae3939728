"""Repository addresses: ``file:///path``, a plain path, or ``s3://bucket/prefix``."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from erpops.errors import UsageError

# S3 bucket naming rules (the DNS-compatible subset every S3 implementation accepts).
_BUCKET = re.compile(r"^(?=.{3,63}$)[a-z0-9][a-z0-9.-]*[a-z0-9]$")
_IP = re.compile(r"^\d+\.\d+\.\d+\.\d+$")
URL_HELP = "use file:///absolute/path, a directory path, or s3://bucket/prefix"


@dataclass(frozen=True)
class LocalUrl:
    path: Path

    def __str__(self) -> str:
        return f"file://{self.path}"


@dataclass(frozen=True)
class S3Url:
    bucket: str
    prefix: str  # "" or "a/b" (no leading or trailing slash)

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"


def parse_url(text: str) -> LocalUrl | S3Url:
    if not text or not text.strip():
        raise UsageError("empty repository address", hint=URL_HELP)
    text = text.strip()
    if "://" not in text:
        return LocalUrl(Path(os.path.expanduser(text)).resolve())
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise UsageError(f"repository address {text!r} names a remote host",
                             hint="file:// addresses are local: file:///absolute/path (three slashes)")
        if not parts.path.startswith("/"):
            raise UsageError(f"repository address {text!r} is not an absolute path", hint=URL_HELP)
        return LocalUrl(Path(unquote(parts.path)).resolve())
    if scheme == "s3":
        bucket = parts.netloc
        if not _BUCKET.match(bucket) or ".." in bucket or _IP.match(bucket):
            raise UsageError(f"{bucket!r} is not a valid S3 bucket name",
                             hint="bucket names are 3-63 characters: lowercase letters, digits, '.' and '-'")
        if parts.query or parts.fragment:
            raise UsageError(f"repository address {text!r} has a query or fragment",
                             hint="give the endpoint, region and credentials as options, not in the address")
        prefix = parts.path.strip("/")
        if any(p in ("", ".", "..") for p in prefix.split("/")) and prefix:
            raise UsageError(f"repository address {text!r} has an empty, '.' or '..' path segment", hint=URL_HELP)
        return S3Url(bucket, prefix)
    raise UsageError(f"unsupported repository address scheme {parts.scheme!r} in {text!r}", hint=URL_HELP)
