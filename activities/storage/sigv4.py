"""Signature Version 4 of a request to the storage endpoint, checked from the request as it arrived.

``parse`` reads what the request claims: the ``Authorization`` header (``AWS4-HMAC-SHA256
Credential=…, SignedHeaders=…, Signature=…``) or a presigned URL's ``X-Amz-*`` query parameters.
``check_time`` refuses a clock more than 15 minutes off and an expired presigned URL. ``verify``
rebuilds the canonical request with botocore's own S3 signer, fed the raw path as sent (S3 paths are
not normalised), the query pairs (minus ``X-Amz-Signature``), exactly the headers the request names in
its ``SignedHeaders`` (``host`` with its port, as received) and the payload hash it claims; then
compares signatures in constant time. Which payload hash is honest is checked later, against the body
(``body.py``).
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Protocol

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

from activities.errors import StorageError

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
MAX_SKEW = timedelta(minutes=15)
MAX_PRESIGN_SECONDS = 7 * 24 * 3600
_AUTH = re.compile(r"^AWS4-HMAC-SHA256\s+(?P<fields>.+)$", re.S)
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_AMZ_DATE = "%Y%m%dT%H%M%SZ"


class HeaderSource(Protocol):
    def get(self, key: str, default: str | None = None) -> str | None: ...

    def getlist(self, key: str) -> list[str]: ...


@dataclass(frozen=True)
class Claim:
    """What a signed request says about itself."""
    access_key_id: str
    scope_date: str  # yyyymmdd of the credential scope
    region: str
    amz_date: str  # yyyymmddThhmmssZ
    signed_headers: tuple[str, ...]
    signature: str
    payload_hash: str  # x-amz-content-sha256 (UNSIGNED-PAYLOAD for a presigned URL without it)
    expires: int | None = None  # presigned URLs: seconds after amz_date

    @property
    def presigned(self) -> bool:
        return self.expires is not None


def _malformed(message: str) -> StorageError:
    return StorageError("AuthorizationHeaderMalformed", message, 400)


def _credential(value: str, malformed=_malformed) -> tuple[str, str, str]:
    parts = value.split("/")
    if len(parts) != 5 or parts[3] != "s3" or parts[4] != "aws4_request" or not re.fullmatch(r"\d{8}", parts[1]) \
            or not parts[0] or not parts[2]:
        raise malformed("Credential must be <access key>/<yyyymmdd>/<region>/s3/aws4_request")
    return parts[0], parts[1], parts[2]


def parse(headers: HeaderSource, query: list[tuple[str, str]]) -> Claim | None:
    """The request's claim, or None when it carries no credentials at all (anonymous)."""
    params = dict(query)
    authorization = headers.get("authorization")
    if authorization is not None:
        return _from_header(authorization, headers)
    if "X-Amz-Signature" in params or "X-Amz-Credential" in params or "X-Amz-Algorithm" in params:
        return _from_query(params, headers)
    if "AWSAccessKeyId" in params or "Signature" in params:
        raise StorageError("InvalidRequest", "Signature Version 2 presigned URLs are not supported. Please use "
                           "AWS4-HMAC-SHA256 (boto3: Config(signature_version='s3v4')).", 400)
    return None


def _from_header(authorization: str, headers: HeaderSource) -> Claim:
    found = _AUTH.match(authorization.strip())
    if found is None:
        raise StorageError("InvalidRequest", "The authorization mechanism you have provided is not supported. "
                           "Please use AWS4-HMAC-SHA256.", 400)
    fields: dict[str, str] = {}
    for item in found.group("fields").split(","):
        name, sep, value = item.strip().partition("=")
        if not sep:
            raise _malformed(f"malformed Authorization field {name[:40]!r}")
        fields[name] = value
    if not {"Credential", "SignedHeaders", "Signature"} <= fields.keys():
        raise _malformed("Authorization must carry Credential, SignedHeaders and Signature")
    key, day, region = _credential(fields["Credential"])
    amz_date = headers.get("x-amz-date")
    if not amz_date:
        raise StorageError("AccessDenied", "AWS authentication requires a valid x-amz-date header", 403)
    payload = headers.get("x-amz-content-sha256")
    if not payload:
        raise StorageError("InvalidRequest", "Missing required header for this request: x-amz-content-sha256", 400)
    return Claim(key, day, region, amz_date, _signed_headers(fields["SignedHeaders"]), fields["Signature"],
                 payload)


