"""A stack whose Replicate calls go to the stand-in (``tests/servers/replicate_server.py``): its token as
the global credential, its URL as ``REPLICATE_BASE_URL``, a quick circuit breaker, a priced GPU and a
config (``cloud-lora``) that states its hours, so a job's estimate and actual cost are known."""

from __future__ import annotations

import yaml

from tests.servers.replicate_server import ReplicateServer


def cloud_stack(stack_factory, replicate: ReplicateServer, **env: str):
    stack = stack_factory(start=False, extra_env={
        "SIMPLETUNER_REPLICATE_API_TOKEN": replicate.token, "REPLICATE_BASE_URL": replicate.url,
        "SIMPLETUNER_PROVIDER_CIRCUIT_THRESHOLD": "2", "SIMPLETUNER_PROVIDER_CIRCUIT_COOLDOWN": "2", **env})
    stack.enterprise_config.write_text(yaml.safe_dump({"cost": {"hourly_rates_usd": {"a100*": 7.2}}}))
    stack.start()
    body = stack.tiny_config()
    body.update(hardware_type="a100-80gb", estimated_hours=0.5, gpu_count=1)
    stack.expect(stack.client.put("/api/configs/cloud-lora", json=body), 200, 201)
    return stack
