"""Where uploaded job outputs live on the API's disk, and safe streaming of an upload into place."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path, PurePosixPath
from typing import AsyncIterator

from activities.errors import InvalidInput
from activities.settings import Settings


def safe_name(name: str) -> str:
    """A relative POSIX path with no '..', no absolute root, no empty parts."""
    pure = PurePosixPath(name)
    if not name or pure.is_absolute() or any(part in ("", ".", "..") for part in name.split("/")) or "\x00" in name:
        raise InvalidInput(f"invalid output name {name!r}: must be a relative path without '..'")
    return str(pure)


def path_for(settings: Settings, job_id: str, name: str) -> Path:
    return settings.data_dir / "outputs" / job_id / safe_name(name)


async def store(settings: Settings, job_id: str, name: str, chunks: AsyncIterator[bytes],
                expected_sha256: str | None) -> tuple[int, str]:
    """Stream to a temp file, verify the checksum, then rename into place (never half-written)."""
    final = path_for(settings, job_id, name)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.{os.getpid()}.part")
    digest, size = hashlib.sha256(), 0
    try:
        with open(tmp, "wb") as handle:
            async for chunk in chunks:
                handle.write(chunk)
                digest.update(chunk)
                size += len(chunk)
        actual = digest.hexdigest()
        if expected_sha256 and expected_sha256.lower() != actual:
            raise InvalidInput(f"checksum mismatch for {name!r}: header says {expected_sha256}, body is {actual}")
        os.replace(tmp, final)
        return size, actual
    finally:
        tmp.unlink(missing_ok=True)
