"""The aws-chunked decoder (fed in every split, bad CRC, truncated or malformed chunks), the streamed
body checks, and object key validation."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import zlib

import pytest

from activities.errors import StorageError
from activities.storage import body, keys
from activities.storage.aws_chunked import AwsChunkedDecoder


def _crc(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def _framed(chunks: list[bytes], trailer: str | None) -> bytes:
    out = b"".join(f"{len(c):x}\r\n".encode() + c + b"\r\n" for c in chunks) + b"0\r\n"
    if trailer is not None:
        out += f"x-amz-checksum-crc32:{trailer}\r\n".encode()
    return out + b"\r\n"


@pytest.mark.parametrize("step", [1, 2, 3, 7, 64, 1000, 10**9])
def test_decoder_in_any_split(step):
    data = os.urandom(5000)
    framed = _framed([data[:1234], data[1234:4000], data[4000:]], _crc(data))
    decoder = AwsChunkedDecoder(max_chunk=10**6)
    out = b"".join(b"".join(decoder.feed(framed[i:i + step])) for i in range(0, len(framed), step))
    assert out == data and decoder.finish() == {"x-amz-checksum-crc32": _crc(data)}


@pytest.mark.parametrize("framed", [
    b"5\r\nhello\r\n",  # no final chunk
    b"5\r\nhel",  # truncated inside a chunk
    b"5\r\nhello\r\n0\r\n",  # no blank line after the trailers
])
def test_truncated_bodies_are_incomplete(framed):
    decoder = AwsChunkedDecoder(max_chunk=100)
    decoder.feed(framed)
    with pytest.raises(StorageError) as incomplete:
        decoder.finish()
    assert incomplete.value.code == "IncompleteBody"


@pytest.mark.parametrize("framed, code", [
    (b"zz\r\nhello\r\n", "InvalidRequest"),  # size not hex
    (b"3\r\nhello\r\n", "InvalidRequest"),  # more bytes than declared
    (b"0\r\n\r\nextra", "InvalidRequest"),  # bytes after the end
    (b"ffffffff\r\n", "EntityTooLarge"),
    (b"1" * 5000, "InvalidRequest"),  # a size line without end
])
def test_malformed_bodies(framed, code):
    with pytest.raises(StorageError) as bad:
        AwsChunkedDecoder(max_chunk=100).feed(framed)
    assert bad.value.code == code


async def _chunks(data: bytes, size: int = 65536):
    for i in range(0, len(data), size):
        yield data[i:i + size]


def _receive(tmp_path, raw: bytes, headers: dict, payload: str, max_bytes: int = 10**8):
    plan = body.plan({k.lower(): v for k, v in headers.items()}, payload, max_bytes)
    return asyncio.run(body.receive(_chunks(raw), plan, tmp_path / "out"))


def test_streamed_bodies_are_checked_and_removed_on_failure(tmp_path):
    data = os.urandom(3 * 1024 * 1024 + 17)
    framed = _framed([data[:2_000_000], data[2_000_000:]], _crc(data))
    chunked = {"Content-Encoding": "aws-chunked", "X-Amz-Trailer": "x-amz-checksum-crc32",
               "X-Amz-Decoded-Content-Length": str(len(data))}
    got = _receive(tmp_path, framed, chunked, body.STREAMING_TRAILER)
    assert got.etag == hashlib.md5(data).hexdigest() and (tmp_path / "out").read_bytes() == data
    (tmp_path / "out").unlink()
    for raw, headers, payload, code in [
        (_framed([data], _crc(b"other")), chunked, body.STREAMING_TRAILER, "BadDigest"),
        (_framed([data[:-1]], _crc(data[:-1])), chunked, body.STREAMING_TRAILER, "IncompleteBody"),
        (data, {"Content-Length": str(len(data))}, hashlib.sha256(b"x").hexdigest(), "XAmzContentSHA256Mismatch"),
        (data, {"Content-MD5": base64.b64encode(hashlib.md5(b"x").digest()).decode()}, "UNSIGNED-PAYLOAD", "BadDigest"),
        (data, {"x-amz-checksum-crc32": _crc(b"x")}, "UNSIGNED-PAYLOAD", "BadDigest"),
        (data, {}, "UNSIGNED-PAYLOAD", "EntityTooLarge"),
    ]:
        with pytest.raises(StorageError) as refused:
            _receive(tmp_path, raw, headers, payload, max_bytes=len(data) - 1 if code == "EntityTooLarge" else 10**8)
        assert refused.value.code == code
        assert not (tmp_path / "out").exists(), code
    signed = _receive(tmp_path, data, {"x-amz-checksum-crc32": _crc(data)}, hashlib.sha256(data).hexdigest())
    assert signed.crc32 == _crc(data)


@pytest.mark.parametrize("key", ["", "/abs", "../up", "a/../b", "a/..", "./a", "a/./b", "a//b", "a\\b", "nul\x00",
                                 "tab\tkey", "k" * 1025, "é" * 513])
def test_keys_that_could_escape_are_refused(key):
    with pytest.raises(StorageError):
        keys.check_key(key)


@pytest.mark.parametrize("key", ["a", "dir/", "a/b/c.txt", "with space+plus", "..hidden", "a..b/c", "é" * 512])
def test_ordinary_keys_pass(key):
    assert keys.check_key(key) == key


def test_buckets_are_job_ids():
    assert keys.check_bucket("job-0123456789abcdef01234567")
    for name in ("job-..", "other", "job-0123456789ABCDEF01234567", "../job-0123456789abcdef01234567"):
        with pytest.raises(StorageError):
            keys.check_bucket(name)
