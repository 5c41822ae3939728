"""The encrypted object format: round trips, and every kind of damage detected.

Objects are built with small chunks (4 KiB) so that multi-chunk cases stay fast.
"""

from __future__ import annotations

import io
import os
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from erpops.errors import ExitCode, VerificationFailed
from erpops.repo.objectformat import (CODEC_RAW, CODEC_ZSTD, HEADER_SIZE, TAG_SIZE, DecryptingReader,
                                      EncryptingReader, _ChunkCodec)

CHUNK = 4096
KEY = bytes(range(32))
NAME = "objects/backups/store_nord/dump"


def seal(data: bytes, name: str = NAME, key: bytes = KEY, chunk: int = CHUNK, level: int = 3) -> bytes:
    return EncryptingReader(io.BytesIO(data), key, name, chunk_size=chunk, level=level).read()


def unseal(blob: bytes, name: str = NAME, key: bytes = KEY, read_size: int = -1) -> bytes:
    reader = DecryptingReader(io.BytesIO(blob), key, name)
    if read_size < 0:
        return reader.read()
    out = []
    while piece := reader.read(read_size):
        out.append(piece)
    return b"".join(out)


def split(blob: bytes) -> tuple[bytes, list[bytes]]:
    """Header and the framed chunks (each with its 4-byte length)."""
    header, rest, chunks = blob[:HEADER_SIZE], blob[HEADER_SIZE:], []
    while rest:
        (n,) = struct.unpack(">I", rest[:4])
        chunks.append(rest[: 4 + n])
        rest = rest[4 + n:]
    return header, chunks


