"""Command line of the agent (``simpletuner worker`` / ``python -m gpu_agent``).

Every flag has an environment variable; the flag wins. Usage errors print one line on
stderr and exit with code 2; so does a rejected worker token.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import socket
import sys
from collections.abc import Mapping
from pathlib import Path

from activities import logging_setup
from gpu_agent import __version__
from gpu_agent.temporal_conn import AccessError, access_from

log = logging.getLogger(__name__)

EXIT_USAGE = 2
TRUE_WORDS = ("1", "true", "yes", "on")
DEFAULT_WORK_DIR = "~/.simpletuner/agent"
HARDWARE_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


class UsageError(ValueError):
    """A missing or invalid setting; the message is shown to the user as is."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the agent's flags to ``parser`` (lets another CLI embed ``worker`` as a subcommand)."""
    parser.add_argument("--orchestrator-url", help="control plane URL, or several API replicas comma-separated "
                        "(tried in turn when one is down) (env SIMPLETUNER_ORCHESTRATOR_URL)")
    parser.add_argument("--worker-token", help="worker token (env SIMPLETUNER_WORKER_TOKEN)")
    parser.add_argument("--name", help="agent name (env SIMPLETUNER_WORKER_NAME; default: hostname)")
    parser.add_argument("--persistent", action="store_true", default=None,
                        help="keep serving after a job (env SIMPLETUNER_WORKER_PERSISTENT; default: ephemeral)")
    parser.add_argument("--work-dir",
                        help=f"job directories (env SIMPLETUNER_WORKER_WORK_DIR; default {DEFAULT_WORK_DIR})")
    parser.add_argument("--temporal-address", help="override the Temporal address (env SIMPLETUNER_TEMPORAL_ADDRESS)")
    parser.add_argument("--temporal-tls-ca", help="CA certificate (PEM) of the Temporal server "
                                                  "(env SIMPLETUNER_WORKER_TEMPORAL_TLS_CA)")
    parser.add_argument("--temporal-tls-cert", help="client certificate (PEM) for mTLS "
                                                    "(env SIMPLETUNER_WORKER_TEMPORAL_TLS_CERT)")
    parser.add_argument("--temporal-tls-key", help="client private key (PEM) for mTLS "
                                                   "(env SIMPLETUNER_WORKER_TEMPORAL_TLS_KEY)")
    parser.add_argument("--temporal-tls-server-name", help="server name to verify, when it differs from the "
                                                           "address (env SIMPLETUNER_WORKER_TEMPORAL_TLS_SERVER_NAME)")
    parser.add_argument("--temporal-api-key", help="Temporal API key (env SIMPLETUNER_WORKER_TEMPORAL_API_KEY; "
                                                   "prefer the variable: command lines are visible to other users)")
    parser.add_argument("--temporal-metrics-address", help="host:port where this agent serves the Temporal SDK's "
                        "Prometheus metrics at /metrics (env SIMPLETUNER_WORKER_TEMPORAL_METRICS_ADDRESS; "
                        "default: off)")
    parser.add_argument("--gpu-count", help="override GPU detection (env SIMPLETUNER_WORKER_GPU_COUNT)")
    parser.add_argument("--hardware-type", help="override the detected hardware type, e.g. a100-80gb "
                                                "(env SIMPLETUNER_WORKER_HARDWARE_TYPE)")
    parser.add_argument("--shutdown-grace", help="seconds a running job gets on SIGTERM "
                                                 "(env SIMPLETUNER_WORKER_SHUTDOWN_GRACE; default 30)")
    parser.add_argument("--ca-bundle", help="PEM file of the CA(s) that signed the API's TLS certificate, trusted "
                                            "instead of the system's (env SIMPLETUNER_CA_BUNDLE)")
    parser.add_argument("--ssl-no-verify", action="store_true",
                        help="development only: do not verify the API's TLS certificate (a warning is logged)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="simpletuner worker", description="Run a SimpleTuner GPU agent.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    add_arguments(parser)
    return parser


def _pick(flag, env: Mapping[str, str], name: str) -> str | None:
    if flag is not None:
        return flag
    value = env.get(name)
    return value if value not in (None, "") else None


def config_from_args(ns: argparse.Namespace, env: Mapping[str, str] | None = None):
    """Resolve flags and environment into an ``AgentConfig``; raises ``UsageError``."""
    from gpu_agent.agent import AgentConfig

    env = os.environ if env is None else env
    url = _pick(ns.orchestrator_url, env, "SIMPLETUNER_ORCHESTRATOR_URL")
    if not url:
        raise UsageError("--orchestrator-url (or SIMPLETUNER_ORCHESTRATOR_URL) is required")
    for one in url.split(","):
        if not one.strip().startswith(("http://", "https://")):
            raise UsageError(f"--orchestrator-url must start with http:// or https://, got {one.strip()!r}")
    token = _pick(ns.worker_token, env, "SIMPLETUNER_WORKER_TOKEN")
    if not token:
        raise UsageError("--worker-token (or SIMPLETUNER_WORKER_TOKEN) is required")
    gpu_count_text = _pick(ns.gpu_count, env, "SIMPLETUNER_WORKER_GPU_COUNT")
    gpu_count = None
    if gpu_count_text is not None:
        try:
            gpu_count = int(gpu_count_text)
        except ValueError:
            gpu_count = 0
        if gpu_count < 1:
            raise UsageError(f"--gpu-count must be an integer >= 1, got {gpu_count_text!r}")
    grace_text = _pick(ns.shutdown_grace, env, "SIMPLETUNER_WORKER_SHUTDOWN_GRACE") or "30"
    try:
        grace = float(grace_text)
    except ValueError:
        grace = -1.0
    if not grace >= 0:  # also rejects nan
        raise UsageError(f"--shutdown-grace must be a number of seconds >= 0, got {grace_text!r}")
    hardware_type = _pick(getattr(ns, "hardware_type", None), env, "SIMPLETUNER_WORKER_HARDWARE_TYPE")
    if hardware_type is not None and not HARDWARE_RE.match(hardware_type):
        raise UsageError(f"--hardware-type must be a lowercase name like a100-80gb, got {hardware_type!r}")
    try:
        access = access_from(lambda attr, name: _pick(getattr(ns, attr, None), env, name))
    except AccessError as exc:
        raise UsageError(str(exc)) from None
    persistent = ns.persistent if ns.persistent else \
        (env.get("SIMPLETUNER_WORKER_PERSISTENT") or "").strip().lower() in TRUE_WORDS
    work_dir = _pick(ns.work_dir, env, "SIMPLETUNER_WORKER_WORK_DIR") or DEFAULT_WORK_DIR
    return AgentConfig(orchestrator_url=url, worker_token=token,
                       name=_pick(ns.name, env, "SIMPLETUNER_WORKER_NAME") or socket.gethostname(),
                       work_dir=Path(work_dir).expanduser(), persistent=bool(persistent),
                       temporal=access, gpu_count=gpu_count, hardware_type=hardware_type, shutdown_grace=grace,
                       ssl_verify=not ns.ssl_no_verify, ca_bundle=_ca_bundle(ns, env))


def _ca_bundle(ns: argparse.Namespace, env: Mapping[str, str]) -> str | None:
    """The CA bundle for the API's certificate, checked now; None with ``--ssl-no-verify`` (which wins
    over the variable, but not over ``--ca-bundle``: asking for both is refused)."""
    from activities.outbound_http.tls import CaBundleError, ca_bundle_context

    if ns.ssl_no_verify:
        if getattr(ns, "ca_bundle", None):
            raise UsageError("--ssl-no-verify and --ca-bundle contradict each other: give the API's CA with "
                             "--ca-bundle and drop --ssl-no-verify")
        return None
    path = _pick(getattr(ns, "ca_bundle", None), env, "SIMPLETUNER_CA_BUNDLE")
    if path is not None:
        try:
            ca_bundle_context(path)
        except CaBundleError as exc:
            raise UsageError(f"--ca-bundle (or SIMPLETUNER_CA_BUNDLE): {exc}") from None
    return path


def setup_logging(verbose: bool, env: Mapping[str, str] | None = None) -> None:
    """``SIMPLETUNER_LOG_LEVEL`` / ``_FORMAT`` (``json`` for structured lines) / ``_FILE``, as the other
    processes; ``--verbose`` means DEBUG. Raises ``UsageError`` naming a bad setting."""
    env = dict(os.environ if env is None else env)
    level = "DEBUG" if verbose else (env.get("SIMPLETUNER_LOG_LEVEL") or "INFO")
    try:
        logging_setup.configure(level, env.get("SIMPLETUNER_LOG_FORMAT") or "text",
                                env.get("SIMPLETUNER_LOG_FILE") or None)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"SIMPLETUNER_LOG_FILE: cannot open {env.get('SIMPLETUNER_LOG_FILE')}: {exc.strerror}") from None
    if verbose:  # one line per HTTP request is only useful when debugging
        logging.getLogger("httpx").setLevel(logging.DEBUG)


