"""Fixtures of the integration tests that talk to stand-ins of remote services."""

from __future__ import annotations

import pytest

from tests.servers import aws_server
from tests.servers.vault_kv_server import VaultKvServer


@pytest.fixture
def aws():
    """moto's server as the AWS endpoint, one per test process, emptied before each test."""
    server = aws_server.shared()
    server.reset()
    return server


@pytest.fixture(scope="module")
def vault():
    """The Vault KV v2 stand-in, one per module."""
    with VaultKvServer() as server:
        yield server
