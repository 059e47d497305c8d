"""S3's XML documents: the answers the endpoint gives and the two request bodies it reads.

Answers are built as text with every value escaped; request bodies (CompleteMultipartUpload,
DeleteObjects) are parsed by the standard library's expat parser, which refuses external entities
and entity expansion bombs, after the router has capped their size.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from urllib.parse import quote
from xml.sax.saxutils import escape

from activities.errors import StorageError

NS = "http://s3.amazonaws.com/doc/2006-03-01/"
HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n'
OWNER = "<Owner><ID>simpletuner</ID><DisplayName>simpletuner</DisplayName></Owner>"


def iso(moment: datetime) -> str:
    moment = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _el(name: str, value: object) -> str:
    return f"<{name}>{escape(str(value))}</{name}>"


def error(code: str, message: str, resource: str, request_id: str) -> bytes:
    return (HEAD + "<Error>" + _el("Code", code) + _el("Message", message) + _el("Resource", resource)
            + _el("RequestId", request_id) + "</Error>").encode()


def list_buckets(buckets: list[tuple[str, datetime]]) -> bytes:
    items = "".join(f"<Bucket>{_el('Name', name)}{_el('CreationDate', iso(created))}</Bucket>"
                    for name, created in buckets)
    return (HEAD + f'<ListAllMyBucketsResult xmlns="{NS}">{OWNER}<Buckets>{items}</Buckets>'
            "</ListAllMyBucketsResult>").encode()


def list_objects_v2(bucket: str, found, *, prefix: str, delimiter: str, max_keys: int, start_after: str,
                    token: str | None, url_encoded: bool) -> bytes:
    enc = (lambda s: quote(s, safe="/")) if url_encoded else (lambda s: s)
    parts = [_el("Name", bucket), _el("Prefix", enc(prefix))]
    if delimiter:
        parts.append(_el("Delimiter", enc(delimiter)))
    parts += [_el("MaxKeys", max_keys), _el("KeyCount", len(found.contents) + len(found.prefixes)),
              _el("IsTruncated", "true" if found.truncated else "false")]
    if url_encoded:
        parts.append(_el("EncodingType", "url"))
    if token is not None:
        parts.append(_el("ContinuationToken", token))
    if found.truncated and found.next_token:
        parts.append(_el("NextContinuationToken", found.next_token))
    if start_after:
        parts.append(_el("StartAfter", enc(start_after)))
    for row in found.contents:
        parts.append("<Contents>" + _el("Key", enc(row.key)) + _el("LastModified", iso(row.last_modified))
                     + _el("ETag", f'"{row.etag}"') + _el("Size", row.size) + _el("StorageClass", "STANDARD")
                     + "</Contents>")
    for common in found.prefixes:
        parts.append("<CommonPrefixes>" + _el("Prefix", enc(common)) + "</CommonPrefixes>")
    return (HEAD + f'<ListBucketResult xmlns="{NS}">' + "".join(parts) + "</ListBucketResult>").encode()


def initiate_multipart(bucket: str, key: str, upload_id: str) -> bytes:
    return (HEAD + f'<InitiateMultipartUploadResult xmlns="{NS}">' + _el("Bucket", bucket) + _el("Key", key)
            + _el("UploadId", upload_id) + "</InitiateMultipartUploadResult>").encode()


def complete_multipart(location: str, bucket: str, key: str, etag: str) -> bytes:
    return (HEAD + f'<CompleteMultipartUploadResult xmlns="{NS}">' + _el("Location", location)
            + _el("Bucket", bucket) + _el("Key", key) + _el("ETag", f'"{etag}"')
            + "</CompleteMultipartUploadResult>").encode()


def delete_result(deleted: list[str], errors: list[tuple[str, str, str]], quiet: bool) -> bytes:
    body = "" if quiet else "".join(f"<Deleted>{_el('Key', key)}</Deleted>" for key in deleted)
    body += "".join(f"<Error>{_el('Key', key)}{_el('Code', code)}{_el('Message', message)}</Error>"
                    for key, code, message in errors)
    return (HEAD + f'<DeleteResult xmlns="{NS}">{body}</DeleteResult>').encode()


def _parse(body: bytes) -> ET.Element:
    try:
        return ET.fromstring(body)
    except ET.ParseError:
        raise StorageError("MalformedXML", "The XML you provided was not well-formed or did not validate against "
                           "our published schema", 400) from None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(element: ET.Element, name: str, strip: bool = True) -> str | None:
    for child in element:
        if _local(child.tag) == name:
            return (child.text or "").strip() if strip else (child.text or "")
    return None


def parse_complete(body: bytes) -> list[tuple[int, str, str | None]]:
    """(PartNumber, ETag, ChecksumCRC32 or None) of each ``<Part>`` of a CompleteMultipartUpload body."""
    root = _parse(body)
    parts = []
    for part in root:
        if _local(part.tag) != "Part":
            continue
        number, etag = _child(part, "PartNumber"), _child(part, "ETag")
        if number is None or not number.isdigit() or etag is None:
            raise StorageError("MalformedXML", "each Part needs a PartNumber and an ETag", 400)
        parts.append((int(number), etag, _child(part, "ChecksumCRC32") or None))
    return parts


def parse_delete(body: bytes) -> tuple[list[str], bool]:
    """The keys of a DeleteObjects body and whether it asked for a quiet answer."""
    root = _parse(body)
    keys = [key for obj in root if _local(obj.tag) == "Object" for key in [_child(obj, "Key", strip=False)] if key is not None]
    return keys, (_child(root, "Quiet") or "").lower() == "true"
