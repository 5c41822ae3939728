"""The encrypted object format: chunked zstd + AES-256-GCM (the STREAM construction).

Every object in a repository is one header followed by one or more chunks::

    header  = magic "ERPOBJ" | version u8 | flags u8 | chunk_size u32 | salt[32] | nonce_prefix[7]
    chunk   = length u32 | AES-256-GCM(key, nonce, plaintext, aad) (ciphertext + 16-byte tag)
    nonce   = nonce_prefix[7] | chunk index u32 | last-chunk flag u8 (1 on the final chunk, else 0)
    key     = HKDF-SHA256(master key, salt, info = "erpops-object-v1\\0" + object name)
    aad     = header | object name
    plaintext = codec u8 (0 raw, 1 zstd frame) | payload

The data is cut into ``chunk_size`` pieces *before* compression, and each piece
is compressed on its own (per-chunk, not per-stream): a chunk decrypts and
decompresses alone, memory stays bounded by the chunk size, and each chunk may
choose "raw" when its data does not compress (a cheap probe on a sample decides,
so random or already-compressed data costs no zstd time). Every chunk but the
last must hold exactly ``chunk_size`` bytes of data, so chunk boundaries are
canonical. An empty object is one final chunk with no data.

What this detects, each as ``VerificationFailed`` naming the object: a changed
byte anywhere (GCM tag), chunks reordered or dropped (the index is in the
nonce), truncation at a chunk boundary (the new last chunk was not sealed as
last) or bytes appended after the last chunk, a chunk spliced from another
object (different key and AAD), and an object stored under another name
(the name is in the key derivation and the AAD).

Streaming decryption hands out each chunk's data as soon as that chunk is
authenticated; a consumer must treat an error at any point, including at the
end, as "this object is not intact".
"""

from __future__ import annotations

import hmac
import io
import os
import struct
import threading

from erpops.errors import VerificationFailed

MAGIC = b"ERPOBJ"
FORMAT_VERSION = 1
FLAG_PER_CHUNK_ZSTD = 0x01  # chunks may carry codec 1 (zstd); set by every writer of version 1
HEADER = struct.Struct(">6sBBI32s7s")
HEADER_SIZE = HEADER.size  # 51
LENGTH = struct.Struct(">I")
TAG_SIZE = 16
DEFAULT_CHUNK_SIZE = 1 << 20
MIN_CHUNK_SIZE = 1 << 12
MAX_CHUNK_SIZE = 1 << 26
CODEC_RAW = 0
CODEC_ZSTD = 1

# The incompressibility probe: compress a sample at the fastest level; if it
# shrinks by less than this ratio, store the chunk raw.
PROBE_SAMPLE = 16 * 1024
PROBE_RATIO = 0.95


def object_key(master_key: bytes, salt: bytes, name: str) -> bytes:
    """HKDF-SHA256 (RFC 5869) with a 32-byte output: one extract and one expand
    block, written with hmac because the cryptography HKDF object costs more
    than the hashing itself when every small filestore file is an object."""
    info = b"erpops-object-v1\0" + name.encode("utf-8")
    prk = hmac.digest(salt, master_key, "sha256")  # hmac.digest: OpenSSL's one-shot, no HMAC object
    return hmac.digest(prk, info + b"\x01", "sha256")


def _nonce(prefix: bytes, index: int, last: bool) -> bytes:
    if index >= 1 << 32:
        raise OverflowError("object has more than 2^32 chunks")
    return prefix + struct.pack(">IB", index, 1 if last else 0)


class _Outbox:
    """Bytes waiting to be read, consumed from the front without quadratic copying."""

    def __init__(self, initial: bytes = b""):
        self._data = initial
        self._pos = 0

    def __len__(self) -> int:
        return len(self._data) - self._pos

    def add(self, *pieces: bytes) -> None:
        self._data = b"".join((self._data[self._pos:], *pieces))
        self._pos = 0

    def take(self, size: int) -> bytes:
        out = self._data[self._pos:self._pos + size]
        self._pos += len(out)
        return out

    def take_all(self) -> bytes:
        return self.take(len(self))


