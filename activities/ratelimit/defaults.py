"""The built-in rules and the paths never limited.

Each rule names the requests it counts (a regular expression matched from the start of the path, and
the methods; ``None`` is every method) and how many of them one client address may make per period.
The first rule that matches a request counts it; a request no rule matches counts against the default
(``rate_limit.default_calls`` per ``rate_limit.default_period``). The console's forms that do the same
thing as a limited REST route share its rule, so the limit cannot be sidestepped through the browser.
"""

from __future__ import annotations

from typing import NamedTuple


class BuiltinRule(NamedTuple):
    name: str
    pattern: str
    calls: int
    period: float
    methods: tuple[str, ...] | None


POST = ("POST",)

BUILTIN_RULES: tuple[BuiltinRule, ...] = (
    # password guessing: the REST login, LDAP login and the console's sign-in forms share one count
    BuiltinRule("login", r"^/(api/auth/login|api/auth/external/ldap/login|sign-in(/key|/ldap)?)$", 5, 60, POST),
    BuiltinRule("register", r"^/api/auth/register$", 3, 60, POST),
    BuiltinRule("api_keys", r"^/(api/auth/api-keys|account/keys)$", 10, 60, POST),
    BuiltinRule("job_cancel", r"^/(api/cloud/jobs|api/queue|jobs)/[^/]+/cancel$", 30, 60, POST),
    BuiltinRule("job_submit", r"^/(api/cloud/jobs|api/queue/submit|jobs/new)/?$", 20, 60, POST),
    BuiltinRule("webhooks", r"^/api/webhooks/", 100, 60, None),
    # The S3-compatible storage endpoint. The guide's 50 a minute counts what is not a running job's
    # upload: anonymous or wrongly signed requests, and personal API keys reading job buckets. A job's
    # upload credential (access key STJ…, its job not finished) counts against storage_jobs instead:
    # boto3 and the aws CLI send a 1 GiB file as 128 part requests and a job uploads many files, so 50 a
    # minute would throttle every real upload. The middleware picks storage_jobs (api/rate_limit.py) after
    # a database lookup of the access key; its pattern never matches first, "storage" precedes it.
    BuiltinRule("storage", r"^/api/cloud/storage(/|$)", 50, 60, None),
    BuiltinRule("storage_jobs", r"^/api/cloud/storage(/|$)", 3000, 60, None),
    BuiltinRule("quotas", r"^/api/quotas(/|$)", 30, 60, None),
    # GPU agents (worker token): a running job reports every second and heartbeats every few seconds,
    # about 70 requests a minute per agent, and several agents often share one address (a multi-GPU
    # host, a NAT). Throttling them would delay logs and make healthy agents look lost.
    BuiltinRule("agents", r"^/api/workers/", 1200, 60, None),
)
BUILTIN_NAMES = frozenset(rule.name for rule in BUILTIN_RULES)
DEFAULT_RULE = "default"

# Never limited. Health and the Prometheus scrape are what load balancers, orchestrators and monitoring
# poll, often many probes from one address: throttling them would take a healthy API out of rotation or
# leave holes in its metrics, and they cost little. The event stream is one long connection; static
# files (console and API docs assets) are a page's dozen fetches. The rest follow the operations guide.
EXCLUDED_PATHS = frozenset({
    "/health", "/api/cloud/health", "/api/cloud/metrics/prometheus", "/api/events/stream",
    "/api/cloud/hints", "/api/users/me", "/api/cloud/providers",
})
EXCLUDED_PREFIXES = ("/health/", "/api/cloud/health/", "/static/", "/static-offline-docs/")


def is_excluded(path: str) -> bool:
    """Exact paths (``/api/users/me`` is excluded, ``/api/users/me/credentials`` is not) and prefixes."""
    return path in EXCLUDED_PATHS or path.startswith(EXCLUDED_PREFIXES)
