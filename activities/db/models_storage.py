"""Tables of the S3-compatible storage endpoint (``activities/storage``).

``StorageCredential``: a job's upload credential (one per job, its secret sealed with the credential
cipher). ``StorageObject``: one row per stored object: its metadata and the name of the file under the
bucket's directory that holds its bytes. Keys are compared byte-wise (UTF-8 order, as S3 lists them):
SQLite's default collation already is; PostgreSQL is told ``C``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, String
from sqlmodel import Field, SQLModel

from activities.db.models import utcnow

KEY_TYPE = String(1024).with_variant(String(1024, collation="C"), "postgresql")


class StorageCredential(SQLModel, table=True):
    access_key_id: str = Field(primary_key=True, max_length=20)  # "STJ" + 17 upper-case letters and digits
    secret_sealed: str  # credential_crypto ciphertext of the secret access key
    job_id: str = Field(unique=True, index=True)
    bucket: str
    created_at: datetime = Field(default_factory=utcnow)


class StorageObject(SQLModel, table=True):
    bucket: str = Field(primary_key=True, max_length=63)
    key: str = Field(sa_column=Column(KEY_TYPE, primary_key=True))
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    etag: str  # without quotes: md5 hex, or md5-of-part-md5s "-N" for a multipart upload
    content_type: str = "binary/octet-stream"
    checksum_crc32: str | None = None  # base64, as x-amz-checksum-crc32 (whole-object uploads only)
    data_name: str  # file name under <storage_root>/<bucket>/data/
    last_modified: datetime = Field(default_factory=utcnow)
