"""`simpletuner` command: server | worker-host | worker | dev | temporal-dev | secrets rotate-key | jobs | approvals."""

from __future__ import annotations

import argparse
import os
import sys

from cli import approvals, jobs, rotate_key


def _server(args: argparse.Namespace) -> int:
    from activities.observability import metrics_dir

    metrics_dir.prepare_from_env(os.environ)  # multiprocess metrics: wiped when unused, before any process writes
    import uvicorn

    from activities.outbound_http.client import warn_if_unverified
    from activities.runtime import configure_logging
    from activities.settings import load_settings
    from api.app import create_app
    from cli.server_tls import uvicorn_ssl_options

    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    settings = load_settings(**overrides)
    configure_logging(settings)
    warn_if_unverified(settings)
    ssl = uvicorn_ssl_options(args.ssl, args.ssl_cert, args.ssl_key, os.environ)  # ConfigFileError: one line
    # proxy_headers=False: uvicorn would otherwise believe X-Forwarded-For from 127.0.0.1 on its own;
    # which proxies to trust is decided only by the network settings (api/network.py).
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_config=None,
                timeout_graceful_shutdown=5, proxy_headers=False, **ssl)
    return 0


def _worker_host(_: argparse.Namespace) -> int:
    from worker_host.main import main

    return main()


def _dev(args: argparse.Namespace) -> int:
    from cli.dev import main

    return main(args)


def _temporal_dev(args: argparse.Namespace) -> int:
    from pathlib import Path

    from activities.settings import load_settings
    from cli.temporal_dev import dev_server_argv

    temporal = load_settings().temporal
    argv = dev_server_argv(Path(args.db_file) if args.db_file else None, args.port, args.ui_port,
                           namespaces=(temporal.namespace, temporal.gpu_namespace))
    os.execv(argv[0], argv)
    return 0  # not reached


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="simpletuner", description="Control plane for GPU training jobs on Temporal")
    sub = parser.add_subparsers(dest="command", required=True)
    server = sub.add_parser("server", help="run the REST API")
    server.add_argument("--host")
    server.add_argument("--port", type=int)
    server.add_argument("--ssl", action="store_true", help="serve HTTPS")
    server.add_argument("--ssl-cert", help="PEM certificate (chain) for --ssl (env SIMPLETUNER_SSL_CERT)")
    server.add_argument("--ssl-key", help="its private key, PEM without passphrase (env SIMPLETUNER_SSL_KEY)")
    server.set_defaults(func=_server)
    sub.add_parser("worker-host", help="run the Temporal worker for workflows and control activities"
                   ).set_defaults(func=_worker_host)
    sub.add_parser("worker", help="run a GPU agent (see `simpletuner worker --help`)", add_help=False)
    dev = sub.add_parser("dev", help="run Temporal, the worker host, the API and a local agent in the foreground")
    dev.add_argument("--no-agent", action="store_true", help="do not start the local GPU agent")
    dev.set_defaults(func=_dev)
    tdev = sub.add_parser("temporal-dev", help="run only the Temporal dev server with the project's settings")
    tdev.add_argument("--db-file", default=".data/temporal.db")
    tdev.add_argument("--port", type=int, default=7233)
    tdev.add_argument("--ui-port", type=int, default=8233)
    tdev.set_defaults(func=_temporal_dev)
    rotate_key.add_parser(sub)
    jobs.add_parser(sub)
    approvals.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["worker"]:
        from gpu_agent.cli import main as agent_main

        return agent_main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # settings errors and the like: one clear line, no traceback
        from activities.settings import ConfigFileError

        if isinstance(exc, ConfigFileError):
            print(f"error: {exc}", file=sys.stderr)
            return 2
        raise


def run() -> None:
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