class _ChunkCodec:
    """Compress one chunk, or decide that it is not worth it."""

    def __init__(self, level: int):
        import zstandard

        self.level = level
        self._probe = zstandard.ZstdCompressor(level=1)
        self._compressor = zstandard.ZstdCompressor(level=level) if level > 0 else None

    def encode(self, data: bytes) -> bytes:
        if self._compressor is None or not data:
            return bytes([CODEC_RAW]) + data
        sample = data[:PROBE_SAMPLE]
        if len(self._probe.compress(sample)) >= len(sample) * PROBE_RATIO:
            return bytes([CODEC_RAW]) + data
        packed = self._compressor.compress(data)
        if len(packed) >= len(data):
            return bytes([CODEC_RAW]) + data
        return bytes([CODEC_ZSTD]) + packed


_codecs = threading.local()


def _codec(level: int) -> _ChunkCodec:
    """This thread's codec for ``level``: zstd contexts are costly to make and not thread-safe."""
    cache = getattr(_codecs, "by_level", None)
    if cache is None:
        cache = _codecs.by_level = {}
    codec = cache.get(level)
    if codec is None:
        codec = cache[level] = _ChunkCodec(level)
    return codec


def _decompressor():
    """This thread's zstd decompressor (one per chunk costs more than a small chunk's work)."""
    decompressor = getattr(_codecs, "decompressor", None)
    if decompressor is None:
        import zstandard

        decompressor = _codecs.decompressor = zstandard.ZstdDecompressor()
    return decompressor


class _ChunkStream(io.RawIOBase):
    """A readable stream produced chunk by chunk: ``_next_chunk`` adds the next
    piece to ``self._out`` and sets ``self._done`` after the last one."""

    _out: _Outbox
    _done: bool

    def _next_chunk(self) -> None:
        raise NotImplementedError

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            pieces = [self._out.take_all()]
            while not self._done:
                self._next_chunk()
                pieces.append(self._out.take_all())
            return b"".join(pieces)
        while len(self._out) < size and not self._done:
            self._next_chunk()
        return self._out.take(size)

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class _Sealer:
    """Seals the chunks of one new object: its header, key, nonces and AAD."""

    def __init__(self, master_key: bytes, name: str, chunk_size: int, level: int):
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
            raise ValueError(f"chunk size must be between {MIN_CHUNK_SIZE} and {MAX_CHUNK_SIZE} bytes")
        self.chunk_size = chunk_size
        self._codec = _codec(level)
        randomness = os.urandom(39)
        salt, self._prefix = randomness[:32], randomness[32:]
        self.header = HEADER.pack(MAGIC, FORMAT_VERSION, FLAG_PER_CHUNK_ZSTD, chunk_size, salt, self._prefix)
        self._aad = self.header + name.encode("utf-8")
        self._aead = AESGCM(object_key(master_key, salt, name))
        self._index = 0

    def seal(self, data: bytes, last: bool) -> tuple[bytes, bytes]:
        """The next chunk: its length field and its sealed bytes."""
        sealed = self._aead.encrypt(_nonce(self._prefix, self._index, last), self._codec.encode(data), self._aad)
        self._index += 1
        return LENGTH.pack(len(sealed)), sealed


def seal_bytes(data: bytes, master_key: bytes, name: str, *, chunk_size: int = DEFAULT_CHUNK_SIZE,
               level: int = 3) -> bytes:
    """The whole encrypted object of ``data``, for content already in memory (a
    small filestore file): the same bytes EncryptingReader would stream."""
    sealer = _Sealer(master_key, name, chunk_size, level)
    pieces = [sealer.header]
    view = memoryview(data)
    starts = range(0, len(data), chunk_size) if data else [0]
    for start in starts:
        pieces.extend(sealer.seal(view[start:start + chunk_size], start + chunk_size >= len(data)))
    return b"".join(pieces)


class EncryptingReader(_ChunkStream):
    """A readable stream of the encrypted object made from ``source`` (anything
    with ``read(n)``). Reads the source one chunk ahead, so that the final chunk
    is known when it is sealed; holds at most two chunks in memory."""

    def __init__(self, source, master_key: bytes, name: str, *,
                 chunk_size: int = DEFAULT_CHUNK_SIZE, level: int = 3):
        self._source = source
        self._chunk_size = chunk_size
        self._sealer = _Sealer(master_key, name, chunk_size, level)
        self._out = _Outbox(self._sealer.header)
        self._next = self._read_full()
        self._done = False
        self.plain_bytes = 0  # bytes read from the source, for reports

    def _read_full(self) -> bytes:
        """Exactly chunk_size bytes unless the source ends first."""
        parts, missing = [], self._chunk_size
        while missing:
            piece = self._source.read(missing)
            if not piece:
                break
            parts.append(piece)
            missing -= len(piece)
        return b"".join(parts)

    def _next_chunk(self) -> None:
        data = self._next
        last = len(data) < self._chunk_size
        if not last:
            self._next = self._read_full()
            last = not self._next  # the source ended exactly on a chunk boundary
        self.plain_bytes += len(data)
        self._out.add(*self._sealer.seal(data, last))
        self._done = last


