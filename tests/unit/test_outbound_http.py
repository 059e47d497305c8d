"""The outbound HTTP settings (``outbound_http:`` block, ``SIMPLETUNER_CA_BUNDLE`` / ``_SSL_VERIFY`` /
``_SSL_VERIFY_ACKNOWLEDGED`` / ``_HTTP_TIMEOUT``) and the client factory: what a client is made with,
and what every request it sends carries."""

from __future__ import annotations

import logging
import ssl

import httpx
import pytest

from activities.observability.correlation import HEADER, correlation
from activities.outbound_http.client import UNVERIFIED_WARNING, get_async_client, get_sync_client, verify_for
from activities.outbound_http.settings import OutboundHttpSettings
from activities.settings import ConfigFileError, load_settings
from tests.servers.tls_proxy import make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


def settings_from(tmp_path, **env: str):
    return load_settings({"HOME": str(tmp_path), **env})


def test_defaults(tmp_path):
    http = settings_from(tmp_path).outbound_http
    assert (http.ca_bundle, http.ssl_verify, http.ssl_verify_acknowledged, http.timeout_seconds) == \
        (None, True, False, 30.0)
    assert verify_for(http) is True


def test_env_vars_set_the_block(tmp_path, pki):
    http = settings_from(tmp_path, SIMPLETUNER_CA_BUNDLE=str(pki["ca"]), SIMPLETUNER_HTTP_TIMEOUT="7.5").outbound_http
    assert http.ca_bundle == str(pki["ca"]) and http.timeout_seconds == 7.5
    context = verify_for(http)
    assert isinstance(context, ssl.SSLContext) and context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "test temporal CA"),),)]


def test_config_file_block(tmp_path, pki):
    path = tmp_path / "conf.yaml"
    path.write_text(f"outbound_http:\n  ca_bundle: {pki['ca']}\n  timeout_seconds: 12\n")
    http = settings_from(tmp_path, SIMPLETUNER_ENTERPRISE_CONFIG=str(path)).outbound_http
    assert http.ca_bundle == str(pki["ca"]) and http.timeout_seconds == 12
    path.write_text("outbound_http:\n  ssl_verify: false\n")
    with pytest.raises(ConfigFileError) as err:
        settings_from(tmp_path, SIMPLETUNER_ENTERPRISE_CONFIG=str(path))
    assert str(path) in str(err.value) and "SIMPLETUNER_SSL_VERIFY_ACKNOWLEDGED=true" in str(err.value)


@pytest.mark.parametrize("var, value, needle", [
    ("SIMPLETUNER_HTTP_TIMEOUT", "abc", "valid number"),
    ("SIMPLETUNER_HTTP_TIMEOUT", "0", "greater than 0"),
    ("SIMPLETUNER_HTTP_TIMEOUT", "-3", "greater than 0"),
    ("SIMPLETUNER_HTTP_TIMEOUT", "inf", "finite number"),
    ("SIMPLETUNER_SSL_VERIFY", "maybe", "valid boolean"),
    ("SIMPLETUNER_SSL_VERIFY_ACKNOWLEDGED", "sure", "valid boolean"),
    ("SIMPLETUNER_CA_BUNDLE", "/nonexistent/ca.pem", "/nonexistent/ca.pem: cannot read: No such file"),
])
def test_bad_values_name_the_variable(tmp_path, var, value, needle):
    with pytest.raises(ConfigFileError) as err:
        settings_from(tmp_path, **{var: value})
    assert var in str(err.value) and needle in str(err.value)


def test_ca_bundle_must_hold_a_certificate(tmp_path):
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(ConfigFileError, match=r"SIMPLETUNER_CA_BUNDLE.*no PEM certificate in it"):
        settings_from(tmp_path, SIMPLETUNER_CA_BUNDLE=str(junk))
    with pytest.raises(ConfigFileError, match=r"SIMPLETUNER_CA_BUNDLE.*cannot read"):
        settings_from(tmp_path, SIMPLETUNER_CA_BUNDLE=str(tmp_path))  # a directory


