"""SigV4 verification of the storage endpoint against what botocore's own signers produce: header
and presigned requests, payload modes, raw (unnormalised) paths, ports in host, wrong secrets,
tampered requests, skewed clocks and expired URLs."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from urllib.parse import unquote_plus, urlsplit

import pytest
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from starlette.datastructures import Headers

from activities.errors import StorageError
from activities.storage import sigv4

CREDS = Credentials("STJ0123456789ABCDEFG", "s3cr3t/with+chars")
BASE = "http://127.0.0.1:8123/api/cloud/storage/job-0123456789abcdef01234567"


def _query(url: str) -> list[tuple[str, str]]:
    query = urlsplit(url).query
    return [(unquote_plus(k), unquote_plus(v)) for k, _, v in (p.partition("=") for p in query.split("&") if p)]


def _received(request, host: str = "127.0.0.1:8123") -> Headers:
    """The headers as the server sees them (the HTTP client adds host, with the port)."""
    pairs = [(k.lower().encode(), (v if isinstance(v, bytes) else v.encode())) for k, v in request.headers.items()]
    return Headers(raw=pairs + [(b"host", host.encode())])


def _signed(method: str, url: str, headers: dict | None = None, data: bytes = b"", region: str = "us-east-1"):
    request = AWSRequest(method=method, url=url, headers=headers or {}, data=data)
    S3SigV4Auth(CREDS, "s3", region).add_auth(request)
    return request


def _verify(request, secret: str = CREDS.secret_key, method: str | None = None, host: str = "127.0.0.1:8123"):
    headers = _received(request, host)
    query = _query(request.url)
    claim = sigv4.parse(headers, query)
    sigv4.check_time(claim)
    sigv4.verify(claim, secret, method or request.method, urlsplit(request.url).path, query, headers)
    return claim


@pytest.mark.parametrize("path", ["/key.txt", "/a%20b/c%2Bd.txt", "/dir/../x", "/%E2%9C%93/%7Etilde", "/a//b"])
def test_header_signatures_of_botocore_verify_on_the_raw_path(path):
    claim = _verify(_signed("PUT", BASE + path, {"Content-Type": "text/plain"}, b"payload"))
    assert sigv4.is_sha256_hex(claim.payload_hash) and claim.access_key_id == CREDS.access_key


def test_query_parameters_and_other_regions_verify():
    request = _signed("GET", BASE + "?list-type=2&prefix=a%20b%2F&max-keys=5&encoding-type=url", region="eu-west-3")
    assert _verify(request).region == "eu-west-3"


def test_streaming_trailer_claim():  # UNSIGNED-PAYLOAD: the presigned test
    request = AWSRequest(method="PUT", url=BASE + "/k", data=b"framed", headers={"Content-Encoding": "aws-chunked"})
    request.context["checksum"] = {"request_algorithm": {"in": "trailer", "algorithm": "crc32"}}
    S3SigV4Auth(CREDS, "s3", "us-east-1").add_auth(request)
    assert _verify(request).payload_hash == "STREAMING-UNSIGNED-PAYLOAD-TRAILER"


def test_presigned_urls_verify_and_expire():
    request = AWSRequest(method="GET", url=BASE + "/a%20b.txt")
    S3SigV4QueryAuth(CREDS, "s3", "us-east-1", expires=60).add_auth(request)
    query = _query(request.url)
    headers = Headers(raw=[(b"host", b"127.0.0.1:8123")])
    claim = sigv4.parse(headers, query)
    assert claim.presigned and claim.payload_hash == "UNSIGNED-PAYLOAD"
    sigv4.verify(claim, CREDS.secret_key, "GET", urlsplit(request.url).path, query, headers)
    with pytest.raises(StorageError) as expired:
        sigv4.check_time(claim, datetime.now(timezone.utc) + timedelta(seconds=61))
    assert expired.value.code == "AccessDenied" and "expired" in expired.value.detail
    with pytest.raises(StorageError) as other_method:
        sigv4.verify(claim, CREDS.secret_key, "DELETE", urlsplit(request.url).path, query, headers)
    assert other_method.value.code == "SignatureDoesNotMatch"


@pytest.mark.parametrize("tamper", ["secret", "path", "host", "header", "method", "query"])
def test_any_change_breaks_the_signature(tamper):
    request = _signed("PUT", BASE + "/k?partNumber=1&uploadId=abc", {"Content-Type": "text/plain"}, b"x")
    headers = _received(request, "127.0.0.1:9999" if tamper == "host" else "127.0.0.1:8123")
    if tamper == "header":
        headers = Headers(raw=[(k, b"text/html" if k == b"content-type" else v) for k, v in headers.raw])
    query = _query(request.url)
    if tamper == "query":
        query = [(k, "2" if k == "partNumber" else v) for k, v in query]
    claim = sigv4.parse(headers, query)
    path = urlsplit(request.url).path + ("x" if tamper == "path" else "")
    with pytest.raises(StorageError) as refused:
        sigv4.verify(claim, CREDS.secret_key + ("!" if tamper == "secret" else ""),
                     "POST" if tamper == "method" else "PUT", path, query, headers)
    assert refused.value.code == "SignatureDoesNotMatch" and refused.value.status_code == 403


def test_skew_anonymous_and_malformed():
    request = _signed("GET", BASE + "/k")
    claim = sigv4.parse(_received(request), [])
    with pytest.raises(StorageError) as skewed:
        sigv4.check_time(claim, datetime.now(timezone.utc) + timedelta(minutes=16))
    assert skewed.value.code == "RequestTimeTooSkewed"
    sigv4.check_time(claim, datetime.now(timezone.utc) + timedelta(minutes=14))
    assert sigv4.parse(Headers(raw=[(b"host", b"h")]), []) is None
    with pytest.raises(StorageError) as v2:
        sigv4.parse(Headers(raw=[(b"authorization", b"AWS AKID:sig")]), [])
    assert v2.value.code == "InvalidRequest"
    with pytest.raises(StorageError) as malformed:
        sigv4.parse(Headers(raw=[(b"authorization", b"AWS4-HMAC-SHA256 Credential=a/b, Signature=x")]), [])
    assert malformed.value.code == "AuthorizationHeaderMalformed"
    assert sigv4.access_key_of(request.headers["Authorization"], "") == CREDS.access_key
