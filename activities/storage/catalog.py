"""The object catalog: one ``StorageObject`` row per stored object, and the job's upload counters.

Metadata lives in the database rather than in sidecar files beside the data: ListObjectsV2 pages
(prefix, delimiter, continuation) are range scans of the primary key instead of directory walks,
several API replicas see one truth, and the job's ``upload_bytes``/``upload_objects`` (shown as
``upload_progress``) change in the same transaction as the row they count. The bytes themselves stay
on disk (``objects.py``); an object becomes visible when its row commits, after its file is in place.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from activities.db.models import Job, utcnow
from activities.db.models_storage import StorageObject
from activities.errors import StorageError

SCAN_BATCH = 500


def get(session: Session, bucket: str, key: str) -> StorageObject | None:
    return session.get(StorageObject, (bucket, key))


def _count(session: Session, bucket: str, bytes_delta: int, objects_delta: int) -> None:
    if bytes_delta or objects_delta:
        session.exec(update(Job).where(col(Job.id) == bucket).values(  # type: ignore[call-overload]
            upload_bytes=func.coalesce(Job.upload_bytes, 0) + bytes_delta,
            upload_objects=func.coalesce(Job.upload_objects, 0) + objects_delta))


def put(session: Session, bucket: str, key: str, size: int, etag: str, content_type: str, data_name: str,
        checksum_crc32: str | None) -> str | None:
    """Record the object (replacing any earlier one) and count it; the replaced data file's name, for the
    caller to delete after the commit."""
    row = session.get(StorageObject, (bucket, key), with_for_update=True)
    old_name, old_size = (row.data_name, row.size) if row is not None else (None, None)
    if row is None:
        row = StorageObject(bucket=bucket, key=key, size=size, etag=etag, content_type=content_type,
                            data_name=data_name, checksum_crc32=checksum_crc32)
    else:
        row.size, row.etag, row.content_type, row.data_name = size, etag, content_type, data_name
        row.checksum_crc32, row.last_modified = checksum_crc32, utcnow()
    session.add(row)
    _count(session, bucket, size - (old_size or 0), 0 if old_name is not None else 1)
    return old_name


def delete(session: Session, bucket: str, key: str) -> str | None:
    """Forget the object; its data file's name (None when there was none: S3 deletes idempotently)."""
    row = session.get(StorageObject, (bucket, key), with_for_update=True)
    if row is None:
        return None
    session.delete(row)
    _count(session, bucket, -row.size, -1)
    return row.data_name


@dataclass
class Listing:
    contents: list[StorageObject] = field(default_factory=list)
    prefixes: list[str] = field(default_factory=list)
    truncated: bool = False
    next_token: str | None = None


def encode_token(kind: str, value: str) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{value}".encode()).decode("ascii")


def decode_token(token: str) -> tuple[str, str]:
    try:
        kind, sep, value = base64.urlsafe_b64decode(token.encode("ascii")).decode("utf-8").partition(":")
    except (binascii.Error, ValueError, UnicodeError):
        kind, sep, value = "", "", ""
    if not sep or kind not in ("k", "p"):
        raise StorageError("InvalidArgument", "The continuation token provided is incorrect", 400)
    return kind, value


def _after_prefix(prefix: str) -> str:
    """The smallest string greater than every string starting with ``prefix`` (code point order)."""
    chars = list(prefix)
    while chars:
        point = ord(chars[-1]) + 1
        if 0xD800 <= point <= 0xDFFF:
            point = 0xE000
        if point <= 0x10FFFF:
            chars[-1] = chr(point)
            return "".join(chars)
        chars.pop()
    return "\U0010ffff" * 2  # nothing sorts after it in practice


def listing(session: Session, bucket: str, prefix: str = "", delimiter: str = "", start_after: str = "",
            token: str | None = None, max_keys: int = 1000) -> Listing:
    """ListObjectsV2 over the catalog: keys in byte order from after ``token`` (else ``start_after``)."""
    found = Listing()
    start, inclusive = prefix, True
    if token is not None:
        kind, value = decode_token(token)
        start, inclusive = (value, False) if kind == "k" else (_after_prefix(value), True)
    elif start_after:
        start, inclusive = start_after, False
    if start < prefix:
        start, inclusive = prefix, True
    if max_keys <= 0:
        return found
    while True:
        query = select(StorageObject).where(StorageObject.bucket == bucket)
        query = query.where(col(StorageObject.key) >= start if inclusive else col(StorageObject.key) > start)
        rows = list(session.exec(query.order_by(col(StorageObject.key)).limit(SCAN_BATCH)))
        jumped = False
        for row in rows:
            if not row.key.startswith(prefix):
                return found
            rest = row.key[len(prefix):]
            cut = rest.find(delimiter) if delimiter else -1
            if len(found.contents) + len(found.prefixes) >= max_keys:
                found.truncated = True
                return found
            if cut >= 0:
                common = prefix + rest[:cut + len(delimiter)]
                found.prefixes.append(common)
                found.next_token = encode_token("p", common)
                start, inclusive, jumped = _after_prefix(common), True, True
                break
            found.contents.append(row)
            found.next_token = encode_token("k", row.key)
            start, inclusive = row.key, False
        if not jumped and len(rows) < SCAN_BATCH:
            return found