def test_verification_off_needs_the_acknowledgement(tmp_path):
    with pytest.raises(ConfigFileError) as err:
        settings_from(tmp_path, SIMPLETUNER_SSL_VERIFY="false")
    message = str(err.value)
    assert "SIMPLETUNER_SSL_VERIFY=false" in message and "SIMPLETUNER_SSL_VERIFY_ACKNOWLEDGED=true" in message
    assert "\n" not in message  # the CLI prints it as one line
    with pytest.raises(ConfigFileError):
        settings_from(tmp_path, SIMPLETUNER_SSL_VERIFY="false", SIMPLETUNER_SSL_VERIFY_ACKNOWLEDGED="false")
    http = settings_from(tmp_path, SIMPLETUNER_SSL_VERIFY="false", SIMPLETUNER_SSL_VERIFY_ACKNOWLEDGED="true").outbound_http
    assert http.ssl_verify is False and verify_for(http) is False
    # the acknowledgement alone changes nothing
    assert settings_from(tmp_path, SIMPLETUNER_SSL_VERIFY_ACKNOWLEDGED="true").outbound_http.ssl_verify is True


async def test_every_request_carries_the_correlation_id_and_the_timeout():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    http = OutboundHttpSettings(timeout_seconds=7)
    async with get_async_client(http, transport=httpx.MockTransport(handler)) as client:
        assert client.timeout == httpx.Timeout(7)
        with correlation("req-abc.1"):
            await client.get("https://idp.example/.well-known/openid-configuration")
            await client.post("https://idp.example/token", data={"a": "b"})
        await client.get("https://idp.example/jwks", headers={HEADER: "caller-chosen"})
    assert [r.headers[HEADER] for r in seen[:2]] == ["req-abc.1", "req-abc.1"]
    assert seen[2].headers[HEADER] == "caller-chosen"

    with get_sync_client(http, transport=httpx.MockTransport(handler), timeout=3) as client:
        assert client.timeout == httpx.Timeout(3)  # a caller's own timeout wins
        with correlation("sync-1"):
            client.get("https://hooks.example/x")
        client.get("https://hooks.example/y")  # outside any request: a fresh id, still sent
    assert seen[3].headers[HEADER] == "sync-1"
    assert seen[4].headers.get(HEADER) and seen[4].headers[HEADER] != "sync-1"


async def test_callers_hooks_still_run_after_the_correlation_hook():
    order: list[str] = []

    async def mine(request: httpx.Request) -> None:
        order.append(request.headers.get(HEADER, "missing"))

    transport = httpx.MockTransport(lambda request: httpx.Response(204))
    async with get_async_client(OutboundHttpSettings(), transport=transport, event_hooks={"request": [mine]}) as c:
        with correlation("hooked"):
            await c.get("https://x.example/")
    assert order == ["hooked"]


def test_settings_decide_verification_not_the_caller():
    for kw in ({"verify": False}, {"trust_env": False}):
        with pytest.raises(TypeError, match="decided by the outbound_http settings"):
            get_sync_client(OutboundHttpSettings(), **kw)


def test_a_client_without_verification_logs_a_warning(caplog):
    unverified = OutboundHttpSettings(ssl_verify=False, ssl_verify_acknowledged=True)
    with caplog.at_level(logging.WARNING, logger="activities.outbound_http.client"):
        get_sync_client(OutboundHttpSettings()).close()
        assert UNVERIFIED_WARNING not in caplog.text
        get_sync_client(unverified).close()
    assert UNVERIFIED_WARNING in caplog.text and "OFF" in caplog.text


def test_settings_object_or_its_block(tmp_path):
    settings = settings_from(tmp_path, SIMPLETUNER_HTTP_TIMEOUT="4")
    with get_sync_client(settings) as client:
        assert client.timeout == httpx.Timeout(4)
    with pytest.raises(TypeError):
        get_sync_client({"timeout_seconds": 4})
