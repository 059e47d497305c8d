"""The HTTP edge of the storage endpoint (``api/routers/storage.py``): the request as S3 clients sent
it (raw path, query pairs, bucket and key), SigV4 authentication, and S3-shaped answers (XML errors
with a request id, object bodies streamed from disk with ``Range`` support).

Every answer of these routes is S3's: a ``StorageError`` becomes ``<Error>`` XML with its status, a
client that went away mid-body is answered 400 ``IncompleteBody``, anything unexpected is logged and
answered ``InternalError`` XML, never FastAPI's JSON.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from dataclasses import dataclass
from email.utils import format_datetime
from urllib.parse import quote, unquote, unquote_plus

from fastapi import Request, Response
from fastapi.responses import StreamingResponse
from starlette.requests import ClientDisconnect

from activities.db.models import as_utc
from activities.errors import StorageError
from activities.secrets.credential_crypto import UndecryptableError
from activities.storage import credentials, objects, sigv4, xml
from activities.storage.credentials import Caller
from activities.storage.sigv4 import Claim

log = logging.getLogger("simpletuner.storage")
PREFIX = credentials.STORAGE_PATH
XML_TYPE = "application/xml"
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass(frozen=True)
class S3Request:
    raw_path: str  # as sent, percent-encoding and all (what the signature covers)
    query: list[tuple[str, str]]
    bucket: str | None
    key: str | None
    request_id: str

    def param(self, name: str) -> str | None:
        return next((v for k, v in self.query if k == name), None)

    def has(self, name: str) -> bool:
        return any(k == name for k, _ in self.query)

    @property
    def resource(self) -> str:
        return "/" + "/".join(p for p in (self.bucket, self.key) if p)


def parse_request(request: Request) -> S3Request:
    scope = request.scope
    raw = scope.get("raw_path") or quote(scope["path"]).encode()
    raw_path = raw.decode("latin-1").split("?", 1)[0]
    query_text = scope.get("query_string", b"").decode("latin-1")
    query = [(unquote_plus(k), unquote_plus(v)) for k, _, v in (p.partition("=") for p in query_text.split("&") if p)]
    rest = raw_path[len(PREFIX):].lstrip("/") if raw_path.startswith(PREFIX) else ""
    bucket_part, sep, key_part = rest.partition("/")
    try:
        bucket = unquote(bucket_part, errors="strict") or None
        key = unquote(key_part, errors="strict") if sep and key_part else None
    except UnicodeDecodeError:
        raise StorageError("InvalidURI", "Couldn't parse the specified URI.", 400) from None
    return S3Request(raw_path, query, bucket, key, secrets.token_hex(8).upper())


def error_response(exc: StorageError, s3: S3Request | None, head: bool = False) -> Response:
    request_id = s3.request_id if s3 else secrets.token_hex(8).upper()
    body = xml.error(exc.code, exc.detail, s3.resource if s3 else PREFIX, request_id)
    headers = {"x-amz-request-id": request_id}
    if head or exc.status_code == 304:  # HEAD answers carry no body; botocore reads the status (and the code from x-amz-error-code)
        return Response(status_code=exc.status_code, headers={**headers, "x-amz-error-code": exc.code})
    return Response(body, status_code=exc.status_code, media_type=XML_TYPE, headers=headers)


def s3_route(handler):
    """Wrap a route so that every answer, refusals and failures included, is S3's."""

    async def wrapper(request: Request) -> Response:
        s3 = None
        head = request.method == "HEAD"
        try:
            s3 = parse_request(request)
            response = await handler(request, s3)
            response.headers.setdefault("x-amz-request-id", s3.request_id)
            return response
        except StorageError as exc:
            return _closing(request, error_response(exc, s3, head))
        except ClientDisconnect:
            return error_response(StorageError("IncompleteBody", "The client went away before sending the whole "
                                               "body", 400), s3, head)
        except UndecryptableError:
            log.error("a storage credential cannot be decrypted with the configured key(s)")
            return error_response(StorageError("InternalError", "The server cannot read this credential", 500),
                                  s3, head)
        except Exception:
            log.exception("storage request failed: %s %s", request.method, request.url.path)
            return _closing(request, error_response(StorageError("InternalError", "We encountered an internal "
                                                                 "error. Please try again.", 500), s3, head))

    wrapper.__name__, wrapper.__doc__ = handler.__name__, handler.__doc__  # not functools.wraps: FastAPI
    return wrapper  # would read the handler's own signature through __wrapped__


def _closing(request: Request, response: Response) -> Response:
    """A refused request may leave its body unread (botocore sends ``Expect: 100-continue`` and then no
    body): the connection cannot carry another request, so the answer closes it."""
    has_body = request.headers.get("transfer-encoding") or (request.headers.get("content-length") or "0") != "0"
    if has_body and request.method in ("PUT", "POST"):
        response.headers["Connection"] = "close"
    return response


def _authenticate_sync(state, request: Request, s3: S3Request) -> tuple[Caller, Claim]:
    claim = sigv4.parse(request.headers, s3.query)
    if claim is None:
        raise StorageError("AccessDenied", "Access Denied: sign requests with AWS Signature Version 4 "
                           "(a job's upload credential or a personal API key)", 403)
    sigv4.check_time(claim)
    with state.db.read_session() as session:
        caller = credentials.resolve(session, claim.access_key_id)
    sigv4.verify(claim, caller.secret, request.method, s3.raw_path, s3.query, request.headers)
    return caller, claim


async def authenticate(state, request: Request, s3: S3Request) -> tuple[Caller, Claim]:
    """The verified caller and its claim (payload hash, ...), or the S3 refusal."""
    return await asyncio.to_thread(_authenticate_sync, state, request, s3)


def http_date(moment) -> str:
    return format_datetime(as_utc(moment), usegmt=True)


def object_headers(row) -> dict[str, str]:
    return {"ETag": f'"{row.etag}"', "Last-Modified": http_date(row.last_modified), "Accept-Ranges": "bytes",
            "Content-Type": row.content_type}


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, length) of a single ``Range: bytes=…``; None for the whole object (also for a header S3
    ignores); InvalidRange when it cannot be satisfied."""
    found = _RANGE.match(header.strip()) if header else None
    if found is None:
        return None
    first, last = found.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        count = int(last)
        if count == 0:
            raise _invalid_range(size)
        return max(0, size - count), min(count, size)
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or (last and int(last) < start):
        raise _invalid_range(size)
    return start, end - start + 1


def _invalid_range(size: int) -> StorageError:
    return StorageError("InvalidRange", f"The requested range is not satisfiable (object size {size})", 416)


def stream_file(handle, start: int, length: int, status: int, headers: dict[str, str]) -> StreamingResponse:
    """The open data file's bytes ``start``..``start+length`` (read in worker threads); closes it."""

    def blocks():
        try:
            yield from objects.read_range(handle, start, length)
        finally:
            handle.close()

    return StreamingResponse(blocks(), status_code=status, headers={**headers, "Content-Length": str(length)})
