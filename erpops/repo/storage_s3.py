"""A repository in an S3-compatible bucket under a key prefix.

boto3 is imported only when a client is made, so ``erpops --help`` stays fast.
Uploads stream: an object smaller than one part is a single PUT; anything
larger is a multipart upload reading one part at a time, with at most
``concurrency`` parts in flight, so memory is about part_size x (concurrency+1)
whatever the object size. A failed multipart upload is aborted, so no parts
are left behind to be billed.

``if_absent`` is a conditional write (``If-None-Match: *`` on PutObject and on
CompleteMultipartUpload): the server, not a racy exists-check, refuses to
replace. With ``retain_until`` every write carries ObjectLockMode and
ObjectLockRetainUntilDate; the bucket must have been created with Object Lock.
Retries use botocore's adaptive mode (client-side rate limiting on throttling).
"""

from __future__ import annotations

import contextlib
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO, Iterator

from erpops.errors import OperationFailed, UsageError
from erpops.repo.storage import ObjectExists, ObjectNotFound, ObjectStat, check_key
from erpops.repo.url import S3Url

MIN_PART_SIZE = 5 * 1024 * 1024  # the S3 minimum for every part but the last
MAX_PARTS = 10_000


@dataclass(frozen=True)
class S3Options:
    endpoint: str | None = None  # None: AWS itself
    region: str | None = None
    access_key: str | None = None  # secret references (env:, file:, ...); None: boto3's default chain
    secret_key: str | None = None
    path_style: bool = False
    part_size: int = 16 * 1024 * 1024
    concurrency: int = 4
    max_attempts: int = 10
    object_lock_mode: str = "GOVERNANCE"  # used only when a put asks for retention
    connect_timeout: float = 10
    read_timeout: float = 60


