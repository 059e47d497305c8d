"""The API as ``simpletuner server`` runs it, for ``bench/ops.py``; ``--bare`` takes out the operations
middleware (correlation id, HTTP metrics, rate limits) so the same code can be measured without it.
Settings come from the environment, as for the real server."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from activities.observability import metrics_dir  # noqa: E402

OPS_MIDDLEWARE = ("CorrelationIdMiddleware", "HttpMetricsMiddleware", "RouteSpotter", "RateLimitMiddleware")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bare", action="store_true")
    args = parser.parse_args()
    metrics_dir.prepare_from_env(os.environ)
    import uvicorn

    from activities.runtime import configure_logging
    from activities.settings import load_settings
    from api.app import create_app

    settings = load_settings()
    configure_logging(settings)
    app = create_app(settings)
    if args.bare:
        kept = [m for m in app.user_middleware if getattr(m.cls, "__name__", "") not in OPS_MIDDLEWARE]
        gone = len(app.user_middleware) - len(kept)
        if gone != len(OPS_MIDDLEWARE) - (0 if settings.rate_limit.enabled else 1):
            raise SystemExit(f"expected to take out the operations middleware, took out {gone}: "
                             f"{[m.cls for m in app.user_middleware]}")
        app.user_middleware[:] = kept
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, proxy_headers=False,
                access_log=False)


if __name__ == "__main__":
    main()