def mixed(n: int) -> bytes:
    """Half random, half compressible, so both codecs appear."""
    half = n // 2
    return os.urandom(half) + (b"retail pos line 42;" * (n // 19 + 1))[: n - half]


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * CHUNK + 17, 40_000])
def test_round_trip_at_and_around_chunk_boundaries(size):
    data = mixed(size)
    blob = seal(data)
    assert unseal(blob) == data
    assert unseal(blob, read_size=1000) == data
    header, chunks = split(blob)
    # at least one chunk, and exactly one more when the data ends on a boundary is not needed
    assert len(chunks) == max(1, -(-size // CHUNK))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=5 * CHUNK), read_size=st.integers(min_value=1, max_value=3 * CHUNK),
       level=st.integers(min_value=0, max_value=5))
def test_round_trip_any_data_any_read_size(data, read_size, level):
    assert unseal(seal(data, level=level), read_size=read_size) == data


def test_compressible_data_is_compressed_and_random_data_is_stored_raw():
    text = b"SELECT * FROM pos_order WHERE state = 'paid';\n" * 2000
    assert len(seal(text, chunk=1 << 16)) < len(text) // 10
    noise = os.urandom(10 * CHUNK)
    blob = seal(noise)
    # raw chunks: only framing overhead, no zstd expansion
    assert len(blob) == HEADER_SIZE + 10 * (4 + 1 + CHUNK + TAG_SIZE)


def test_incompressibility_probe_skips_zstd_for_random_data():
    codec = _ChunkCodec(level=19)
    assert codec.encode(os.urandom(CHUNK))[0] == CODEC_RAW
    assert codec.encode(b"a" * CHUNK)[0] == CODEC_ZSTD
    assert _ChunkCodec(level=0).encode(b"a" * CHUNK)[0] == CODEC_RAW


def test_same_data_encrypts_differently_each_time():
    data = b"x" * 100
    assert seal(data) != seal(data)


def assert_detected(blob: bytes, name: str = NAME, key: bytes = KEY) -> VerificationFailed:
    with pytest.raises(VerificationFailed) as caught:
        unseal(blob, name=name, key=key, read_size=777)
    assert repr(name) in caught.value.message
    assert caught.value.exit_code == ExitCode.VERIFY
    return caught.value


@pytest.fixture(scope="module")
def three_chunks() -> tuple[bytes, bytes]:
    data = mixed(3 * CHUNK - 100)
    return data, seal(data)


@pytest.mark.parametrize("where", ["magic", "version", "chunk_size", "salt", "nonce_prefix",
                                   "first_length", "chunk0", "chunk1", "last_chunk", "last_tag"])
def test_a_flipped_byte_anywhere_is_detected(three_chunks, where):
    _, blob = three_chunks
    header, chunks = split(blob)
    c0 = HEADER_SIZE
    c1 = c0 + len(chunks[0])
    c2 = c1 + len(chunks[1])
    offset = {"magic": 0, "version": 6, "chunk_size": 9, "salt": 20, "nonce_prefix": 48,
              "first_length": c0 + 3, "chunk0": c0 + 10, "chunk1": c1 + 100,
              "last_chunk": c2 + 5, "last_tag": len(blob) - 1}[where]
    damaged = bytearray(blob)
    damaged[offset] ^= 0x01
    assert_detected(bytes(damaged))


def test_truncation_at_a_chunk_boundary_is_detected(three_chunks):
    _, blob = three_chunks
    header, chunks = split(blob)
    error = assert_detected(header + chunks[0] + chunks[1])
    assert "chunk 1" in error.message


@pytest.mark.parametrize("cut", [0, 3, HEADER_SIZE, HEADER_SIZE + 2, HEADER_SIZE + 100, -1, -TAG_SIZE])
def test_truncation_anywhere_is_detected(three_chunks, cut):
    _, blob = three_chunks
    assert_detected(blob[:cut])


def test_an_empty_object_cut_to_its_header_is_detected():
    header, chunks = split(seal(b""))
    assert len(chunks) == 1
    assert_detected(header)


def test_data_appended_after_the_last_chunk_is_detected(three_chunks):
    _, blob = three_chunks
    header, chunks = split(blob)
    assert_detected(blob + chunks[-1])
    assert_detected(blob + b"\0")


def test_reordered_chunks_are_detected(three_chunks):
    _, blob = three_chunks
    header, chunks = split(blob)
    assert_detected(header + chunks[1] + chunks[0] + chunks[2])


def test_a_dropped_middle_chunk_is_detected(three_chunks):
    _, blob = three_chunks
    header, chunks = split(blob)
    assert_detected(header + chunks[0] + chunks[2])


def test_a_chunk_spliced_from_another_object_is_detected(three_chunks):
    data, blob = three_chunks
    header, chunks = split(blob)
    # the same data under the same name, sealed again: same positions, other key material
    _, other = split(seal(data))
    assert_detected(header + chunks[0] + other[1] + chunks[2])
    # and a whole other object's header with our chunks
    other_header, _ = split(seal(data))
    assert_detected(other_header + b"".join(chunks))


def test_an_object_read_under_another_name_is_detected(three_chunks):
    _, blob = three_chunks
    error = assert_detected(blob, name="objects/backups/store_sud/dump")
    assert "another name" in error.message


def test_swapped_objects_are_detected():
    a, b = seal(b"tenant a" * 100, name="objects/a"), seal(b"tenant b" * 100, name="objects/b")
    assert_detected(b, name="objects/a")
    assert_detected(a, name="objects/b")


def test_the_wrong_master_key_is_detected(three_chunks):
    _, blob = three_chunks
    assert_detected(blob, key=bytes(32))


def test_garbage_is_not_an_object():
    error = assert_detected(b"PK\x03\x04 this is a zip file, not an erpops object" * 3)
    assert "not an erpops object" in error.message


FLIP_TARGET = seal(mixed(3 * CHUNK + 500))


@settings(max_examples=60, deadline=None)
@given(position=st.integers(min_value=0, max_value=len(FLIP_TARGET) - 1), bit=st.integers(min_value=0, max_value=7))
def test_any_single_bit_flip_is_detected(position, bit):
    damaged = bytearray(FLIP_TARGET)
    damaged[position] ^= 1 << bit
    assert_detected(bytes(damaged))


def test_each_object_key_is_rfc5869_hkdf_sha256_of_the_master_key():
    """docs/repository-format.md: K = HKDF-SHA256(master, salt, "erpops-object-v1\\0" + name);
    the hand-written derivation must stay exactly that, or every stored object becomes unreadable."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    from erpops.repo.objectformat import object_key

    master, salt = os.urandom(32), os.urandom(32)
    for name in ("blobs/ab/ab12", "backups/20261204T000000Z-lab-retail/db.dump", "index/" + "e" * 32):
        expected = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt,
                        info=b"erpops-object-v1\0" + name.encode()).derive(master)
        assert object_key(master, salt, name) == expected
