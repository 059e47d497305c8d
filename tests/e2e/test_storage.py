"""The S3-compatible storage endpoint against a running API, with real clients: boto3 (put, get,
ranges, listings with prefixes, delimiters and continuation, a 50 MiB multipart upload, presigned
URLs), the aws CLI (cp up and down, ls, sync with a personal API key), over HTTP and HTTPS (where
botocore sends aws-chunked bodies with a CRC32 trailer), and every refusal as S3's XML."""

from __future__ import annotations

import base64
import hashlib
import os
import zlib
from pathlib import Path

import httpx
import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.e2e.storage_clients import aws, endpoint, personal_key, s3_client, stage_job
from tests.servers.tls_proxy import make_pki

pytestmark = pytest.mark.e2e
MiB = 1024 * 1024


def error_code(exc: pytest.ExceptionInfo) -> str:
    return exc.value.response["Error"]["Code"]


def write_random(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        left = size
        while left:
            block = os.urandom(min(left, 4 * MiB))
            out.write(block)
            digest.update(block)
            left -= len(block)
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(4 * MiB):
            digest.update(block)
    return digest.hexdigest()


@pytest.fixture
def api_only(stack_factory):
    stack = stack_factory(start=False)
    stack.start_api()
    return stack


def test_boto3_objects_listings_multipart_and_refusals(api_only, tmp_path):
    stack = api_only
    job_id, access_key, secret = stage_job(stack)
    s3 = s3_client(stack, access_key, secret)

    put = s3.put_object(Bucket=job_id, Key="logs/train.txt", Body=b"hello storage", ContentType="text/plain")
    assert put["ETag"] == f'"{hashlib.md5(b"hello storage").hexdigest()}"'
    got = s3.get_object(Bucket=job_id, Key="logs/train.txt")
    assert got["Body"].read() == b"hello storage" and got["ContentType"] == "text/plain"
    assert s3.get_object(Bucket=job_id, Key="logs/train.txt", Range="bytes=6-12")["Body"].read() == b"storage"
    assert s3.head_object(Bucket=job_id, Key="logs/train.txt")["ContentLength"] == 13
    s3.head_bucket(Bucket=job_id)

    # listings: prefixes, delimiter, continuation, start-after, url-encoded keys
    names = [f"ckpt/step-{i:03d}/model.bin" for i in range(7)] + ["ckpt/notes with space+plus.txt", "top.txt"]
    for name in names:
        s3.put_object(Bucket=job_id, Key=name, Body=name.encode())
    top = s3.list_objects_v2(Bucket=job_id, Delimiter="/")
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["ckpt/", "logs/"]
    assert [c["Key"] for c in top["Contents"]] == ["top.txt"]
    seen, token, pages = [], None, 0
    while True:
        page = s3.list_objects_v2(Bucket=job_id, Prefix="ckpt/", MaxKeys=3,
                                  **({"ContinuationToken": token} if token else {}))
        pages += 1
        seen += [c["Key"] for c in page.get("Contents", [])]
        if not page["IsTruncated"]:
            break
        token = page["NextContinuationToken"]
    assert seen == sorted(n for n in names if n.startswith("ckpt/")) and pages == 3
    assert "ckpt/notes with space+plus.txt" in seen  # botocore asked encoding-type=url and decoded the answer
    raw = s3.list_objects_v2(Bucket=job_id, Prefix="ckpt/notes", EncodingType="url")  # asked by us: left encoded
    assert raw["EncodingType"] == "url" and raw["Contents"][0]["Key"] == "ckpt/notes%20with%20space%2Bplus.txt"
    nested = s3.list_objects_v2(Bucket=job_id, Prefix="ckpt/", Delimiter="/", StartAfter="ckpt/step-003/zzz")
    assert [p["Prefix"] for p in nested["CommonPrefixes"]] == [f"ckpt/step-{i:03d}/" for i in range(4, 7)]
    paginated = [c["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=job_id, PaginationConfig={"PageSize": 2})
                 for c in page.get("Contents", [])]
    assert len(paginated) == len(names) + 1

    # a 50 MiB file: multipart (8 MiB parts), read back whole and by range
    big = tmp_path / "big.bin"
    digest = write_random(big, 50 * MiB)
    s3.upload_file(str(big), job_id, "big.bin")
    head = s3.head_object(Bucket=job_id, Key="big.bin")
    assert head["ContentLength"] == 50 * MiB and head["ETag"].endswith('-7"')
    back = tmp_path / "back.bin"
    s3.download_file(job_id, "big.bin", str(back))
    assert sha256_of(back) == digest
    with open(big, "rb") as handle:
        handle.seek(20 * MiB)
        assert s3.get_object(Bucket=job_id, Key="big.bin", Range=f"bytes={20 * MiB}-{20 * MiB + 99}")["Body"].read() \
            == handle.read(100)

    # presigned GET, fetched by a plain HTTP client
    presigner = s3_client(stack, access_key, secret, signature_version="s3v4")
    url = presigner.generate_presigned_url("get_object", Params={"Bucket": job_id, "Key": "top.txt"}, ExpiresIn=60)
    assert httpx.get(url, trust_env=False).content == b"top.txt"
    tampered = httpx.get(url.replace("top.txt", "logs/train.txt"), trust_env=False)
    assert tampered.status_code == 403 and b"<Code>SignatureDoesNotMatch</Code>" in tampered.content

    # the job's upload progress, from the catalog's counters
    job = stack.expect(stack.client.get(f"/api/cloud/jobs/{job_id}"), 200)
    sizes = 13 + sum(len(n) for n in names) + 50 * MiB
    assert job["upload_progress"] == {"bytes": sizes, "objects": 1 + len(names) + 1}
    s3.delete_object(Bucket=job_id, Key="top.txt")
    with pytest.raises(ClientError) as missing:
        s3.get_object(Bucket=job_id, Key="top.txt")
    assert error_code(missing) == "NoSuchKey"
    s3.delete_objects(Bucket=job_id, Delete={"Objects": [{"Key": n} for n in names[:3]]})
    job = stack.expect(stack.client.get(f"/api/cloud/jobs/{job_id}"), 200)
    assert job["upload_progress"]["objects"] == len(names) - 3 + 1

    # refusals: wrong secret, another job's bucket, traversal, an unsigned request, a finished job
    with pytest.raises(ClientError) as wrong:
        s3_client(stack, access_key, secret + "x").get_object(Bucket=job_id, Key="big.bin")
    assert error_code(wrong) == "SignatureDoesNotMatch"
    with pytest.raises(ClientError) as unknown:
        s3_client(stack, "STJ00000000000000000", secret).list_objects_v2(Bucket=job_id)
    assert error_code(unknown) == "InvalidAccessKeyId"
    other_job, other_key, other_secret = stage_job(stack)
    with pytest.raises(ClientError) as foreign:
        s3.put_object(Bucket=other_job, Key="x", Body=b"x")
    assert error_code(foreign) == "AccessDenied"
    with pytest.raises(ClientError) as foreign_read:
        s3_client(stack, other_key, other_secret).get_object(Bucket=job_id, Key="big.bin")
    assert error_code(foreign_read) == "AccessDenied"
    for key in ("../escape.txt", "a/../../b", "a\\b", "./x", "a//b"):
        with pytest.raises(ClientError) as bad:
            s3.put_object(Bucket=job_id, Key=key, Body=b"x")
        assert error_code(bad) == "InvalidArgument", key
    with pytest.raises(ClientError) as too_long:
        s3.put_object(Bucket=job_id, Key="k" * 1025, Body=b"x")
    assert too_long.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert not list(stack.data_dir.rglob("escape.txt"))
    anonymous = httpx.get(f"{endpoint(stack)}/{job_id}/big.bin", trust_env=False)
    assert anonymous.status_code == 403 and anonymous.headers["content-type"] == "application/xml"
    assert b"<Code>AccessDenied</Code>" in anonymous.content and b"<RequestId>" in anonymous.content
    stack.sql_write("UPDATE job SET status = 'completed' WHERE id = :id", id=job_id)
    with pytest.raises(ClientError) as ended:
        s3.put_object(Bucket=job_id, Key="late.txt", Body=b"x")
    assert error_code(ended) == "AccessDenied"
    with pytest.raises(ClientError) as ended_read:
        s3.get_object(Bucket=job_id, Key="big.bin")
    assert error_code(ended_read) == "AccessDenied"


def _signed_chunked_put(stack, job_id: str, access_key: str, secret: str, key: str, data: bytes, crc: str):
    """An aws-chunked PUT with a CRC32 trailer, framed by hand (what botocore sends over HTTPS)."""
    body = (f"{len(data):x}\r\n".encode() + data + b"\r\n0\r\n" + f"x-amz-checksum-crc32:{crc}\r\n\r\n".encode())
    url = f"{endpoint(stack)}/{job_id}/{key}"
    request = AWSRequest(method="PUT", url=url, data=body, headers={
        "Content-Encoding": "aws-chunked", "X-Amz-Trailer": "x-amz-checksum-crc32",
        "X-Amz-Decoded-Content-Length": str(len(data))})
    request.context["checksum"] = {"request_algorithm": {"in": "trailer", "algorithm": "crc32"}}  # as botocore marks it
    S3SigV4Auth(Credentials(access_key, secret), "s3", "us-east-1").add_auth(request)
    return httpx.put(url, content=body, headers=dict(request.headers.items()), trust_env=False)


def test_aws_chunked_trailer_checked(api_only):
    stack = api_only
    job_id, access_key, secret = stage_job(stack)
    data = os.urandom(300_000)
    good = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    ok = _signed_chunked_put(stack, job_id, access_key, secret, "ok.bin", data, good)
    assert ok.status_code == 200, ok.text
    bad = _signed_chunked_put(stack, job_id, access_key, secret, "bad.bin", data, "AAAAAA==")
    assert bad.status_code == 400 and b"<Code>BadDigest</Code>" in bad.content
    s3 = s3_client(stack, access_key, secret)
    assert s3.get_object(Bucket=job_id, Key="ok.bin")["Body"].read() == data
    with pytest.raises(ClientError) as missing:
        s3.head_object(Bucket=job_id, Key="bad.bin")
    assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert not [p for p in stack.data_dir.rglob(".tmp-*")], "a refused upload leaves no temporary file"


def test_aws_cli_cp_ls_and_sync_with_a_personal_key(api_only, tmp_path):
    stack = api_only
    job_id, access_key, secret = stage_job(stack)
    source = tmp_path / "weights.bin"
    digest = write_random(source, 12 * MiB)  # above the CLI's 8 MiB multipart threshold
    up = aws(stack, access_key, secret, "s3", "cp", str(source), f"s3://{job_id}/run/weights.bin")
    assert up.returncode == 0, up.stderr
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "a b.json").write_text("{}")
    up_dir = aws(stack, access_key, secret, "s3", "cp", "--recursive", str(tmp_path / "cfg"), f"s3://{job_id}/run/cfg/")
    assert up_dir.returncode == 0, up_dir.stderr
    down = aws(stack, access_key, secret, "s3", "cp", f"s3://{job_id}/run/weights.bin", str(tmp_path / "down.bin"))
    assert down.returncode == 0, down.stderr
    assert sha256_of(tmp_path / "down.bin") == digest
    listed = aws(stack, access_key, secret, "s3", "ls", "--recursive", f"s3://{job_id}/")
    assert listed.returncode == 0, listed.stderr
    assert "run/weights.bin" in listed.stdout and "run/cfg/a b.json" in listed.stdout

    key_id, token = personal_key(stack)
    buckets = aws(stack, key_id, token, "s3", "ls")
    assert buckets.returncode == 0 and job_id in buckets.stdout, buckets.stderr
    out = tmp_path / "out"
    synced = aws(stack, key_id, token, "s3", "sync", f"s3://{job_id}", str(out))
    assert synced.returncode == 0, synced.stderr
    assert sha256_of(out / "run" / "weights.bin") == digest and (out / "run" / "cfg" / "a b.json").read_text() == "{}"
    refused = aws(stack, key_id, token, "s3", "cp", str(source), f"s3://{job_id}/mine.bin")
    assert refused.returncode != 0 and "AccessDenied" in refused.stderr
    stack.expect(stack.client.delete(f"/api/auth/api-keys/{key_id}"), 200)
    revoked = aws(stack, key_id, token, "s3", "ls", f"s3://{job_id}/")
    assert revoked.returncode != 0 and "AccessDenied" in revoked.stderr


def test_over_https_streaming_trailer_and_cli(stack_factory, tmp_path):
    stack = stack_factory(start=False, api_tls=make_pki(tmp_path / "pki"))
    stack.start_api()
    job_id, access_key, secret = stage_job(stack)
    s3 = s3_client(stack, access_key, secret)
    sent: list[dict] = []
    s3.meta.events.register("before-send.s3.*", lambda request, **_: sent.append(
        {k.lower(): v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}
        | {"url": request.url}))
    data = os.urandom(3 * MiB)
    s3.put_object(Bucket=job_id, Key="tls/small.bin", Body=data)
    assert sent[-1]["x-amz-content-sha256"] == "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
    assert sent[-1]["content-encoding"] == "aws-chunked"
    assert s3.get_object(Bucket=job_id, Key="tls/small.bin", ChecksumMode="ENABLED")["Body"].read() == data
    big = tmp_path / "big.bin"
    digest = write_random(big, 20 * MiB)
    s3.upload_file(str(big), job_id, "tls/big.bin")  # parts carry CRC32 trailers, the completion their checksums
    assert any(h.get("x-amz-content-sha256") == "STREAMING-UNSIGNED-PAYLOAD-TRAILER" and "partNumber=" in h["url"]
               for h in sent)
    s3.download_file(job_id, "tls/big.bin", str(tmp_path / "back.bin"))
    assert sha256_of(tmp_path / "back.bin") == digest
    down = aws(stack, access_key, secret, "s3", "cp", f"s3://{job_id}/tls/big.bin", str(tmp_path / "cli.bin"))
    assert down.returncode == 0, down.stderr
    assert sha256_of(tmp_path / "cli.bin") == digest
