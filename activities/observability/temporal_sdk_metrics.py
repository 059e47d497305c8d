"""The Temporal SDK's own metrics (workflow and activity task latencies, pollers, slots, RPC calls:
the ``temporal_*`` families) served for Prometheus by the worker host and the GPU agents.

The SDK's core starts the HTTP exporter when the ``Runtime`` is built. It is made the process's
default runtime before any client exists, so every client the process connects (and each worker on
them) reports through it; ``Client.connect(runtime=...)`` would do the same one client at a time."""

from __future__ import annotations

from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig


class MetricsAddressError(ValueError):
    """The address cannot be served (malformed, or the port is taken)."""


def serve_sdk_metrics(bind_address: str) -> Runtime:
    """Serve ``/metrics`` on ``bind_address`` (``host:port``) for every Temporal client of this process."""
    try:
        runtime = Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=bind_address)))
    except ValueError as exc:  # "Invalid Prometheus address", "Address already in use"
        raise MetricsAddressError(f"cannot serve the Temporal SDK metrics on {bind_address}: {exc}") from None
    Runtime.set_default(runtime, error_if_already_set=True)
    return runtime
