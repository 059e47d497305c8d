"""Object operations of the storage endpoint (``api/routers/storage.py``): Put/Get/Head/DeleteObject,
DeleteObjects and the multipart upload calls. Bodies stream to disk (``activities/storage/body.py``);
database work and file system calls run in worker threads, never on the event loop.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import zlib
from urllib.parse import quote

from fastapi import Request, Response

from activities.errors import StorageError
from activities.storage import access, body, catalog, keys, multipart, objects, xml
from activities.storage.credentials import Caller
from activities.storage.sigv4 import Claim, is_sha256_hex
from api.storage_http import PREFIX, S3Request, byte_range, object_headers, stream_file

DEFAULT_TYPE = "binary/octet-stream"
MAX_XML_BODY = 4 * 1024 * 1024
MAX_DELETE_KEYS = 1000
OVERRIDES = {"response-content-type": "Content-Type", "response-content-disposition": "Content-Disposition",
             "response-content-encoding": "Content-Encoding", "response-content-language": "Content-Language",
             "response-cache-control": "Cache-Control", "response-expires": "Expires"}


def _no_key() -> StorageError:
    return StorageError("NoSuchKey", "The specified key does not exist.", 404)


def _authorize(state, caller: Caller, bucket: str, write: bool) -> None:
    with state.db.read_session() as session:
        access.authorize(session, caller, bucket, write)


def _record(state, caller: Caller, bucket: str, key: str, size: int, etag: str, content_type: str, data_name: str,
            crc32: str | None) -> str | None:
    with state.db.session() as session:
        access.authorize(session, caller, bucket, write=True)  # again: the job may have ended meanwhile
        old = catalog.put(session, bucket, key, size, etag, content_type, data_name, crc32)
        session.commit()
    return old


async def _store(state, caller: Caller, bucket: str, key: str, temp, data_name: str, size: int, etag: str,
                 content_type: str, crc32: str | None) -> None:
    """Rename the finished file into place, record it, then delete the version it replaced."""
    root = state.settings.storage_root
    final = objects.data_path(root, bucket, data_name)
    await asyncio.to_thread(objects.commit, temp, final)
    try:
        old = await asyncio.to_thread(_record, state, caller, bucket, key, size, etag, content_type, data_name, crc32)
    except BaseException:
        await asyncio.to_thread(objects.remove, final)
        raise
    if old is not None:
        await asyncio.to_thread(objects.remove, objects.data_path(root, bucket, old))


async def put_object(state, request: Request, s3: S3Request, caller: Caller, claim: Claim, bucket: str,
                     key: str) -> Response:
    await asyncio.to_thread(_authorize, state, caller, bucket, True)
    plan = body.plan(request.headers, claim.payload_hash, state.settings.max_upload_bytes)
    temp, data_name = await asyncio.to_thread(objects.temp_path, state.settings.storage_root, bucket)
    received = await body.receive(request.stream(), plan, temp)
    await _store(state, caller, bucket, key, temp, data_name, received.size, received.etag,
                 request.headers.get("content-type") or DEFAULT_TYPE, received.crc32)
    headers = {"ETag": f'"{received.etag}"'}
    if plan.checksum == "crc32":
        headers["x-amz-checksum-crc32"] = received.crc32
    return Response(status_code=200, headers=headers)


def _open(state, caller: Caller, bucket: str, key: str):
    """The object's row and its data file opened for reading (a concurrent overwrite may delete the file
    between the two: read the row again then)."""
    root = state.settings.storage_root
    for _ in range(3):
        with state.db.read_session() as session:
            access.authorize(session, caller, bucket, write=False)
            row = catalog.get(session, bucket, key)
        if row is None:
            raise _no_key()
        try:
            return row, open(objects.data_path(root, bucket, row.data_name), "rb")
        except FileNotFoundError:
            continue
    raise _no_key()


def _preconditions(request: Request, etag: str) -> None:
    quoted = f'"{etag}"'
    match = request.headers.get("if-match")
    if match is not None and match.strip() not in ("*", quoted, etag):
        raise StorageError("PreconditionFailed", "At least one of the pre-conditions you specified did not hold",
                           412)
    none_match = request.headers.get("if-none-match")
    if none_match is not None and none_match.strip() in ("*", quoted, etag):
        raise StorageError("NotModified", "Not Modified", 304)


async def get_object(state, request: Request, s3: S3Request, caller: Caller, bucket: str, key: str) -> Response:
    row, handle = await asyncio.to_thread(_open, state, caller, bucket, key)
    try:
        _preconditions(request, row.etag)
        headers = object_headers(row)
        headers.update({header: s3.param(name) for name, header in OVERRIDES.items() if s3.param(name)})
        span = byte_range(request.headers.get("range"), row.size)
        if span is None:
            start, length, status = 0, row.size, 200
            if row.checksum_crc32 and (request.headers.get("x-amz-checksum-mode") or "").upper() == "ENABLED":
                headers["x-amz-checksum-crc32"] = row.checksum_crc32
        else:
            (start, length), status = span, 206
            headers["Content-Range"] = f"bytes {start}-{start + length - 1}/{row.size}"
    except BaseException:
        handle.close()
        raise
    if request.method == "HEAD":
        handle.close()
        return Response(status_code=status, headers={**headers, "Content-Length": str(length)})
    return stream_file(handle, start, length, status, headers)


def _forget(state, caller: Caller, bucket: str, names: list[str]) -> list[str | None]:
    with state.db.session() as session:
        access.authorize(session, caller, bucket, write=True)
        gone = [catalog.delete(session, bucket, key) for key in names]
        session.commit()
    return gone


async def _remove_data(state, bucket: str, names: list[str | None]) -> None:
    root = state.settings.storage_root
    for name in names:
        if name is not None:
            await asyncio.to_thread(objects.remove, objects.data_path(root, bucket, name))


async def delete_object(state, caller: Caller, bucket: str, key: str) -> Response:
    await _remove_data(state, bucket, await asyncio.to_thread(_forget, state, caller, bucket, [key]))
    return Response(status_code=204)


async def _small_body(request: Request, claim: Claim) -> bytes:
    """A request body of XML (at most 4 MiB), checked against its signed hash, Content-MD5 and CRC32."""
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_XML_BODY:
            raise StorageError("MaxMessageLengthExceeded", "Your request was too big.", 400)
    raw = bytes(data)
    if is_sha256_hex(claim.payload_hash) and hashlib.sha256(raw).hexdigest() != claim.payload_hash:
        raise StorageError("XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not match "
                           "what was computed.", 400)
    md5 = request.headers.get("content-md5")
    if md5 is not None and md5.strip() != base64.b64encode(hashlib.md5(raw).digest()).decode():
        raise StorageError("BadDigest", "The Content-MD5 you specified did not match what we received.", 400)
    crc = request.headers.get("x-amz-checksum-crc32")
    if crc is not None and crc.strip() != base64.b64encode(zlib.crc32(raw).to_bytes(4, "big")).decode():
        raise StorageError("BadDigest", "The CRC32 you specified did not match the calculated checksum.", 400)
    return raw


async def delete_objects(state, request: Request, s3: S3Request, caller: Caller, claim: Claim,
                         bucket: str) -> Response:
    await asyncio.to_thread(_authorize, state, caller, bucket, True)
    names, quiet = xml.parse_delete(await _small_body(request, claim))
    if len(names) > MAX_DELETE_KEYS:
        raise StorageError("MalformedXML", f"at most {MAX_DELETE_KEYS} keys per request", 400)
    valid, errors = [], []
    for name in names:
        try:
            valid.append(keys.check_key(name))
        except StorageError as exc:
            errors.append((name, exc.code, exc.detail))
    await _remove_data(state, bucket, await asyncio.to_thread(_forget, state, caller, bucket, valid))
    return Response(xml.delete_result(valid, errors, quiet), media_type="application/xml")


async def create_upload(state, request: Request, s3: S3Request, caller: Caller, bucket: str, key: str) -> Response:
    await asyncio.to_thread(_authorize, state, caller, bucket, True)
    algorithm = (request.headers.get("x-amz-checksum-algorithm") or "").lower()
    if algorithm and algorithm not in body.CHECKSUMS:
        raise StorageError("InvalidRequest", f"checksum algorithm {algorithm.upper()} is not supported here; use "
                           "CRC32, SHA1 or SHA256", 400)
    upload_id = await asyncio.to_thread(multipart.create, state.settings.storage_root, bucket, key,
                                        request.headers.get("content-type") or DEFAULT_TYPE)
    return Response(xml.initiate_multipart(bucket, key, upload_id), media_type="application/xml")


async def upload_part(state, request: Request, s3: S3Request, caller: Caller, claim: Claim, bucket: str, key: str,
                      upload_id: str) -> Response:
    root = state.settings.storage_root
    await asyncio.to_thread(_authorize, state, caller, bucket, True)
    number = multipart.part_number(s3.param("partNumber"))
    await asyncio.to_thread(multipart.describe, root, bucket, key, upload_id)
    plan = body.plan(request.headers, claim.payload_hash, state.settings.max_upload_bytes)
    temp = multipart.part_temp(root, bucket, upload_id, number)
    try:
        received = await body.receive(request.stream(), plan, temp)
    except FileNotFoundError:  # the upload was aborted or completed before the part began
        raise StorageError("NoSuchUpload", "The specified upload does not exist.", 404) from None
    await asyncio.to_thread(multipart.save_part, root, bucket, upload_id, number, temp, received)
    headers = {"ETag": f'"{received.etag}"'}
    if plan.checksum == "crc32":
        headers["x-amz-checksum-crc32"] = received.crc32
    return Response(status_code=200, headers=headers)


async def complete_upload(state, request: Request, s3: S3Request, caller: Caller, claim: Claim, bucket: str,
                          key: str, upload_id: str) -> Response:
    root = state.settings.storage_root
    await asyncio.to_thread(_authorize, state, caller, bucket, True)
    record = await asyncio.to_thread(multipart.describe, root, bucket, key, upload_id)
    listed = xml.parse_complete(await _small_body(request, claim))
    parts = await asyncio.to_thread(multipart.check_parts, root, bucket, upload_id, listed)
    temp, data_name = await asyncio.to_thread(objects.temp_path, root, bucket)
    try:
        size = await asyncio.to_thread(multipart.assemble, parts, temp)
    except BaseException:
        await asyncio.to_thread(objects.remove, temp)
        raise
    etag = multipart.multipart_etag(parts)
    await _store(state, caller, bucket, key, temp, data_name, size, etag, record.get("content_type") or DEFAULT_TYPE,
                 None)
    try:
        await asyncio.to_thread(multipart.discard, root, bucket, upload_id)
    except StorageError:
        pass  # aborted concurrently: the object stands
    location = f"{str(request.base_url).rstrip('/')}{PREFIX}/{bucket}/{quote(key)}"
    return Response(xml.complete_multipart(location, bucket, key, etag), media_type="application/xml")


async def abort_upload(state, caller: Caller, bucket: str, key: str, upload_id: str) -> Response:
    root = state.settings.storage_root
    await asyncio.to_thread(_authorize, state, caller, bucket, True)
    await asyncio.to_thread(multipart.describe, root, bucket, key, upload_id)
    await asyncio.to_thread(multipart.discard, root, bucket, upload_id)
    return Response(status_code=204)
