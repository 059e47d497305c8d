"""Helpers of the storage endpoint's end-to-end tests: a job staged in the stack's database in a given
status (with its upload credential, issued by the real ``issue_job_credential``), S3 clients for it,
and the aws CLI run against the stack."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import boto3
from botocore.config import Config
from sqlmodel import select

from tests.e2e.stack import REPO_ROOT, Stack


def stage_job(stack: Stack, status: str = "running") -> tuple[str, str, str]:
    """A job row of the stack's admin in ``status`` and its (job id, access key id, secret)."""
    from activities.db.engine import make_engine, session
    from activities.db.models import Job, User
    from activities.secrets import credential_crypto
    from activities.storage.credentials import issue_job_credential

    credential_crypto.install(credential_crypto.load_cipher(stack.data_dir, env={}, create=False))
    engine = make_engine(stack.database_url)
    try:
        with session(engine) as s:
            admin = s.exec(select(User).where(User.username == "admin")).first() or s.exec(select(User)).first()
            job_id = "job-" + secrets.token_hex(12)
            s.add(Job(id=job_id, owner_id=admin.id, owner_name=admin.username, config_name="tiny", target="worker",
                      request_hash="staged", status=status))
            s.flush()
            access_key, secret = issue_job_credential(s, job_id)
            s.commit()
    finally:
        engine.dispose()
        credential_crypto.install(None)
    return job_id, access_key, secret


def endpoint(stack: Stack) -> str:
    return f"{stack.api_url}/api/cloud/storage"


def s3_client(stack: Stack, access_key: str, secret: str, **config):
    verify = str(stack.api_tls["ca"]) if stack.api_tls else None
    return boto3.client("s3", endpoint_url=endpoint(stack), aws_access_key_id=access_key,
                        aws_secret_access_key=secret, region_name="us-east-1", verify=verify,
                        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, **config))


def personal_key(stack: Stack, name: str = "s3") -> tuple[str, str]:
    created = stack.expect(stack.client.post("/api/auth/api-keys", json={"name": name}), 201)
    return created["id"], created["key"]


def aws(stack: Stack, access_key: str, secret: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID=access_key, AWS_SECRET_ACCESS_KEY=secret, AWS_DEFAULT_REGION="us-east-1",
               AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull, NO_PROXY="127.0.0.1,localhost")
    if stack.api_tls:
        env["AWS_CA_BUNDLE"] = str(stack.api_tls["ca"])
    return subprocess.run([sys.executable, "-m", "awscli", "--endpoint-url", endpoint(stack), *args],
                          cwd=cwd or REPO_ROOT, env=env, capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)
