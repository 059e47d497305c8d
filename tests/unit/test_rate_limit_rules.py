"""Which rule counts a request, the paths never counted, and the ``rate_limit`` settings: the
operations guide's table by default, rules of the config file first (or replacing a built-in one by
name), and a start-up error naming the setting for every bad value."""

from __future__ import annotations

import pytest

from activities.ratelimit.defaults import is_excluded
from activities.ratelimit.rules import RuleSet
from activities.settings import ConfigFileError, load_settings
from cli.dev import api_env


def settings(tmp_path, text: str = "", **env: str):
    path = tmp_path / "enterprise.yaml"
    path.write_text(text or "# nothing\n")
    return load_settings({"HOME": str(tmp_path), "SIMPLETUNER_ENTERPRISE_CONFIG": str(path), **env})


@pytest.fixture
def rules(tmp_path) -> RuleSet:
    return RuleSet.from_settings(settings(tmp_path).rate_limit)


@pytest.mark.parametrize("method, path, name, calls", [
    ("POST", "/api/auth/login", "login", 5),
    ("POST", "/sign-in", "login", 5),  # the console's form shares the login count
    ("POST", "/api/auth/external/ldap/login", "login", 5),
    ("GET", "/api/auth/login", "default", 100),  # only POSTs are sign-in attempts
    ("POST", "/api/auth/register", "register", 3),
    ("POST", "/api/auth/api-keys", "api_keys", 10),
    ("GET", "/api/auth/api-keys", "default", 100),
    ("POST", "/api/cloud/jobs", "job_submit", 20),
    ("POST", "/api/queue/submit", "job_submit", 20),
    ("POST", "/api/cloud/jobs/j_123/cancel", "job_cancel", 30),
    ("POST", "/api/queue/j_123/cancel", "job_cancel", 30),
    ("POST", "/api/cloud/jobs/j_123/cancel/more", "default", 100),
    ("GET", "/api/cloud/jobs/j_123", "default", 100),
    ("PUT", "/api/webhooks/replicate", "webhooks", 100),
    ("GET", "/api/cloud/storage/bucket/key", "storage", 50),
    ("GET", "/api/quotas", "quotas", 30),
    ("DELETE", "/api/quotas/7", "quotas", 30),
    ("GET", "/api/quotasx", "default", 100),
    ("POST", "/api/workers/job/j_1/status", "agents", 1200),
    ("POST", "/api/workers/heartbeat", "agents", 1200),
    ("GET", "/api/admin/workers", "default", 100),
    ("GET", "/api/configs", "default", 100),
])
def test_the_guides_table(rules, method, path, name, calls):
    rule = rules.match(path, method)
    assert (rule.name, rule.calls, rule.period) == (name, calls, 60)


@pytest.mark.parametrize("path, excluded", [
    ("/health", True), ("/api/cloud/health", True), ("/api/cloud/health/live", True),
    ("/api/cloud/health/ready", True), ("/api/cloud/metrics/prometheus", True), ("/api/events/stream", True),
    ("/static/console.css", True), ("/static-offline-docs/swagger-ui.css", True), ("/api/cloud/hints", True),
    ("/api/users/me", True), ("/api/cloud/providers", True),
    ("/api/users/me/credentials", False),  # a write under the excluded read: counted
    ("/api/cloud/providers/replicate/config", False), ("/api/cloud/metrics/cost-limit-status", False),
    ("/api/cloud/jobs", False), ("/healthz", False), ("/", False), ("/static", False),
])
def test_excluded_paths_are_exact_or_whole_prefixes(path, excluded):
    assert is_excluded(path) is excluded


def test_config_rules_come_first_and_a_named_one_replaces_its_builtin(tmp_path):
    s = settings(tmp_path, """
rate_limit:
  default_calls: 7
  default_period: 10
  rules:
    - {pattern: '^/api/cloud/jobs/[^/]+/logs', calls: 2, period: 300, methods: [get]}
    - {name: login, calls: 50}
    - {name: mine, pattern: '^/api/configs', calls: 9}
""")
    rules = RuleSet.from_settings(s.rate_limit)
    logs = rules.match("/api/cloud/jobs/j1/logs", "GET")
    assert (logs.name, logs.calls, logs.period) == ("rules[0]", 2, 300)
    assert rules.match("/api/cloud/jobs/j1/logs", "POST").name == "default"  # methods were given
    login = rules.match("/api/auth/login", "POST")
    assert (login.name, login.calls, login.period) == ("login", 50, 60)  # the built-in's pattern, period, methods
    assert rules.match("/api/auth/login", "GET").name == "default"
    mine = rules.match("/api/configs/x", "DELETE")
    assert (mine.name, mine.calls, mine.period) == ("mine", 9, 10)  # no period: the default period
    assert [r.name for r in rules.rules].count("login") == 1
    default = rules.match("/api/orgs", "GET")
    assert (default.name, default.calls, default.period) == ("default", 7, 10)
    assert rules.longest_period == 300


