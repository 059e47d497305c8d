"""An upload's body, streamed to a file while every check the request asked for is computed.

``plan`` reads the request's headers once: the payload mode (a hex SHA-256, ``UNSIGNED-PAYLOAD``, or
``STREAMING-UNSIGNED-PAYLOAD-TRAILER`` with an aws-chunked body and a checksum trailer), the length
it announces (``Content-Length`` / ``X-Amz-Decoded-Content-Length``), an ``x-amz-checksum-*`` header
and ``Content-MD5``. ``receive`` decodes while reading, writes about a megabyte at a time in a worker
thread (the next batch is read from the network while the previous one is hashed and written), and at
the end compares every digest; on any failure the file is deleted and the answer is S3's error
(``XAmzContentSHA256Mismatch``, ``BadDigest``, ``IncompleteBody``, ``EntityTooLarge``). Memory stays at
about two batches whatever the size.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import AsyncIterator, Protocol

from activities.errors import StorageError
from activities.storage.aws_chunked import AwsChunkedDecoder
from activities.storage.sigv4 import UNSIGNED_PAYLOAD, is_sha256_hex

BATCH = 1024 * 1024
STREAMING_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
CHECKSUMS = {"crc32": None, "sha1": hashlib.sha1, "sha256": hashlib.sha256}  # None: zlib.crc32
UNSUPPORTED_CHECKSUMS = ("crc32c", "crc64nvme")


class Headers(Protocol):
    def get(self, key: str, default: str | None = None) -> str | None: ...


@dataclass(frozen=True)
class Plan:
    max_bytes: int
    sha256: str | None = None  # the signed payload hash to verify
    chunked: bool = False  # aws-chunked framing to decode
    length: int | None = None  # the decoded length announced
    checksum: str | None = None  # algorithm of a header or trailer checksum
    checksum_value: str | None = None  # from the header (a trailer's arrives at the end)
    trailer: str | None = None  # x-amz-checksum-<algorithm> expected as a trailer
    content_md5: bytes | None = None


@dataclass
class Received:
    size: int
    md5: bytes
    crc32: str  # base64 of the big-endian CRC32, as x-amz-checksum-crc32
    extras: dict[str, str] = field(default_factory=dict)

    @property
    def etag(self) -> str:
        return self.md5.hex()


def _int_header(headers: Headers, name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    if not value.strip().isdigit():
        raise StorageError("InvalidArgument", f"{name} must be a non-negative integer", 400)
    return int(value)


def _checksum_name(header: str) -> str:
    algorithm = header.lower().removeprefix("x-amz-checksum-")
    if algorithm in UNSUPPORTED_CHECKSUMS:
        raise StorageError("InvalidRequest", f"checksum algorithm {algorithm.upper()} is not supported here; use "
                           "CRC32, SHA1 or SHA256", 400)
    if algorithm not in CHECKSUMS:
        raise StorageError("InvalidRequest", f"unknown checksum {header!r}", 400)
    return algorithm


def plan(headers: Headers, payload_hash: str, max_bytes: int) -> Plan:
    """What ``receive`` must decode and check; refuses what it cannot (oversized, unknown mode)."""
    encodings = [e.strip().lower() for e in (headers.get("content-encoding") or "").split(",") if e.strip()]
    chunked = payload_hash == STREAMING_TRAILER or "aws-chunked" in encodings
    if payload_hash.startswith("STREAMING-") and payload_hash != STREAMING_TRAILER:
        raise StorageError("NotImplemented", f"x-amz-content-sha256 {payload_hash} is not supported here; send "
                           f"{STREAMING_TRAILER}, UNSIGNED-PAYLOAD or the body's SHA-256", 501)
    if not chunked and payload_hash != UNSIGNED_PAYLOAD and not is_sha256_hex(payload_hash):
        raise StorageError("InvalidArgument", "x-amz-content-sha256 must be a hex SHA-256, UNSIGNED-PAYLOAD or "
                           f"{STREAMING_TRAILER}", 400)
    length = _int_header(headers, "x-amz-decoded-content-length") if chunked \
        else _int_header(headers, "content-length")
    if length is not None and length > max_bytes:
        raise StorageError("EntityTooLarge", f"Your proposed upload exceeds the maximum allowed size "
                           f"({max_bytes} bytes)", 400)
    trailer_header = (headers.get("x-amz-trailer") or "").strip().lower() or None
    if trailer_header and not chunked:
        raise StorageError("InvalidRequest", "x-amz-trailer needs an aws-chunked body", 400)
    trailer = _checksum_name(trailer_header) if trailer_header else None
    checksum, checksum_value = trailer, None
    for name in (f"x-amz-checksum-{a}" for a in (*CHECKSUMS, *UNSUPPORTED_CHECKSUMS)):
        if headers.get(name) is not None:
            checksum, checksum_value = _checksum_name(name), headers.get(name)
    md5 = headers.get("content-md5")
    content_md5 = None
    if md5 is not None:
        try:
            content_md5 = base64.b64decode(md5, validate=True)
        except (binascii.Error, ValueError):
            content_md5 = b""
        if len(content_md5) != 16:
            raise StorageError("InvalidDigest", "The Content-MD5 you specified was invalid.", 400)
    return Plan(max_bytes=max_bytes, sha256=payload_hash if is_sha256_hex(payload_hash) else None, chunked=chunked,
                length=length, checksum=checksum, checksum_value=checksum_value, trailer=trailer,
                content_md5=content_md5)


class _Sink:
    """Digests and the file, updated in a worker thread one batch at a time."""

    def __init__(self, handle, plan: Plan) -> None:
        self.handle = handle
        self.md5 = hashlib.md5()
        self.sha256 = hashlib.sha256() if plan.sha256 else None
        self.crc = 0
        factory = CHECKSUMS.get(plan.checksum or "")
        self.extra = factory() if factory else None

    def write(self, pieces: list[bytes]) -> None:
        for piece in pieces:
            self.md5.update(piece)
            if self.sha256 is not None:
                self.sha256.update(piece)
            if self.extra is not None:
                self.extra.update(piece)
            self.crc = zlib.crc32(piece, self.crc)
            self.handle.write(piece)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


async def receive(chunks: AsyncIterator[bytes], plan: Plan, dest: Path) -> Received:
    """Write the decoded body to ``dest`` (created, never overwritten) and verify it; ``dest`` is
    removed when anything fails."""
    handle = await asyncio.to_thread(open, dest, "xb")
    try:
        try:
            received, trailers = await _stream(chunks, plan, _Sink(handle, plan))
        finally:
            await asyncio.to_thread(handle.close)
        _verify(plan, received, trailers)
        return received
    except BaseException:
        await asyncio.to_thread(dest.unlink, missing_ok=True)
        raise


async def _stream(chunks: AsyncIterator[bytes], plan: Plan, sink: _Sink) -> tuple[Received, dict[str, str]]:
    decoder = AwsChunkedDecoder(plan.max_bytes) if plan.chunked else None
    size, pending, buffered = 0, [], 0
    writing: asyncio.Future | None = None
    try:
        async for chunk in chunks:
            pieces = decoder.feed(chunk) if decoder is not None else [chunk]
            for piece in pieces:
                size += len(piece)
                pending.append(piece)
                buffered += len(piece)
            if size > plan.max_bytes:
                raise StorageError("EntityTooLarge", f"Your proposed upload exceeds the maximum allowed size "
                                   f"({plan.max_bytes} bytes)", 400)
            if buffered >= BATCH:
                if writing is not None:
                    await writing
                writing = asyncio.ensure_future(asyncio.to_thread(sink.write, pending))
                pending, buffered = [], 0
        if writing is not None:
            await writing
            writing = None
        if pending:
            await asyncio.to_thread(sink.write, pending)
    finally:
        if writing is not None:  # an error while a batch is being written: let it finish before closing
            await asyncio.gather(writing, return_exceptions=True)
    trailers = decoder.finish() if decoder is not None else {}
    extras = {plan.checksum: _b64(sink.extra.digest())} if sink.extra is not None else {}
    received = Received(size, sink.md5.digest(), _b64(sink.crc.to_bytes(4, "big")), extras)
    if sink.sha256 is not None:
        received.extras["sha256-payload"] = sink.sha256.hexdigest()
    return received, trailers


def _verify(plan: Plan, received: Received, trailers: dict[str, str]) -> None:
    if plan.length is not None and received.size != plan.length:
        raise StorageError("IncompleteBody", f"You did not provide the number of bytes specified by the "
                           f"{'X-Amz-Decoded-Content-Length' if plan.chunked else 'Content-Length'} HTTP header", 400)
    if plan.sha256 is not None and received.extras.get("sha256-payload") != plan.sha256:
        raise StorageError("XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not "
                           "match what was computed.", 400)
    if plan.content_md5 is not None and plan.content_md5 != received.md5:
        raise StorageError("BadDigest", "The Content-MD5 you specified did not match what we received.", 400)
    if plan.checksum is None:
        return
    sent = plan.checksum_value
    if plan.trailer is not None and sent is None:
        sent = trailers.get(f"x-amz-checksum-{plan.trailer}")
        if sent is None:
            raise StorageError("InvalidRequest", f"the x-amz-checksum-{plan.trailer} trailer announced in "
                               "x-amz-trailer is missing", 400)
    actual = received.crc32 if plan.checksum == "crc32" else received.extras.get(plan.checksum)
    if sent != actual:
        raise StorageError("BadDigest", f"The {plan.checksum.upper()} you specified did not match the "
                           "calculated checksum.", 400)
