"""The ``outbound_http:`` settings block (its environment variables are in ``activities/settings.py``:
``SIMPLETUNER_CA_BUNDLE``, ``SIMPLETUNER_SSL_VERIFY``, ``SIMPLETUNER_SSL_VERIFY_ACKNOWLEDGED``,
``SIMPLETUNER_HTTP_TIMEOUT``).

Proxies are not set here: ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``NO_PROXY`` are read from the
environment by the client itself. Turning certificate verification off needs a second, explicit
setting; without it the process does not start.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from activities.outbound_http.tls import CaBundleError, ca_bundle_context

UNVERIFIED_REFUSED = (
    "certificate verification is turned off (SIMPLETUNER_SSL_VERIFY=false / outbound_http.ssl_verify) without "
    "the acknowledgement: anyone on the network path could then read and change the control plane's outbound "
    "HTTPS calls (sign-in providers, notifications, cloud providers). Trust your CA with SIMPLETUNER_CA_BUNDLE "
    "instead, or confirm with SIMPLETUNER_SSL_VERIFY_ACKNOWLEDGED=true (outbound_http.ssl_verify_acknowledged)")


class OutboundHttpSettings(BaseModel):
    """``outbound_http:`` block. ``ca_bundle``: the PEM file of the CAs to trust instead of the
    default ones (e.g. a corporate CA that inspects TLS); ``ssl_verify: false`` only together with
    ``ssl_verify_acknowledged: true``; ``timeout_seconds`` for each request."""
    model_config = ConfigDict(extra="forbid")
    ca_bundle: str | None = None
    ssl_verify: bool = True
    ssl_verify_acknowledged: bool = False
    timeout_seconds: float = Field(30.0, gt=0, allow_inf_nan=False)

    @field_validator("ca_bundle")
    @classmethod
    def _readable_bundle(cls, path: str | None) -> str | None:
        if path is None:
            return None
        try:
            ca_bundle_context(path)
        except CaBundleError as exc:
            raise ValueError(str(exc)) from None
        return path

    @model_validator(mode="after")
    def _unverified_needs_acknowledgement(self) -> "OutboundHttpSettings":
        if not self.ssl_verify and not self.ssl_verify_acknowledged:
            raise ValueError(UNVERIFIED_REFUSED)
        return self
