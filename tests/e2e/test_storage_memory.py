"""A 1 GiB upload through the storage endpoint leaves the API's resident memory flat (≤ 64 MiB growth):
bodies stream to disk a batch at a time, never whole into memory."""

from __future__ import annotations

import pytest

from tests.e2e.storage_clients import s3_client, stage_job
from tests.e2e.test_storage import sha256_of, write_random
from tests.memory import PeakRss

pytestmark = pytest.mark.e2e
GiB = 1024 ** 3
MiB = 1024 ** 2


@pytest.mark.slow  # writes and reads 1 GiB several times: make slow
def test_one_gib_upload_keeps_api_memory_flat(stack_factory, tmp_path):
    stack = stack_factory(start=False)
    api = stack.start_api()
    job_id, access_key, secret = stage_job(stack)
    s3 = s3_client(stack, access_key, secret)
    s3.put_object(Bucket=job_id, Key="warm-up", Body=b"x" * MiB)  # imports and pools allocated before the baseline
    source = tmp_path / "one-gib.bin"
    digest = write_random(source, GiB)
    with PeakRss(api.pid) as memory, open(source, "rb") as body:
        s3.put_object(Bucket=job_id, Key="one-gib.bin", Body=body)  # a single PUT: one 1 GiB body
    growth = memory.growth
    assert growth <= 64 * MiB, f"API RSS grew {growth / MiB:.1f} MiB during a 1 GiB upload"
    assert s3.head_object(Bucket=job_id, Key="one-gib.bin")["ContentLength"] == GiB
    s3.download_file(job_id, "one-gib.bin", str(tmp_path / "back.bin"))
    assert sha256_of(tmp_path / "back.bin") == digest
