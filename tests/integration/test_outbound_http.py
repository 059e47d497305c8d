"""Outbound HTTP through a real forward proxy (``proxy.py``) to servers with a private CA.

The target's name (``*.proxy-only.test``) resolves only inside the proxy, so a successful request to it
went through the proxy; the proxy's access log shows the tunnel too. Settings come from the real
``load_settings`` with the documented environment variables; proxies from ``HTTPS_PROXY`` /
``HTTP_PROXY`` / ``NO_PROXY``, read by the client.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest

from activities.observability.correlation import HEADER, correlation
from activities.outbound_http.client import UNVERIFIED_WARNING, get_async_client
from activities.outbound_http.tls import untrusted_certificate
from activities.settings import ConfigFileError, load_settings
from tests.servers.forward_proxy import ForwardProxy, proxy_only_name
from tests.servers.https_server import RecordingServer
from tests.servers.tls_proxy import make_pki

TARGET = proxy_only_name("idp")
PROXY_VARS = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY", "https_proxy", "http_proxy", "all_proxy",
              "no_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"), server_dns_names=(TARGET,))


@pytest.fixture(scope="module")
def forward_proxy(tmp_path_factory) -> Iterator[ForwardProxy]:
    proxy = ForwardProxy(tmp_path_factory.mktemp("proxy")).start()
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture(scope="module")
def tls_server(pki) -> Iterator[RecordingServer]:
    with RecordingServer(pki["server_cert"], pki["server_key"]) as server:
        yield server


@pytest.fixture(scope="module")
def plain_server() -> Iterator[RecordingServer]:
    with RecordingServer() as server:
        yield server


@pytest.fixture
def proxy_env(monkeypatch, forward_proxy):
    """The process environment with only the proxy variables a test sets."""
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)

    def set_env(**values: str) -> None:
        for name, value in values.items():
            monkeypatch.setenv(name, value)

    return set_env


def settings(tmp_path, **env: str):
    return load_settings({"HOME": str(tmp_path), **env})


async def test_https_through_the_proxy_with_the_ca_bundle(tmp_path, pki, forward_proxy, tls_server, proxy_env):
    proxy_env(HTTPS_PROXY=forward_proxy.url)
    config = settings(tmp_path, SIMPLETUNER_CA_BUNDLE=str(pki["ca"]), SIMPLETUNER_HTTP_TIMEOUT="10")
    url = tls_server.url(TARGET) + "/.well-known/openid-configuration"
    before = len(tls_server.requests)
    async with get_async_client(config) as client:
        with correlation("corr-through-proxy"):
            answer = await client.get(url)
    assert answer.status_code == 200 and answer.json()["path"] == "/.well-known/openid-configuration"
    request = tls_server.requests[before]
    assert request["headers"][HEADER] == "corr-through-proxy"
    assert request["headers"]["Host"] == f"{TARGET}:{tls_server.port}"
    forward_proxy.wait_logged(f"CONNECT {TARGET}:{tls_server.port}")


async def test_the_target_name_is_unreachable_without_the_proxy(tmp_path, pki, tls_server, proxy_env):
    proxy_env()  # no proxy variable
    async with get_async_client(settings(tmp_path, SIMPLETUNER_CA_BUNDLE=str(pki["ca"]))) as client:
        with pytest.raises(httpx.ConnectError) as err:
            await client.get(tls_server.url(TARGET) + "/")
    assert untrusted_certificate(err.value) is None  # a name that does not resolve here, not a TLS refusal


async def test_plain_http_through_http_proxy(tmp_path, forward_proxy, plain_server, proxy_env):
    proxy_env(HTTP_PROXY=forward_proxy.url)
    before = len(plain_server.requests)
    async with get_async_client(settings(tmp_path)) as client:
        with correlation("corr-plain"):
            answer = await client.get(plain_server.url(TARGET) + "/hook")
    assert answer.status_code == 200
    assert plain_server.requests[before]["headers"][HEADER] == "corr-plain"
    forward_proxy.wait_logged(f"GET {TARGET}:{plain_server.port}/hook")


async def test_no_proxy_goes_direct(tmp_path, pki, forward_proxy, tls_server, proxy_env):
    proxy_env(HTTPS_PROXY=forward_proxy.url, NO_PROXY="127.0.0.1")
    tunnel = f"CONNECT {TARGET}:{tls_server.port}"
    tunnels_before = forward_proxy.log_text().count(tunnel)
    async with get_async_client(settings(tmp_path, SIMPLETUNER_CA_BUNDLE=str(pki["ca"]))) as client:
        assert (await client.get(tls_server.url() + "/direct")).status_code == 200
        assert (await client.get(tls_server.url(TARGET) + "/marker")).status_code == 200  # not in NO_PROXY
    # once the later request through the proxy is in its log, the direct one would be there before it
    log = forward_proxy.wait_logged(tunnel, times=tunnels_before + 1)
    assert f"127.0.0.1:{tls_server.port}" not in log


async def test_private_ca_is_refused_by_default(tmp_path, forward_proxy, tls_server, proxy_env):
    proxy_env(HTTPS_PROXY=forward_proxy.url)
    before = len(tls_server.requests)
    for env in ({}, {"SIMPLETUNER_SSL_VERIFY_ACKNOWLEDGED": "true"}):  # the acknowledgement alone changes nothing
        async with get_async_client(settings(tmp_path, **env)) as client:
            with pytest.raises(httpx.ConnectError) as err:
                await client.get(tls_server.url(TARGET) + "/secret")
        assert "unable to get local issuer certificate" in (untrusted_certificate(err.value) or "")
    assert len(tls_server.requests) == before  # no request was sent over the untrusted connection


def test_verification_off_without_acknowledgement_stops_start_up(tmp_path):
    with pytest.raises(ConfigFileError) as err:
        settings(tmp_path, SIMPLETUNER_SSL_VERIFY="false")
    assert "SIMPLETUNER_SSL_VERIFY_ACKNOWLEDGED=true" in str(err.value)


async def test_verification_off_with_acknowledgement_is_accepted_and_loud(tmp_path, forward_proxy, tls_server,
                                                                          proxy_env, caplog):
    proxy_env(HTTPS_PROXY=forward_proxy.url)
    config = settings(tmp_path, SIMPLETUNER_SSL_VERIFY="false", SIMPLETUNER_SSL_VERIFY_ACKNOWLEDGED="true")
    with caplog.at_level(logging.WARNING):
        async with get_async_client(config) as client:
            answer = await client.get(tls_server.url(TARGET) + "/unverified")
    assert answer.status_code == 200
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.getMessage() == UNVERIFIED_WARNING]
    assert warnings, caplog.text


async def test_a_providers_own_proxy_and_ca_bundle_apply_to_its_calls_only(tmp_path, pki, forward_proxy, tls_server,
                                                                           proxy_env):
    """``proxy_url`` and ``ca_bundle_path`` of a cloud provider's settings: its calls reach a name only the
    proxy resolves, over a private CA, while the process has neither (another provider's calls fail)."""
    from activities.db.models_providers import ProviderConfig
    from activities.providers import settings as provider_settings

    proxy_env()
    process = settings(tmp_path).outbound_http
    own = ProviderConfig(provider="replicate", proxy_url=forward_proxy.url, ca_bundle_path=str(pki["ca"]),
                         http_timeout=7.0, api_base_url=tls_server.url(TARGET))
    async with provider_settings.connection(own, process, "r8_token") as conn:
        assert conn.base_url == tls_server.url(TARGET) and conn.client.timeout.read == 7.0
        answer = await conn.client.get(conn.base_url + "/v1/account")
    assert answer.status_code == 200
    forward_proxy.wait_logged(f"CONNECT {TARGET}:{tls_server.port}")
    plain = ProviderConfig(provider="replicate", api_base_url=tls_server.url(TARGET))
    async with provider_settings.connection(plain, process, "r8_token") as conn:
        with pytest.raises(httpx.ConnectError):
            await conn.client.get(conn.base_url + "/v1/account")
