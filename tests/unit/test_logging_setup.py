"""Log lines never carry an OAuth code or state: uvicorn's access line and any other line."""

from __future__ import annotations

import logging

import pytest

from activities import logging_setup

CALLBACK = "/api/auth/external/oidc/callback?code=C0DE-secret_1&state=St4te-secret.2&iss=http%3A%2F%2F127.0.0.1%3A5"


@pytest.fixture
def restore_logging():
    root, access = logging.getLogger(), logging.getLogger(logging_setup.ACCESS_LOGGER)
    saved = (list(root.handlers), root.level, list(access.filters))
    yield
    for handler in root.handlers:
        if handler not in saved[0]:
            handler.close()
    root.handlers[:], access.filters[:] = saved[0], saved[2]
    root.setLevel(saved[1])


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_configured_logging_redacts_oauth_code_and_state(tmp_path, restore_logging, fmt):
    log_file = tmp_path / "api.log"
    logging_setup.configure("INFO", fmt, str(log_file))
    logging_setup.configure("INFO", fmt, str(log_file))  # configuring twice adds no second filter
    access = logging.getLogger(logging_setup.ACCESS_LOGGER)
    assert sum(isinstance(f, logging_setup.RedactOAuthParams) for f in access.filters) == 1
    access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5555", "GET", CALLBACK, "1.1", 200)  # uvicorn's shape
    query = CALLBACK.split("?", 1)[1]
    logging.getLogger("activities.anything").warning("redirected to %s", f"https://app.corp.test/sso?{query}")
    logging.getLogger("activities.anything").info(f"quoted in the message itself: {CALLBACK}")
    for handler in logging.getLogger().handlers:
        handler.flush()
    text = log_file.read_text()
    assert "C0DE-secret_1" not in text and "St4te-secret.2" not in text, text
    assert text.count("code=[redacted]&state=[redacted]") == 3 and "127.0.0.1:5555" in text, text
    assert "iss=http%3A%2F%2F127.0.0.1%3A5" in text  # other parameters are left alone


@pytest.mark.parametrize("line, want", [
    ("/cb?state=abc&code=def", "/cb?state=[redacted]&code=[redacted]"),
    ("/authorize?response_type=code&client_id=x&state=S&nonce=n",
     "/authorize?response_type=code&client_id=x&state=[redacted]&nonce=n"),
    ("return=https%3A%2F%2Fapp%2Fcb%3Fcode%3DSECRET%26state%3DSTATE%26x%3D1",
     "return=https%3A%2F%2Fapp%2Fcb%3Fcode%3D[redacted]%26state%3D[redacted]%26x%3D1"),
    ("the process exited with code=1; state=ok", "the process exited with code=1; state=ok"),
    ("/cb?CODE=abc&stateful=1", "/cb?CODE=[redacted]&stateful=1"),
])
def test_redact(line, want):
    assert logging_setup.redact(line) == want
