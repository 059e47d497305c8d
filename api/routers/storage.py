"""The S3-compatible storage endpoint at ``/api/cloud/storage`` (path-style: ``/{bucket}/{key}``).

boto3 and the aws CLI work against it unchanged (``endpoint_url=<api>/api/cloud/storage``). Requests
carry their own SigV4 authentication (``api/storage_http.py``), never a session or bearer token; the
routes are left out of the OpenAPI document (their answers are S3's XML, not this API's JSON).
Operations: ListBuckets; HeadBucket, ListObjectsV2, GetBucketLocation, DeleteObjects; Put/Get/Head/
DeleteObject; multipart create, upload part, complete, abort (``api/storage_objects.py``). Anything
else S3 has answers ``NotImplemented``.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response

from activities.errors import StorageError
from activities.storage import access, catalog, keys, xml
from activities.storage.credentials import REGION
from api import storage_objects as objects_ops
from api.deps import get_state
from api.storage_http import XML_TYPE, PREFIX, S3Request, authenticate, s3_route

router = APIRouter(tags=["storage"])
ALL = ["GET", "HEAD", "PUT", "POST", "DELETE"]
SUPPORTED_BUCKET = {"list-type", "prefix", "delimiter", "max-keys", "continuation-token", "start-after",
                    "encoding-type", "fetch-owner", "location", "delete", "x-id"}
SUBRESOURCES = {"acl", "tagging", "uploads", "uploadId", "partNumber", "versionId", "versions", "location", "delete",
                "policy", "cors", "lifecycle", "retention", "legal-hold", "attributes", "restore", "select", "torrent",
                "website", "logging", "notification", "replication", "encryption", "ownershipControls",
                "publicAccessBlock", "object-lock", "accelerate", "requestPayment", "analytics", "inventory",
                "metrics", "intelligent-tiering", "versioning", "policyStatus", "session"}


def not_implemented(what: str) -> StorageError:
    return StorageError("NotImplemented", f"{what} is not implemented by this storage endpoint", 501)


def xml_response(body: bytes, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type=XML_TYPE)


@router.api_route(PREFIX, methods=ALL, include_in_schema=False)
@router.api_route(PREFIX + "/", methods=ALL, include_in_schema=False)
@s3_route
async def service(request: Request, s3: S3Request) -> Response:
    if request.method not in ("GET", "HEAD"):
        raise StorageError("MethodNotAllowed", "The specified method is not allowed against this resource.", 405)
    state = get_state(request)
    caller, _ = await authenticate(state, request, s3)
    def read() -> list:
        with state.db.read_session() as session:
            return access.visible_buckets(session, caller)

    return xml_response(xml.list_buckets(await asyncio.to_thread(read)))


@router.api_route(PREFIX + "/{bucket}", methods=ALL, include_in_schema=False)
@router.api_route(PREFIX + "/{bucket}/", methods=ALL, include_in_schema=False)
@s3_route
async def bucket(request: Request, s3: S3Request) -> Response:
    state = get_state(request)
    caller, claim = await authenticate(state, request, s3)
    name = keys.check_bucket(s3.bucket or "")
    unknown = sorted(k for k, _ in s3.query if k in SUBRESOURCES and k not in SUPPORTED_BUCKET)
    if unknown:
        raise not_implemented(f"bucket subresource ?{unknown[0]}")
    method = request.method
    if method == "POST" and s3.has("delete"):
        return await objects_ops.delete_objects(state, request, s3, caller, claim, name)
    return await asyncio.to_thread(_bucket_read, state, s3, caller, name, method)


def _bucket_read(state, s3: S3Request, caller, name: str, method: str) -> Response:
    with state.db.read_session() as session:
        access.authorize(session, caller, name, write=False)
        if method in ("PUT", "DELETE", "POST"):
            if method == "PUT":
                raise StorageError("BucketAlreadyOwnedByYou", "Buckets are made with their jobs; this one exists.",
                                   409)
            raise StorageError("AccessDenied", "Access Denied: buckets live and go with their jobs", 403)
        if method == "HEAD":
            return Response(status_code=200, headers={"x-amz-bucket-region": REGION})
        if s3.has("location"):
            return xml_response((xml.HEAD + f'<LocationConstraint xmlns="{xml.NS}"/>').encode())
        return xml_response(_list(session, name, s3))


def _list(session, name: str, s3: S3Request) -> bytes:
    if s3.param("list-type") != "2":
        raise not_implemented("ListObjects (version 1); use ListObjectsV2 (list-type=2)")
    encoding = s3.param("encoding-type")
    if encoding not in (None, "url"):
        raise StorageError("InvalidArgument", "Invalid Encoding Method specified in Request", 400)
    max_text = s3.param("max-keys")
    if max_text is not None and not max_text.isdigit():
        raise StorageError("InvalidArgument", "Provided max-keys not an integer or within integer range", 400)
    max_keys = min(int(max_text), 1000) if max_text is not None else 1000
    prefix = keys.check_prefix(s3.param("prefix") or "")
    delimiter = s3.param("delimiter") or ""
    start_after = s3.param("start-after") or ""
    token = s3.param("continuation-token")
    found = catalog.listing(session, name, prefix, delimiter, start_after, token, max_keys)
    return xml.list_objects_v2(name, found, prefix=prefix, delimiter=delimiter, max_keys=max_keys,
                               start_after=start_after, token=token, url_encoded=encoding == "url")


@router.api_route(PREFIX + "/{bucket}/{key:path}", methods=ALL, include_in_schema=False)
@s3_route
async def object_(request: Request, s3: S3Request) -> Response:
    state = get_state(request)
    caller, claim = await authenticate(state, request, s3)
    name = keys.check_bucket(s3.bucket or "")
    key = keys.check_key(s3.key or "")
    method = request.method
    unknown = sorted(k for k, _ in s3.query if k in SUBRESOURCES and k not in ("uploads", "uploadId", "partNumber"))
    if unknown:
        raise not_implemented(f"object subresource ?{unknown[0]}")
    if method == "POST" and s3.has("uploads"):
        return await objects_ops.create_upload(state, request, s3, caller, name, key)
    if s3.has("uploadId"):
        upload_id = s3.param("uploadId") or ""
        if method == "PUT":
            return await objects_ops.upload_part(state, request, s3, caller, claim, name, key, upload_id)
        if method == "POST":
            return await objects_ops.complete_upload(state, request, s3, caller, claim, name, key, upload_id)
        if method == "DELETE":
            return await objects_ops.abort_upload(state, caller, name, key, upload_id)
        raise not_implemented("ListParts")
    if method == "PUT":
        if request.headers.get("x-amz-copy-source"):
            raise not_implemented("CopyObject")
        return await objects_ops.put_object(state, request, s3, caller, claim, name, key)
    if method in ("GET", "HEAD"):
        return await objects_ops.get_object(state, request, s3, caller, name, key)
    if method == "DELETE":
        return await objects_ops.delete_object(state, caller, name, key)
    raise StorageError("MethodNotAllowed", "The specified method is not allowed against this resource.", 405)
