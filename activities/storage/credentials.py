"""Who signs requests to the storage endpoint, and with which secret.

Two kinds of S3 credentials:

- **a job's upload credential** (``StorageCredential``): access key ``STJ`` + 17 upper-case letters and
  digits, a random secret sealed with the credential cipher (``credential_crypto``), one per job and
  issued idempotently (``issue_job_credential``), so the job's environment (``job_storage_env``) can be
  rebuilt on every attempt. It reaches only the job's own bucket, only while the job is not finished.
- **a personal API key**: access key = the key's id, secret = the key itself. Keys are stored hashed;
  the signature check needs the secret, so keys created since this endpoint existed also keep it sealed
  (``ApiKey.s3_secret_sealed``). Older keys answer ``InvalidAccessKeyId`` saying to create a new key.
  Revoked or expired keys and disabled accounts are refused (``AccessDenied``) once the signature shows
  the caller holds the key.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from activities.db.models import ApiKey, User, utcnow
from activities.db.models_storage import StorageCredential
from activities.errors import NotFound, StorageError, Unauthorized
from activities.identity.principals import Principal, principal_for
from activities.secrets import credential_crypto

JOB_KEY_PREFIX = "STJ"
REGION = "us-east-1"  # what jobs are told; signatures naming any region are accepted
_ALPHABET = string.ascii_uppercase + string.digits
STORAGE_PATH = "/api/cloud/storage"


@dataclass(frozen=True)
class Caller:
    access_key_id: str
    secret: str
    job_id: str | None = None  # a job credential: the one job (and bucket) it serves
    principal: Principal | None = None  # a personal API key: its owner as they are now
    refusal: str | None = None  # refused once the signature is checked (revoked, expired, disabled)


def new_access_key_id() -> str:
    return JOB_KEY_PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(17))


def issue_job_credential(session: Session, job_id: str) -> tuple[str, str]:
    """The job's (access key id, secret), created on first use; the same pair every later time."""
    cipher = credential_crypto.current()
    row = session.exec(select(StorageCredential).where(StorageCredential.job_id == job_id)).first()
    if row is not None:
        return row.access_key_id, cipher.decrypt(row.secret_sealed)
    from activities.jobs.jobs import get as get_job
    get_job(session, job_id)  # NotFound for a job that does not exist
    secret = secrets.token_urlsafe(30)
    row = StorageCredential(access_key_id=new_access_key_id(), secret_sealed=cipher.encrypt(secret),
                            job_id=job_id, bucket=job_id)
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:  # issued concurrently: theirs stands
        row = session.exec(select(StorageCredential).where(StorageCredential.job_id == job_id)).one()
        return row.access_key_id, cipher.decrypt(row.secret_sealed)
    return row.access_key_id, secret


def endpoint_url(public_url: str) -> str:
    """The storage endpoint under the API's public base URL (``SIMPLETUNER_PUBLIC_URL``)."""
    return public_url.rstrip("/") + STORAGE_PATH


def job_storage_env(session: Session, job_id: str, public_url: str) -> dict[str, str]:
    """What a job's process needs to upload with boto3 or the aws CLI, unchanged."""
    access_key_id, secret = issue_job_credential(session, job_id)
    return {"AWS_ENDPOINT_URL_S3": endpoint_url(public_url), "AWS_ACCESS_KEY_ID": access_key_id,
            "AWS_SECRET_ACCESS_KEY": secret, "AWS_DEFAULT_REGION": REGION, "SIMPLETUNER_STORAGE_BUCKET": job_id}


def seal_api_key(token: str) -> str | None:
    """The sealed copy of a new API key (None where no cipher is configured: no S3 use then)."""
    try:
        return credential_crypto.current().encrypt(token)
    except RuntimeError:
        return None


def _invalid() -> StorageError:
    return StorageError("InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.",
                        403)


def resolve(session: Session, access_key_id: str) -> Caller:
    """The caller an access key id names; InvalidAccessKeyId when it names none usable."""
    cipher = credential_crypto.current()
    if access_key_id.startswith(JOB_KEY_PREFIX):
        row = session.get(StorageCredential, access_key_id)
        if row is None:
            raise _invalid()
        return Caller(access_key_id, cipher.decrypt(row.secret_sealed), job_id=row.job_id)
    key = session.get(ApiKey, access_key_id)
    if key is None:
        raise _invalid()
    if key.s3_secret_sealed is None:
        raise StorageError("InvalidAccessKeyId", "This API key was created before S3 access existed and cannot "
                           "sign S3 requests; create a new API key and use its id and key instead.", 403)
    secret = cipher.decrypt(key.s3_secret_sealed)
    refusal = None
    if key.revoked_at is not None:
        refusal = "this API key was revoked"
    elif key.expires_at is not None and key.expires_at.replace(tzinfo=key.expires_at.tzinfo or utcnow().tzinfo) \
            <= utcnow():
        refusal = "this API key has expired"
    user = session.get(User, key.user_id)
    principal = None
    if user is None:
        refusal = refusal or "this API key's account no longer exists"
    else:
        try:
            principal = principal_for(session, user, via="api_key", key_id=key.id)
        except (Unauthorized, NotFound):
            refusal = refusal or "this API key's account is disabled"
    return Caller(access_key_id, secret, principal=principal, refusal=refusal)


def is_active_job_key(session: Session, access_key_id: str) -> bool:
    """Whether the access key is a job's upload credential and its job has not finished (the rate
    limiter's question; the signature is checked later, by the endpoint)."""
    if not access_key_id.startswith(JOB_KEY_PREFIX):
        return False
    row = session.get(StorageCredential, access_key_id)
    if row is None:
        return False
    from activities.db.models import Job
    from workflows.contracts import TERMINAL_STATUSES
    job = session.get(Job, row.job_id)
    return job is not None and job.status not in TERMINAL_STATUSES
