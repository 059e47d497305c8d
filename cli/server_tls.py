"""``simpletuner server --ssl``: the certificate and key the API serves HTTPS with, checked before the
server starts so that a missing, unreadable or mismatched file is one clear line, not a traceback.

The files come from ``--ssl-cert`` / ``--ssl-key`` or ``SIMPLETUNER_SSL_CERT`` / ``SIMPLETUNER_SSL_KEY``
(the flag wins). Without ``--ssl`` the API serves plain HTTP.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Mapping

from activities.settings import ConfigFileError

log = logging.getLogger(__name__)

CERT_NAMES = "--ssl-cert / SIMPLETUNER_SSL_CERT"
KEY_NAMES = "--ssl-key / SIMPLETUNER_SSL_KEY"


def _no_password() -> bytes:
    raise ValueError("encrypted private keys are not supported; give the key without a passphrase")


def uvicorn_ssl_options(use_ssl: bool, cert_flag: str | None, key_flag: str | None,
                        env: Mapping[str, str]) -> dict[str, str]:
    """uvicorn's ``ssl_certfile`` / ``ssl_keyfile`` (empty without ``--ssl``); ``ConfigFileError``
    naming the flag and variable when a file is missing, unreadable, not PEM or not a matching pair."""
    if not use_ssl:
        if cert_flag or key_flag:
            raise ConfigFileError("--ssl-cert / --ssl-key given without --ssl: add --ssl to serve HTTPS")
        if env.get("SIMPLETUNER_SSL_CERT") or env.get("SIMPLETUNER_SSL_KEY"):
            log.warning("SIMPLETUNER_SSL_CERT / SIMPLETUNER_SSL_KEY are set but --ssl is not given: serving plain HTTP")
        return {}
    cert = cert_flag or env.get("SIMPLETUNER_SSL_CERT") or None
    key = key_flag or env.get("SIMPLETUNER_SSL_KEY") or None
    if not cert or not key:
        missing = " and ".join(names for names, value in ((CERT_NAMES, cert), (KEY_NAMES, key)) if not value)
        raise ConfigFileError(f"--ssl needs a certificate and its private key: set {missing}")
    for what, path, names in (("certificate", cert, CERT_NAMES), ("private key", key, KEY_NAMES)):
        try:
            with open(path, "rb") as handle:
                handle.read(1)
        except OSError as exc:
            raise ConfigFileError(f"--ssl: cannot read the {what} {path} ({names}): {exc.strerror or exc}") from None
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key, password=_no_password)
    except (ssl.SSLError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or str(exc)
        raise ConfigFileError(f"--ssl: {cert} ({CERT_NAMES}) and {key} ({KEY_NAMES}) are not a PEM certificate "
                              f"and its matching private key ({reason})") from None
    return {"ssl_certfile": cert, "ssl_keyfile": key}