class DecryptingReader(_ChunkStream):
    """A readable stream of the plaintext of the encrypted object ``source``.
    Raises VerificationFailed (naming the object and the chunk) on any damage."""

    def __init__(self, source, master_key: bytes, name: str):
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._source = source
        self._name = name
        header = self._read_exact(HEADER_SIZE)
        if len(header) < HEADER_SIZE or header[:6] != MAGIC:
            raise self._failure("it is not an erpops object (bad or missing header)")
        _, version, flags, chunk_size, salt, prefix = HEADER.unpack(header)
        if version != FORMAT_VERSION:
            raise self._failure(f"object format version {version} is not supported (this erpops reads {FORMAT_VERSION})",
                                hint="upgrade erpops to read this repository")
        if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE or flags & ~FLAG_PER_CHUNK_ZSTD:
            raise self._failure("its header is damaged")
        self._chunk_size = chunk_size
        self._max_sealed = 1 + chunk_size + TAG_SIZE  # zstd is kept only when smaller than raw
        self._prefix = prefix
        self._aad = header + name.encode("utf-8")
        self._aead = AESGCM(object_key(master_key, salt, name))
        self._index = 0
        self._out = _Outbox()
        self._done = False
        self._next_length = self._read_length()
        if self._next_length is None:
            raise self._failure("it is truncated (no chunk after the header)")

    def _failure(self, what: str, hint: str | None = None) -> VerificationFailed:
        return VerificationFailed(f"object {self._name!r} failed verification: {what}",
                                  hint=hint or "the stored object is damaged or was replaced; restore from another backup or repository copy")

    def _read_exact(self, n: int) -> bytes:
        parts, missing = [], n
        while missing:
            piece = self._source.read(missing)
            if not piece:
                break
            parts.append(piece)
            missing -= len(piece)
        return b"".join(parts)

    def _read_length(self) -> int | None:
        raw = self._read_exact(LENGTH.size)
        if not raw:
            return None
        if len(raw) < LENGTH.size:
            raise self._failure(f"it is truncated inside chunk {self._index}")
        return LENGTH.unpack(raw)[0]

    def _next_chunk(self) -> None:
        import zstandard
        from cryptography.exceptions import InvalidTag

        length = self._next_length
        if length < 1 + TAG_SIZE or length > self._max_sealed:
            raise self._failure(f"chunk {self._index} has an impossible length ({length} bytes)")
        sealed = self._read_exact(length)
        if len(sealed) < length:
            raise self._failure(f"it is truncated inside chunk {self._index}")
        self._next_length = self._read_length()
        last = self._next_length is None
        try:
            plain = self._aead.decrypt(_nonce(self._prefix, self._index, last), sealed, self._aad)
        except InvalidTag:
            why = ("it is truncated, or the chunk is not the last one" if last
                   else "a byte was changed, chunks were reordered or spliced, or it belongs to another name")
            raise self._failure(f"chunk {self._index} does not authenticate ({why})") from None
        codec, payload = plain[0], plain[1:]
        if codec == CODEC_ZSTD:
            try:
                data = _decompressor().decompress(payload, max_output_size=self._chunk_size)
            except zstandard.ZstdError as exc:
                raise self._failure(f"chunk {self._index} does not decompress: {exc}") from None
        elif codec == CODEC_RAW:
            data = payload
        else:
            raise self._failure(f"chunk {self._index} has unknown codec {codec}")
        if len(data) > self._chunk_size or (not last and len(data) != self._chunk_size):
            raise self._failure(f"chunk {self._index} holds {len(data)} bytes, not the chunk size")
        self._out.add(data)
        self._index += 1
        self._done = last

    def close(self) -> None:
        closer = getattr(self._source, "close", None)
        if closer:
            closer()
        super().close()
