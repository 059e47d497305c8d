"""TLS pieces of outbound clients: a verification context from a CA bundle, and telling a refused
certificate apart from other connection failures. Standard library only (the job CLI uses it too)."""

from __future__ import annotations

import ssl


class CaBundleError(ValueError):
    """The CA bundle cannot be read or holds no certificate; the message says which and why."""


def ca_bundle_context(path: str) -> ssl.SSLContext:
    """A client context that trusts exactly the certificates of ``path`` (PEM), with host name checks."""
    try:
        return ssl.create_default_context(cafile=path)
    except OSError as exc:
        if isinstance(exc, ssl.SSLError):
            raise CaBundleError(f"{path}: no PEM certificate in it ({exc.reason or exc})") from None
        raise CaBundleError(f"{path}: cannot read: {exc.strerror or exc}") from None


def untrusted_certificate(exc: BaseException) -> str | None:
    """The verification failure (e.g. ``unable to get local issuer certificate``) when ``exc`` — an
    httpx connection error — came from a server certificate the client does not trust, else None."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return current.verify_message or str(current)
        current = current.__cause__ or current.__context__
    return None
