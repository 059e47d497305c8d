"""Where uploaded job outputs live on the API's disk, and safe streaming of an upload into place.

Each attempt has its own directory, so a stale attempt can never overwrite what the current one
uploaded; every upload streams into its own temporary file (two uploads of one name never share
one); the checksum is computed over the bytes as stored, read back from disk, before the file is
renamed into place. File I/O runs in worker threads, never on the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from pathlib import Path, PurePosixPath
from typing import AsyncIterator

from activities.errors import BadRequest, InvalidInput
from activities.settings import Settings

WRITE_BATCH = 1024 * 1024


def safe_name(name: str) -> str:
    """A relative POSIX path with no '..', no absolute root, no empty parts."""
    pure = PurePosixPath(name)
    if not name or pure.is_absolute() or any(part in ("", ".", "..") for part in name.split("/")) or "\x00" in name:
        raise InvalidInput(f"invalid output name {name!r}: must be a relative path without '..'")
    return str(pure)


def path_for(settings: Settings, job_id: str, name: str, attempt: int | None = None) -> Path:
    """The stored file of an output; ``attempt`` None is the layout of jobs uploaded before attempts had
    their own directories."""
    base = settings.data_dir / "outputs" / job_id
    return (base / f"attempt-{attempt}" if attempt is not None else base) / safe_name(name)


def stored_path(settings: Settings, job_id: str, name: str, attempt: int) -> Path:
    current = path_for(settings, job_id, name, attempt)
    return current if current.is_file() else path_for(settings, job_id, name)


def _sha256_of(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        while chunk := handle.read(WRITE_BATCH):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


async def store(settings: Settings, job_id: str, attempt: int, name: str, chunks: AsyncIterator[bytes],
                expected_sha256: str | None) -> tuple[int, str]:
    """Stream to a temp file of this upload, verify the stored bytes' checksum, then rename into place."""
    final = path_for(settings, job_id, name, attempt)
    await asyncio.to_thread(final.parent.mkdir, parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex}.part")
    handle = await asyncio.to_thread(open, tmp, "xb")
    try:
        try:
            pending: list[bytes] = []
            buffered = 0
            async for chunk in chunks:
                pending.append(chunk)
                buffered += len(chunk)
                if buffered >= WRITE_BATCH:
                    await asyncio.to_thread(handle.write, b"".join(pending))
                    pending, buffered = [], 0
            if pending:
                await asyncio.to_thread(handle.write, b"".join(pending))
            await asyncio.to_thread(_flush, handle)
        finally:
            await asyncio.to_thread(handle.close)
        actual, size = await asyncio.to_thread(_sha256_of, tmp)
        if expected_sha256 and expected_sha256.lower() != actual:
            raise BadRequest(f"checksum mismatch for {name!r}: header says {expected_sha256}, stored bytes are "
                               f"{actual}")
        await asyncio.to_thread(os.replace, tmp, final)
        return size, actual
    finally:
        await asyncio.to_thread(tmp.unlink, missing_ok=True)


def _flush(handle) -> None:
    handle.flush()
    os.fsync(handle.fileno())