def _from_query(params: dict[str, str], headers: HeaderSource) -> Claim:
    def malformed(message: str) -> StorageError:
        return StorageError("AuthorizationQueryParametersError", message, 400)

    needed = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders",
              "X-Amz-Signature")
    missing = [name for name in needed if not params.get(name)]
    if missing:
        raise malformed(f"presigned URL without {', '.join(missing)}")
    if params["X-Amz-Algorithm"] != ALGORITHM:
        raise malformed(f"X-Amz-Algorithm only supports {ALGORITHM}")
    if not params["X-Amz-Expires"].isdigit() or not 1 <= int(params["X-Amz-Expires"]) <= MAX_PRESIGN_SECONDS:
        raise malformed(f"X-Amz-Expires must be between 1 and {MAX_PRESIGN_SECONDS} seconds")
    key, day, region = _credential(params["X-Amz-Credential"], malformed)
    payload = params.get("X-Amz-Content-Sha256") or headers.get("x-amz-content-sha256") or UNSIGNED_PAYLOAD
    return Claim(key, day, region, params["X-Amz-Date"], _signed_headers(params["X-Amz-SignedHeaders"]),
                 params["X-Amz-Signature"], payload, int(params["X-Amz-Expires"]))


def _signed_headers(value: str) -> tuple[str, ...]:
    names = tuple(value.split(";"))
    if "host" not in names or any(not n or n != n.strip().lower() for n in names):
        raise _malformed("SignedHeaders must be lower-case names separated by ';' and include host")
    return names


def check_time(claim: Claim, now: datetime | None = None) -> None:
    """RequestTimeTooSkewed beyond 15 minutes either way; an expired presigned URL is AccessDenied."""
    now = now or datetime.now(timezone.utc)
    try:
        signed_at = datetime.strptime(claim.amz_date, _AMZ_DATE).replace(tzinfo=timezone.utc)
    except ValueError:
        raise StorageError("AccessDenied", "X-Amz-Date must look like 20240101T000000Z", 403) from None
    if claim.amz_date[:8] != claim.scope_date:
        raise StorageError("SignatureDoesNotMatch", "the credential scope's date is not the day of X-Amz-Date", 403)
    if claim.presigned:
        if now > signed_at + timedelta(seconds=claim.expires or 0):
            raise StorageError("AccessDenied", "Request has expired", 403)
        if signed_at - now > MAX_SKEW:
            raise StorageError("RequestTimeTooSkewed", "The difference between the request time and the "
                               "server's time is too large.", 403)
        return
    if abs(now - signed_at) > MAX_SKEW:
        raise StorageError("RequestTimeTooSkewed", "The difference between the request time and the server's "
                           "time is too large.", 403)


class _ServerSigner(S3SigV4Auth):
    """botocore's S3 signer, told the request's raw path, query, signed headers and payload hash."""

    def __init__(self, claim: Claim, secret: str, raw_path: str, query: list[tuple[str, str]],
                 headers: HeaderSource) -> None:
        super().__init__(Credentials(claim.access_key_id, secret), "s3", claim.region)
        self._claim, self._raw_path = claim, raw_path
        self._query = [(k, v) for k, v in query if not (claim.presigned and k == "X-Amz-Signature")]
        self._headers = HTTPHeaders()
        for name in claim.signed_headers:
            for value in headers.getlist(name):
                self._headers[name] = value

    def headers_to_sign(self, request):
        return self._headers

    def canonical_query_string(self, request):
        return self._canonical_query_string_params(self._query) if self._query else ""

    def _normalize_url_path(self, path):
        return self._raw_path

    def payload(self, request):
        return self._claim.payload_hash


def expected_signature(claim: Claim, secret: str, method: str, raw_path: str, query: list[tuple[str, str]],
                       headers: HeaderSource) -> str:
    signer = _ServerSigner(claim, secret, raw_path, query, headers)
    request = AWSRequest(method=method, url="http://storage.invalid/")
    request.context["timestamp"] = claim.amz_date
    canonical = signer.canonical_request(request)
    return signer.signature(signer.string_to_sign(request, canonical), request)


def verify(claim: Claim, secret: str, method: str, raw_path: str, query: list[tuple[str, str]],
           headers: HeaderSource) -> None:
    """SignatureDoesNotMatch unless ``claim.signature`` is the request's signature under ``secret``."""
    expected = expected_signature(claim, secret, method, raw_path, query, headers)
    if not hmac.compare_digest(expected.encode(), claim.signature.encode("utf-8", "replace")):
        raise StorageError("SignatureDoesNotMatch", "The request signature we calculated does not match the "
                           "signature you provided. Check your key and signing method.", 403)


def is_sha256_hex(value: str) -> bool:
    return bool(_HEX64.match(value))


_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")
_QUERY_CREDENTIAL = re.compile(r"(?:^|&)X-Amz-Credential=([^&%/]+)(?:%2F|/)", re.I)


def access_key_of(authorization: str | None, query_string: str) -> str | None:
    """The access key id a request names (header or presigned URL), unverified: for choosing its rate
    limit before anything else is read."""
    found = _CREDENTIAL.search(authorization) if authorization else _QUERY_CREDENTIAL.search(query_string)
    return found.group(1) if found else None