class S3Storage:
    def __init__(self, url: S3Url, options: S3Options = S3Options()):
        if options.part_size < MIN_PART_SIZE:
            raise UsageError(f"part size {options.part_size} is below the S3 minimum of 5 MiB")
        if not 1 <= options.concurrency <= 64:
            raise UsageError("multipart concurrency must be between 1 and 64")
        self.bucket = url.bucket
        self.prefix = f"{url.prefix}/" if url.prefix else ""
        self.options = options
        self.url = str(url)
        self.object_lock_mode = options.object_lock_mode  # the repository config sets it on open
        self._client = None

    @property
    def client(self):
        if self._client is None:
            import boto3
            from botocore.config import Config

            from erpops.secrets import resolve

            opts = self.options
            creds = {}
            if opts.access_key or opts.secret_key:
                if not (opts.access_key and opts.secret_key):
                    raise UsageError("give both the access key and the secret key references, or neither")
                creds = {"aws_access_key_id": resolve(opts.access_key).reveal(),
                         "aws_secret_access_key": resolve(opts.secret_key).reveal()}
            config = Config(
                retries={"mode": "adaptive", "max_attempts": opts.max_attempts},
                s3={"addressing_style": "path" if opts.path_style else "auto"},
                connect_timeout=opts.connect_timeout, read_timeout=opts.read_timeout,
                max_pool_connections=max(10, opts.concurrency + 2),
            )
            self._client = boto3.client("s3", endpoint_url=opts.endpoint, region_name=opts.region,
                                        config=config, **creds)
        return self._client

    def _key(self, key: str) -> str:
        return self.prefix + check_key(key)

    @contextlib.contextmanager
    def _errors(self, action: str, key: str | None = None):
        """Turn botocore's exceptions into errors that say what, where and what to do."""
        from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

        where = f"{self.url}/{key}" if key else self.url
        try:
            yield
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in ("PreconditionFailed", "412") or status == 412:
                raise ObjectExists(f"object {key!r} already exists in {self.url}") from None
            if code in ("NoSuchKey", "404", "NotFound") and key:
                raise ObjectNotFound(f"object {key!r} does not exist in {self.url}") from None
            if code == "NoSuchBucket":
                raise UsageError(f"bucket {self.bucket!r} does not exist at {self._endpoint_name()}",
                                 hint="create it first (with Object Lock enabled if the repository uses it)") from None
            if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403", "InvalidToken", "ExpiredToken"):
                raise OperationFailed(f"cannot {action} {where}: access refused by the storage ({code})",
                                      hint="check the credentials and that they may read and write this bucket and prefix") from None
            message = exc.response.get("Error", {}).get("Message", "")
            raise OperationFailed(f"cannot {action} {where}: {code} {message}".rstrip()) from None
        except NoCredentialsError:
            raise UsageError(f"cannot {action} {where}: no S3 credentials found",
                             hint="give --access-key/--secret-key references or set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY") from None
        except EndpointConnectionError:
            raise OperationFailed(f"cannot {action} {where}: the endpoint {self._endpoint_name()} does not answer",
                                  hint="check the endpoint URL and the network path to it") from None
        except BotoCoreError as exc:
            raise OperationFailed(f"cannot {action} {where}: {exc}") from None

    def _endpoint_name(self) -> str:
        return self.options.endpoint or "AWS S3"

    def object_lock_enabled(self) -> bool:
        """Whether the bucket was created with Object Lock (needed before asking for retention)."""
        from botocore.exceptions import ClientError

        try:
            conf = self.client.get_object_lock_configuration(Bucket=self.bucket)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ObjectLockConfigurationNotFoundError":
                return False
            with self._errors("read the Object Lock configuration of"):
                raise
        return conf.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") == "Enabled"

    def _write_args(self, retain_until: datetime | None) -> dict:
        args = {}
        if retain_until is not None:
            args["ObjectLockMode"] = self.object_lock_mode.upper()
            args["ObjectLockRetainUntilDate"] = retain_until
        return args

    def put_stream(self, key: str, reader: BinaryIO, *, if_absent: bool = False,
                   retain_until: datetime | None = None) -> int:
        full = self._key(key)
        first = _read_part(reader, self.options.part_size)
        lock = self._write_args(retain_until)
        cond = {"IfNoneMatch": "*"} if if_absent else {}
        if len(first) < self.options.part_size:
            with self._errors("write", key):
                self.client.put_object(Bucket=self.bucket, Key=full, Body=first, **lock, **cond)
            return len(first)
        with self._errors("start an upload of", key):
            upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=full, **lock)["UploadId"]
        try:
            parts, written = self._upload_parts(key, full, upload_id, first, reader)
            with self._errors("complete the upload of", key):
                self.client.complete_multipart_upload(Bucket=self.bucket, Key=full, UploadId=upload_id,
                                                      MultipartUpload={"Parts": parts}, **cond)
            return written
        except BaseException:
            with contextlib.suppress(Exception):
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=full, UploadId=upload_id)
            raise

    def _upload_parts(self, key: str, full: str, upload_id: str, first: bytes, reader) -> tuple[list, int]:
        """Read one part at a time and keep at most ``concurrency`` uploads in flight."""

        def send(number: int, body: bytes) -> dict:
            with self._errors(f"upload part {number} of", key):
                etag = self.client.upload_part(Bucket=self.bucket, Key=full, UploadId=upload_id,
                                               PartNumber=number, Body=body)["ETag"]
            return {"ETag": etag, "PartNumber": number}

        parts, in_flight, written, number, body = [], set(), 0, 1, first
        with ThreadPoolExecutor(max_workers=self.options.concurrency, thread_name_prefix="erpops-s3") as pool:
            try:
                while body:
                    if number > MAX_PARTS:
                        raise OperationFailed(f"object {key!r} needs more than {MAX_PARTS} parts",
                                              hint="raise the multipart part size")
                    while len(in_flight) >= self.options.concurrency:
                        done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                        parts.extend(f.result() for f in done)
                    in_flight.add(pool.submit(send, number, body))
                    written += len(body)
                    number += 1
                    body = None  # let the part go once it is sent
                    body = _read_part(reader, self.options.part_size)
                parts.extend(f.result() for f in wait(in_flight).done)
            except BaseException:
                for future in in_flight:
                    future.cancel()
                raise
        return sorted(parts, key=lambda p: p["PartNumber"]), written

    def get_stream(self, key: str) -> BinaryIO:
        with self._errors("read", key):
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
        return _GuardedBody(body, self, key)

    def get_range(self, key: str, offset: int, length: int) -> BinaryIO:
        if length <= 0:
            self.stat(key)  # ObjectNotFound still applies; an empty Range is not valid HTTP
            return _GuardedBody(_Empty(), self, key)
        with self._errors("read", key):
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(key),
                                          Range=f"bytes={offset}-{offset + length - 1}")["Body"]
        return _GuardedBody(body, self, key)

    def exists(self, key: str) -> bool:
        try:
            self.stat(key)
            return True
        except ObjectNotFound:
            return False

    def stat(self, key: str) -> ObjectStat:
        with self._errors("inspect", key):
            head = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        return ObjectStat(key, head["ContentLength"], head.get("LastModified"), head.get("ObjectLockRetainUntilDate"))

    def size(self, key: str) -> int:
        return self.stat(key).size

    def list(self, prefix: str = "") -> Iterator[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        with self._errors("list"):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
                for item in page.get("Contents", []):
                    yield item["Key"][len(self.prefix):]

    def delete(self, key: str) -> None:
        if not self.exists(key):
            raise ObjectNotFound(f"object {key!r} does not exist in {self.url}")
        with self._errors("delete", key):
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))


def _read_part(reader, size: int) -> bytes:
    parts, missing = [], size
    while missing:
        piece = reader.read(missing)
        if not piece:
            break
        parts.append(piece)
        missing -= len(piece)
    return b"".join(parts)


class _GuardedBody:
    """The response body, with network errors while reading turned into erpops errors."""

    def __init__(self, body, storage: S3Storage, key: str):
        self._body, self._storage, self._key = body, storage, key

    def read(self, size: int = -1) -> bytes:
        from botocore.exceptions import BotoCoreError

        try:
            return self._body.read(None if size is None or size < 0 else size)
        except (BotoCoreError, OSError) as exc:
            raise OperationFailed(f"reading {self._storage.url}/{self._key} failed: {exc}",
                                  hint="the connection broke; retry") from None

    def close(self) -> None:
        self._body.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Empty:
    def read(self, size: int | None = None) -> bytes:
        return b""

    def close(self) -> None:
        return None
