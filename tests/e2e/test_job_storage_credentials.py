"""Each job gets its own storage credential in its environment: a training on a GPU agent uploads with
boto3 unchanged (no arguments: ``AWS_ENDPOINT_URL_S3`` and the rest come from the environment), its
bytes show as the job's ``upload_progress``, the owner reads them with a personal API key, and the
credential stops working once the job ended. A Replicate training gets the same variables as inputs."""

from __future__ import annotations

import sys

import pytest
from botocore.exceptions import ClientError

from tests.e2e.storage_clients import personal_key, s3_client
from tests.servers.replicate_server import ReplicateServer

pytestmark = pytest.mark.e2e

UPLOAD = """
import os, boto3
s3 = boto3.client("s3")
bucket = os.environ["SIMPLETUNER_STORAGE_BUCKET"]
s3.put_object(Bucket=bucket, Key="checkpoints/step-1.bin", Body=b"x" * 4096)
s3.upload_file(os.environ["SIMPLETUNER_CONFIG_PATH"], bucket, "config.json")
print("uploaded", os.environ["AWS_ACCESS_KEY_ID"][:3])
"""


def test_a_training_uploads_with_its_own_credential(stack_factory):
    stack = stack_factory(extra_env={"SIMPLETUNER_PUBLIC_URL": "http://127.0.0.1:1"})  # agents get the URL they reach
    _, token = stack.create_worker("local-1", {"host": "local"}, local=True)
    stack.start_agent(token, name="local-1")
    stack.put_config("uploader", command=[sys.executable, "-c", UPLOAD])
    job_id = stack.submit(config_name="uploader", target="local")["job_id"]
    done = stack.wait_job(job_id, ("completed", "failed"), timeout=90)
    lines = [entry["line"] for entry in stack.logs(job_id)]
    assert done["status"] == "completed", (done, lines[-20:])
    assert "uploaded STJ" in lines
    assert done["upload_progress"]["objects"] == 2 and done["upload_progress"]["bytes"] > 4096, done

    key_id, key = personal_key(stack)
    reader = s3_client(stack, key_id, key)
    listed = reader.list_objects_v2(Bucket=job_id)
    assert sorted(o["Key"] for o in listed["Contents"]) == ["checkpoints/step-1.bin", "config.json"]
    assert reader.get_object(Bucket=job_id, Key="checkpoints/step-1.bin")["Body"].read() == b"x" * 4096
    with pytest.raises(ClientError) as refused:  # a personal key reads; it never writes a job's bucket
        reader.put_object(Bucket=job_id, Key="forged.bin", Body=b"x")
    assert refused.value.response["Error"]["Code"] == "AccessDenied"


def test_a_replicate_training_gets_the_storage_variables(stack_factory):
    with ReplicateServer() as replicate:
        stack = stack_factory(start=False, extra_env={
            "SIMPLETUNER_REPLICATE_API_TOKEN": replicate.token, "REPLICATE_BASE_URL": replicate.url,
            "SIMPLETUNER_JOB_POLL_INTERVAL": "1"})
        stack.env["SIMPLETUNER_PUBLIC_URL"] = stack.api_url
        stack.start()
        stack.put_config("cloud", steps=3)
        stack.expect(stack.client.put("/api/cloud/providers/replicate/config", json={
            "version": "acme/trainer:" + "c" * 64, "destination": "acme/out"}), 200)
        job_id = stack.expect(stack.client.post("/api/cloud/replicate/submit", json={"config_name": "cloud"}),
                              201)["job_id"]
        training = stack.wait_for(lambda: replicate.trainings(), 30, "the training")[0]
        inputs = training["input"]
        assert inputs["steps"] == 3 and inputs["SIMPLETUNER_STORAGE_BUCKET"] == job_id, inputs
        assert inputs["AWS_ENDPOINT_URL_S3"] == f"{stack.api_url}/api/cloud/storage"
        s3 = s3_client(stack, inputs["AWS_ACCESS_KEY_ID"], inputs["AWS_SECRET_ACCESS_KEY"])
        s3.put_object(Bucket=job_id, Key="samples/0.png", Body=b"png")  # the training "calls home"
        assert stack.job(job_id)["upload_progress"] == {"bytes": 3, "objects": 1}

        replicate.advance(training["id"], "succeeded", predict_time=1.0)
        stack.wait_job(job_id, "completed", timeout=30)
        with pytest.raises(ClientError) as refused:  # the job ended: its credential with it
            s3.put_object(Bucket=job_id, Key="late.bin", Body=b"late")
        assert refused.value.response["Error"]["Code"] == "AccessDenied"
