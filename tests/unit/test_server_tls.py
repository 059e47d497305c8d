"""``simpletuner server --ssl``: certificate and key from flags or ``SIMPLETUNER_SSL_CERT`` /
``SIMPLETUNER_SSL_KEY``; a missing, unreadable, non-PEM or mismatched file is one line naming the
flag and variable, with a non-zero exit, before anything starts."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from activities.settings import ConfigFileError
from cli.server_tls import uvicorn_ssl_options
from tests.servers.tls_proxy import make_pki

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


def test_served_with_flags_or_variables(pki):
    cert, key = str(pki["server_cert"]), str(pki["server_key"])
    expected = {"ssl_certfile": cert, "ssl_keyfile": key}
    assert uvicorn_ssl_options(True, cert, key, {}) == expected
    assert uvicorn_ssl_options(True, None, None, {"SIMPLETUNER_SSL_CERT": cert, "SIMPLETUNER_SSL_KEY": key}) == expected
    assert uvicorn_ssl_options(True, cert, None, {"SIMPLETUNER_SSL_CERT": "/elsewhere", "SIMPLETUNER_SSL_KEY": key}) \
        == expected  # the flag wins


def test_without_ssl_plain_http(pki, caplog):
    assert uvicorn_ssl_options(False, None, None, {}) == {}
    with caplog.at_level(logging.WARNING, logger="cli.server_tls"):
        assert uvicorn_ssl_options(False, None, None, {"SIMPLETUNER_SSL_CERT": str(pki["server_cert"])}) == {}
    assert "--ssl is not given: serving plain HTTP" in caplog.text
    with pytest.raises(ConfigFileError, match="without --ssl"):
        uvicorn_ssl_options(False, str(pki["server_cert"]), None, {})


def test_bad_files_name_the_setting(pki, tmp_path):
    cert, key = str(pki["server_cert"]), str(pki["server_key"])
    junk = tmp_path / "junk.pem"
    junk.write_text("not pem\n")
    unreadable = tmp_path / "secret.key"
    unreadable.write_bytes(Path(key).read_bytes())
    unreadable.chmod(0)
    cases = [
        ((None, None), "--ssl needs a certificate and its private key: set --ssl-cert / SIMPLETUNER_SSL_CERT and "
                       "--ssl-key / SIMPLETUNER_SSL_KEY"),
        ((cert, None), "set --ssl-key / SIMPLETUNER_SSL_KEY"),
        ((str(tmp_path / "none.pem"), key), "cannot read the certificate"),
        ((cert, str(tmp_path / "none.key")), "cannot read the private key"),
        ((str(junk), key), "are not a PEM certificate and its matching private key"),
        ((cert, str(junk)), "are not a PEM certificate and its matching private key"),
        ((cert, str(pki["client_key"])), "are not a PEM certificate and its matching private key"),  # another key
    ]
    if os.geteuid() != 0:  # root reads any file
        cases.append(((cert, str(unreadable)), "cannot read the private key"))
    for (cert_flag, key_flag), needle in cases:
        with pytest.raises(ConfigFileError) as err:
            uvicorn_ssl_options(True, cert_flag, key_flag, {})
        assert needle in str(err.value), (cert_flag, key_flag, str(err.value))
        assert "\n" not in str(err.value)


def test_server_command_prints_one_line_and_exits_2(pki, tmp_path):
    config = tmp_path / "simpletuner-enterprise.yaml"
    config.write_text("# empty\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIMPLETUNER_")}
    env.update(HOME=str(tmp_path), SIMPLETUNER_ENTERPRISE_CONFIG=str(config), SIMPLETUNER_DATA_DIR=str(tmp_path / "d"),
               SIMPLETUNER_SSL_CERT=str(tmp_path / "missing.pem"), SIMPLETUNER_SSL_KEY=str(pki["server_key"]))
    done = subprocess.run([sys.executable, "-m", "cli.main", "server", "--ssl", "--port", "9"], cwd=REPO_ROOT,
                          env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: --ssl: cannot read the certificate {tmp_path / 'missing.pem'} "
                      "(--ssl-cert / SIMPLETUNER_SSL_CERT): No such file or directory"], done.stderr
