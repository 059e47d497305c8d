"""Benchmark (run by hand, prints numbers): throughput of the S3-compatible storage endpoint.

One API process (``simpletuner server`` on a fresh data directory, plain HTTP on loopback, Temporal
not needed), a job staged in its database with its upload credential, and boto3 with its defaults
(multipart above 8 MiB, 8 MiB parts, 10 threads; over HTTP botocore signs the payload's SHA-256 and
sends a CRC32 header, the server computes MD5, SHA-256 and CRC32 of what it stores). In the same run:

1. upload of a 1 GiB file (``upload_file``) and download of it (``download_file``), MiB/s;
2. a plain local copy of the same file on the same disk (``shutil.copyfile``), MiB/s;
3. the ratio of each transfer to the copy (goal >= 0.5x), and the API's peak RSS growth.
Usage: .venv/bin/python bench/storage.py [--size-mib 1024] [--keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.memory import PeakRss  # noqa: E402
from tests.ports import free_port  # noqa: E402

MiB = 1024 * 1024


def start_api(root: Path) -> tuple[subprocess.Popen, str, Path]:
    port = free_port()
    data = root / "data"
    (root / "empty.yaml").write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SIMPLETUNER_", "AWS_"))}
    env.update(SIMPLETUNER_DATA_DIR=str(data), SIMPLETUNER_PORT=str(port), SIMPLETUNER_HOST="127.0.0.1",
               SIMPLETUNER_ENTERPRISE_CONFIG=str(root / "empty.yaml"), SIMPLETUNER_ADMIN_TOKEN="st_bench_admin",
               SIMPLETUNER_RATE_LIMIT_ENABLED="false", SIMPLETUNER_TEMPORAL_ADDRESS="127.0.0.1:1",
               SIMPLETUNER_LOG_LEVEL="WARNING", NO_PROXY="127.0.0.1")
    log = open(root / "api.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "server"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/api/cloud/health/live", timeout=1, trust_env=False).status_code == 200:
                return proc, url, data
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    raise SystemExit(f"the API did not start; see {root / 'api.log'}")


def stage(data: Path) -> tuple[str, str, str]:
    import secrets

    from sqlmodel import select

    from activities.db.engine import make_engine, session
    from activities.db.models import Job, User
    from activities.secrets import credential_crypto
    from activities.storage.credentials import issue_job_credential

    credential_crypto.install(credential_crypto.load_cipher(data, env={}, create=False))
    engine = make_engine(f"sqlite:///{data / 'simpletuner.db'}")
    with session(engine) as s:
        admin = s.exec(select(User)).first()
        job_id = "job-" + secrets.token_hex(12)
        s.add(Job(id=job_id, owner_id=admin.id, owner_name=admin.username, config_name="bench", target="worker",
                  request_hash="bench", status="running"))
        s.flush()
        access_key, secret = issue_job_credential(s, job_id)
        s.commit()
    engine.dispose()
    return job_id, access_key, secret


def timed(what, size: int) -> float:
    started = time.perf_counter()
    what()
    return size / MiB / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    import boto3
    from botocore.config import Config

    root = Path(tempfile.mkdtemp(prefix="bench-storage-", dir=ROOT / ".data" if (ROOT / ".data").is_dir() else None))
    proc, url, data = start_api(root)
    try:
        job_id, access_key, secret = stage(data)
        s3 = boto3.client("s3", endpoint_url=f"{url}/api/cloud/storage", aws_access_key_id=access_key,
                          aws_secret_access_key=secret, region_name="us-east-1",
                          config=Config(s3={"addressing_style": "path"}))
        size = args.size_mib * MiB
        source = root / "source.bin"
        with open(source, "wb") as out:
            for _ in range(args.size_mib):
                out.write(os.urandom(MiB))
        os.sync()
        copy = timed(lambda: shutil.copyfile(source, root / "copy.bin"), size)
        (root / "copy.bin").unlink()
        with PeakRss(proc.pid) as memory:
            up = timed(lambda: s3.upload_file(str(source), job_id, "bench.bin"), size)
            down = timed(lambda: s3.download_file(job_id, "bench.bin", str(root / "back.bin")), size)
        print(f"object size            {args.size_mib} MiB")
        print(f"local copy             {copy:8.1f} MiB/s")
        print(f"upload (boto3)         {up:8.1f} MiB/s   {up / copy:.2f}x the copy")
        print(f"download (boto3)       {down:8.1f} MiB/s   {down / copy:.2f}x the copy")
        print(f"API RSS growth (peak)  {memory.growth / MiB:8.1f} MiB")
        print(f"goal: >= 0.5x the copy; upload {'met' if up / copy >= 0.5 else 'NOT met'}, "
              f"download {'met' if down / copy >= 0.5 else 'NOT met'}")
    finally:
        proc.terminate()
        proc.wait(10)
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
