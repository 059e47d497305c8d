"""Multipart uploads, kept on disk under ``<bucket>/uploads/<upload id>/`` until completed or aborted.

``upload.json`` holds the key and content type; each part is a data file ``part-<n>.<random>`` and
``part-<n>.json`` naming it with its size, MD5 and CRC32 (the JSON is renamed into place last, so a
part re-sent while another copy is still arriving never mixes the two). Parts touch no database row:
a 1 GiB upload is 128 part requests and none of them takes the database's write lock. Completion
checks the parts the client lists (ascending, each present with the ETag and CRC32 it claims, all but
the last at least 5 MiB), concatenates them into a new data file, and records the object with the
multipart ETag (MD5 of the parts' MD5s, ``-N``). Abandoned uploads stay until aborted.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from activities.errors import StorageError
from activities.storage import objects
from activities.storage.body import Received

MIN_PART = 5 * 1024 * 1024
MAX_PARTS = 10000
_UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class Part:
    number: int
    size: int
    etag: str  # md5 hex
    crc32: str
    path: Path


def _no_upload() -> StorageError:
    return StorageError("NoSuchUpload", "The specified upload does not exist. The upload ID may be invalid, or "
                        "the upload may have been aborted or completed.", 404)


def upload_dir(root: Path, bucket: str, upload_id: str) -> Path:
    if not _UPLOAD_ID.match(upload_id):
        raise _no_upload()
    return objects.bucket_dir(root, bucket) / "uploads" / upload_id


def _write_json(path: Path, data: dict) -> None:
    temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
    temp.write_text(json.dumps(data))
    os.replace(temp, path)


def create(root: Path, bucket: str, key: str, content_type: str) -> str:
    upload_id = secrets.token_hex(16)
    directory = upload_dir(root, bucket, upload_id)
    directory.mkdir(parents=True)
    _write_json(directory / "upload.json", {"key": key, "content_type": content_type})
    return upload_id


def describe(root: Path, bucket: str, key: str, upload_id: str) -> dict:
    """The upload's record; NoSuchUpload when it is gone or belongs to another key."""
    try:
        record = json.loads((upload_dir(root, bucket, upload_id) / "upload.json").read_text())
    except (OSError, ValueError):
        raise _no_upload() from None
    if record.get("key") != key:
        raise _no_upload()
    return record


def part_number(value: str | None) -> int:
    if value is None or not value.isdigit() or not 1 <= int(value) <= MAX_PARTS:
        raise StorageError("InvalidArgument", f"Part number must be an integer between 1 and {MAX_PARTS}, "
                           "inclusive", 400)
    return int(value)


def part_temp(root: Path, bucket: str, upload_id: str, number: int) -> Path:
    return upload_dir(root, bucket, upload_id) / f"part-{number:05d}.{secrets.token_hex(8)}"


def save_part(root: Path, bucket: str, upload_id: str, number: int, data: Path, received: Received) -> None:
    """Make the received ``data`` file part ``number`` (replacing an earlier copy)."""
    directory = upload_dir(root, bucket, upload_id)
    if not (directory / "upload.json").exists():  # aborted or completed while the part arrived
        objects.remove(data)
        raise _no_upload()
    meta = directory / f"part-{number:05d}.json"
    previous = _read_part(directory, number)
    _write_json(meta, {"file": data.name, "size": received.size, "etag": received.etag, "crc32": received.crc32})
    if previous is not None and previous.path != data:
        objects.remove(previous.path)


def _read_part(directory: Path, number: int) -> Part | None:
    try:
        meta = json.loads((directory / f"part-{number:05d}.json").read_text())
    except (OSError, ValueError):
        return None
    return Part(number, meta["size"], meta["etag"], meta["crc32"], directory / meta["file"])


def check_parts(root: Path, bucket: str, upload_id: str, listed: list[tuple[int, str, str | None]]) -> list[Part]:
    """The parts the completion lists ((number, ETag, CRC32 or None) each), checked against what arrived."""
    if not listed:
        raise StorageError("MalformedXML", "The XML you provided was not well-formed or did not validate "
                           "against our published schema (no parts)", 400)
    directory = upload_dir(root, bucket, upload_id)
    parts: list[Part] = []
    for number, etag, crc32 in listed:
        if parts and number <= parts[-1].number:
            raise StorageError("InvalidPartOrder", "The list of parts was not in ascending order. The parts list "
                               "must be specified in order by part number.", 400)
        part = _read_part(directory, number)
        if part is None or etag.strip().strip('"').lower() != part.etag or (crc32 and crc32 != part.crc32):
            raise StorageError("InvalidPart", f"One or more of the specified parts could not be found or did not "
                               f"match (part {number}).", 400)
        parts.append(part)
    for part in parts[:-1]:
        if part.size < MIN_PART:
            raise StorageError("EntityTooSmall", "Your proposed upload is smaller than the minimum allowed object "
                               f"size (part {part.number} is {part.size} bytes; all but the last must be "
                               f"at least {MIN_PART})", 400)
    return parts


def multipart_etag(parts: list[Part]) -> str:
    digest = hashlib.md5(b"".join(bytes.fromhex(p.etag) for p in parts)).hexdigest()
    return f"{digest}-{len(parts)}"


def assemble(parts: list[Part], dest: Path) -> int:
    """Concatenate the parts into ``dest``; its size."""
    objects.concatenate([p.path for p in parts], dest)
    return sum(p.size for p in parts)


def discard(root: Path, bucket: str, upload_id: str) -> None:
    """Forget the upload and its parts (NoSuchUpload when there is none)."""
    directory = upload_dir(root, bucket, upload_id)
    if not (directory / "upload.json").exists():
        raise _no_upload()
    gone = directory.with_name(f".gone-{upload_id}-{secrets.token_hex(4)}")
    try:
        os.replace(directory, gone)  # atomic: no new part can land in it from here on
    except FileNotFoundError:
        raise _no_upload() from None
    objects.remove_tree(gone)