def run_from_args(ns: argparse.Namespace, env: Mapping[str, str] | None = None) -> int:
    """Run the agent for already-parsed flags (see ``add_arguments``); returns the exit code."""
    try:
        config = config_from_args(ns, env)
    except UsageError as exc:
        print(f"simpletuner worker: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        setup_logging(ns.verbose, env)
    except UsageError as exc:
        print(f"simpletuner worker: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    metrics_address = _pick(getattr(ns, "temporal_metrics_address", None), os.environ if env is None else env,
                            "SIMPLETUNER_WORKER_TEMPORAL_METRICS_ADDRESS")
    if metrics_address:  # before the agent connects: its clients report through this runtime
        from activities.observability.temporal_sdk_metrics import MetricsAddressError, serve_sdk_metrics
        try:
            serve_sdk_metrics(metrics_address)
        except MetricsAddressError as exc:
            print(f"simpletuner worker: error: --temporal-metrics-address: {exc}", file=sys.stderr)
            return EXIT_USAGE
    from gpu_agent.agent import NO_VERIFY_WARNING, Agent

    if not config.ssl_verify:  # on stderr whatever the log level or file: never silent
        print(f"simpletuner worker: WARNING: {NO_VERIFY_WARNING}", file=sys.stderr)
    agent = Agent(config)
    try:
        code = asyncio.run(agent.run())
    except KeyboardInterrupt:  # Ctrl-C before the agent installed its own handlers
        return 130
    if agent.exit_message:
        print(f"simpletuner worker: error: {agent.exit_message}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    try:
        ns = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, or argparse's own usage error (code 2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    return run_from_args(ns)


def run() -> None:
    """Console entry point: ``main()`` then ``os._exit`` (short-lived Temporal clients can crash at exit)."""
    code = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