def test_env_settings(tmp_path):
    s = settings(tmp_path, SIMPLETUNER_RATE_LIMIT_ENABLED="false", SIMPLETUNER_RATE_LIMIT_BACKEND="redis",
                 SIMPLETUNER_RATE_LIMIT_REDIS_URL="redis://cache:6379/2", SIMPLETUNER_RATE_LIMIT_DEFAULT_CALLS="1000",
                 SIMPLETUNER_RATE_LIMIT_DEFAULT_PERIOD="30")
    rl = s.rate_limit
    assert (rl.enabled, rl.backend, rl.redis_url, rl.default_calls, rl.default_period, rl.bypass_loopback) == (
        False, "redis", "redis://cache:6379/2", 1000, 30.0, False)
    on = settings(tmp_path).rate_limit
    assert (on.enabled, on.backend, on.bypass_loopback) == (True, "database", False)  # on by default, no bypass


@pytest.mark.parametrize("text, env, needle", [
    ("", {"SIMPLETUNER_RATE_LIMIT_BACKEND": "memcached"}, "rate_limit.backend (SIMPLETUNER_RATE_LIMIT_BACKEND)"),
    ("", {"SIMPLETUNER_RATE_LIMIT_BACKEND": "redis"}, "SIMPLETUNER_RATE_LIMIT_REDIS_URL"),
    ("", {"SIMPLETUNER_RATE_LIMIT_BACKEND": "redis", "SIMPLETUNER_RATE_LIMIT_REDIS_URL": "cache:6379"},
     "SIMPLETUNER_RATE_LIMIT_REDIS_URL must start with redis://"),
    ("", {"SIMPLETUNER_RATE_LIMIT_DEFAULT_CALLS": "0"},
     "rate_limit.default_calls (SIMPLETUNER_RATE_LIMIT_DEFAULT_CALLS)"),
    ("", {"SIMPLETUNER_RATE_LIMIT_DEFAULT_PERIOD": "-1"}, "rate_limit.default_period"),
    ("", {"SIMPLETUNER_RATE_LIMIT_ENABLED": "sometimes"}, "rate_limit.enabled"),
    ("rate_limit:\n  rules:\n    - {pattern: '^/api/(', calls: 3}\n", {},
     "rate_limit.rules.0.pattern: Value error, not a valid regular expression"),
    ("rate_limit:\n  rules:\n    - {pattern: '^/api/x', calls: 0}\n", {}, "rate_limit.rules.0.calls"),
    ("rate_limit:\n  rules:\n    - {pattern: '^/api/x', calls: -4}\n", {}, "rate_limit.rules.0.calls"),
    ("rate_limit:\n  rules:\n    - {pattern: '^/api/x', calls: 3, period: 0}\n", {}, "rate_limit.rules.0.period"),
    ("rate_limit:\n  rules:\n    - {pattern: '^/api/x', calls: 3, methods: [FETCH]}\n", {},
     "rate_limit.rules.0.methods"),
    ("rate_limit:\n  rules:\n    - {pattern: '^/api/x'}\n", {}, "a rule needs pattern and calls"),
    ("rate_limit:\n  rules:\n    - {name: default, calls: 3}\n", {}, "set default_calls and default_period"),
    ("rate_limit:\n  rules:\n    - {pattern: '^/a', calls: 1, burst: 3}\n", {}, "rate_limit.rules.0.burst"),
    ("rate_limit:\n  backend: redis\n", {}, "SIMPLETUNER_RATE_LIMIT_REDIS_URL"),
])
def test_bad_settings_stop_start_up_naming_the_setting(tmp_path, text, env, needle):
    with pytest.raises(ConfigFileError) as err:
        settings(tmp_path, text, **env)
    assert needle in str(err.value)


def test_only_the_dev_command_bypasses_loopback(tmp_path):
    assert settings(tmp_path).rate_limit.bypass_loopback is False
    env = api_env({"HOME": str(tmp_path), "SIMPLETUNER_ENTERPRISE_CONFIG": str(tmp_path / "enterprise.yaml")})
    (tmp_path / "enterprise.yaml").write_text("# nothing\n")
    assert load_settings(env).rate_limit.bypass_loopback is True
    # a developer who wants to see the limits under `simpletuner dev` still can
    mine = api_env({**env, "SIMPLETUNER_RATE_LIMIT_BYPASS_LOOPBACK": "false"})
    assert load_settings(mine).rate_limit.bypass_loopback is False
