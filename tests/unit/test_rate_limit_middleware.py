"""Rate limits through the real API application (in process, its real start-up, SQLite, PostgreSQL or
Redis behind it): the headers, the 429 body, the paths never counted, the client address only through
a trusted proxy, the audit entry of a refusal, the loopback bypass of ``simpletuner dev``, several API
replicas sharing counts, fail-closed when Redis goes away, and a clear stop when it is not there at
start-up. The OpenAPI document says where 429 can come."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from activities.db.models import AuditEntry
from activities.ratelimit import violations
from activities.settings import load_settings
from api.app import create_app
from tests.ports import free_port
from tests.servers.redis_server import RedisServer

REPO = Path(__file__).resolve().parents[2]
LIMITED = "/api/cloud/jobs"  # needs a sign-in: 401 here, but counted before anything else runs
CONFIG = "rate_limit:\n  default_calls: 3\n"


def app_settings(tmp_path: Path, config: str = CONFIG, **env: str):
    data = tmp_path / f"data-{len(list(tmp_path.glob('data-*')))}"
    data.mkdir()
    (data / "enterprise.yaml").write_text(config)
    return load_settings({"HOME": str(tmp_path), "SIMPLETUNER_ENTERPRISE_CONFIG": str(data / "enterprise.yaml"),
                          "SIMPLETUNER_DATA_DIR": str(data), "SIMPLETUNER_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
                          **env})


@asynccontextmanager
async def running(settings):
    """The application after its start-up (database, bootstrap), and a client factory: ``client(ip)``
    calls it from that peer address."""
    app = create_app(settings)
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(app.router.lifespan_context(app))

        def client(ip: str = "192.0.2.10") -> httpx.AsyncClient:
            transport = httpx.ASGITransport(app=app, client=(ip, 40000))
            return httpx.AsyncClient(transport=transport, base_url="http://api.test")
        yield app, client


def audit_entries(app) -> list[AuditEntry]:
    with app.state.core.db.session() as s:
        return list(s.exec(select(AuditEntry).where(AuditEntry.action == violations.ACTION)))


async def test_headers_429_and_audit(tmp_path):
    heard: list[violations.Violation] = []
    violations.VIOLATION_LISTENERS.append(heard.append)
    try:
        async with running(app_settings(tmp_path)) as (app, client):
            async with client("192.0.2.10") as c:
                before = time.time()
                answers = [await c.get(LIMITED, headers={"User-Agent": "probe/1.0"}) for _ in range(3)]
                assert [a.status_code for a in answers] == [401, 401, 401]
                assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["2", "1", "0"]
                assert {a.headers["X-RateLimit-Limit"] for a in answers} == {"3"}
                reset = int(answers[0].headers["X-RateLimit-Reset"])
                assert before + 60 <= reset <= time.time() + 61  # unix time: the first request's slot frees then

                refused = await c.get(LIMITED, headers={"User-Agent": "probe/1.0"})
                assert refused.status_code == 429 and refused.headers["content-type"] == "application/json"
                assert "at most 3 per 60 s" in refused.json()["detail"] and set(refused.json()) == {"detail"}
                assert 1 <= int(refused.headers["Retry-After"]) <= 60
                assert refused.headers["X-RateLimit-Remaining"] == "0"
                assert int(refused.headers["X-RateLimit-Reset"]) == reset
                again = await c.post("/api/configs/x", json={})  # the same default rule, any method
                assert again.status_code == 429

            entries = audit_entries(app)
            assert len(entries) == 1  # one entry per client and window, however often it knocks
            entry = entries[0]
            assert entry.ip == "192.0.2.10" and entry.target_id == "default"
            assert entry.details["path"] == LIMITED and entry.details["method"] == "GET"
            assert entry.details["user_agent"] == "probe/1.0" and entry.details["limit"] == 3
            assert [(v.ip, v.path, v.method) for v in heard] == [("192.0.2.10", LIMITED, "GET"),
                                                                  ("192.0.2.10", "/api/configs/x", "POST")]

            async with client("192.0.2.11") as other:  # another address has its own count
                assert (await other.get(LIMITED)).headers["X-RateLimit-Remaining"] == "2"
    finally:
        violations.VIOLATION_LISTENERS.remove(heard.append)


async def test_excluded_paths_are_never_counted(tmp_path):
    async with running(app_settings(tmp_path, "rate_limit:\n  default_calls: 1\n")) as (_, client):
        async with client() as c:
            for path in ("/api/cloud/health/live", "/api/cloud/health", "/api/users/me", "/static/console.css"):
                for _ in range(3):
                    answer = await c.get(path)
                    assert answer.status_code != 429 and "X-RateLimit-Limit" not in answer.headers, path
            assert (await c.get(LIMITED)).status_code == 401
            assert (await c.get(LIMITED)).status_code == 429


async def test_sign_in_attempts_per_address(tmp_path):
    async with running(app_settings(tmp_path, "# defaults\n")) as (_, client):
        async with client("198.51.100.4") as c:
            # different accounts: the per-account failure limit never fires, the per-address one does
            tries = [await c.post("/api/auth/login", json={"username": f"u{i}", "password": "x"}) for i in range(6)]
            assert [t.status_code for t in tries] == [401] * 5 + [429]
            assert tries[0].headers["X-RateLimit-Limit"] == "5"
            assert "at most 5 per 60 s" in tries[5].json()["detail"]
            assert (await c.get(LIMITED)).status_code == 401  # other routes still answer


async def test_the_client_address_comes_only_from_a_trusted_proxy(tmp_path):
    config = CONFIG + "network:\n  trust_proxy_headers: true\n  trusted_proxies: [10.0.0.0/8]\n"
    async with running(app_settings(tmp_path, config)) as (app, client):
        async with client("10.0.0.2") as proxy:
            for _ in range(3):
                assert (await proxy.get(LIMITED, headers={"X-Forwarded-For": "198.51.100.20"})).status_code == 401
            assert (await proxy.get(LIMITED, headers={"X-Forwarded-For": "198.51.100.20"})).status_code == 429
            # behind the same proxy, another client is counted on its own
            assert (await proxy.get(LIMITED, headers={"X-Forwarded-For": "198.51.100.21"})).status_code == 401
        async with client("192.0.2.50") as direct:  # not a proxy: its X-Forwarded-For is not believed
            spoofed = [await direct.get(LIMITED, headers={"X-Forwarded-For": f"203.0.113.{i}"}) for i in range(4)]
            assert [s.status_code for s in spoofed] == [401, 401, 401, 429]
        assert {e.ip for e in audit_entries(app)} == {"198.51.100.20", "192.0.2.50"}


@pytest.mark.parametrize("bypass", [True, False])
async def test_loopback_is_bypassed_only_when_the_dev_command_says_so(tmp_path, bypass):
    settings = app_settings(tmp_path, SIMPLETUNER_RATE_LIMIT_BYPASS_LOOPBACK=str(bypass).lower())
    async with running(settings) as (_, client):
        for ip in ("127.0.0.1", "::1"):
            async with client(ip) as local:
                codes = [(await local.get(LIMITED)).status_code for _ in range(4)]
                assert codes == ([401] * 4 if bypass else [401, 401, 401, 429]), ip
        async with client("192.0.2.60") as remote:  # never for anyone else
            assert [(await remote.get(LIMITED)).status_code for _ in range(4)] == [401, 401, 401, 429]


async def test_off_means_no_counting(tmp_path):
    async with running(app_settings(tmp_path, SIMPLETUNER_RATE_LIMIT_ENABLED="false")) as (app, client):
        assert app.state.rate_limiter is None
        async with client() as c:
            answers = [await c.get(LIMITED) for _ in range(5)]
            assert {a.status_code for a in answers} == {401}
            assert "X-RateLimit-Limit" not in answers[-1].headers


async def test_counting_does_not_wait_for_the_app_databases_write_lock(tmp_path):
    import sqlite3

    settings = app_settings(tmp_path)
    async with running(settings) as (_, client):
        holder = sqlite3.connect(settings.data_dir / "simpletuner.db", isolation_level=None, timeout=30)
        holder.execute("BEGIN IMMEDIATE")  # as a long write of the app would
        try:
            async with client() as c:
                answer = await c.get("/api/cloud/jobs", timeout=5)
                assert answer.status_code == 401 and answer.headers["X-RateLimit-Remaining"] == "2"
        finally:
            holder.execute("ROLLBACK")
            holder.close()


@pytest.mark.parametrize("shared", ["postgresql", "redis"])
async def test_two_api_replicas_share_the_counts(tmp_path, shared, request):
    if shared == "redis":
        env = {"SIMPLETUNER_RATE_LIMIT_BACKEND": "redis", "SIMPLETUNER_RATE_LIMIT_REDIS_URL": request.getfixturevalue(
            "redis_url")}
    else:
        from tests.conftest import empty_postgres

        url = request.getfixturevalue("postgres_url")
        empty_postgres(url)
        env = {"SIMPLETUNER_DATABASE_URL": url}
    one, two = app_settings(tmp_path, **env), app_settings(tmp_path, **env)  # two data dirs: nothing else shared
    async with running(one) as (_, first), running(two) as (_, second):
        async with first("203.0.113.77") as a, second("203.0.113.77") as b:
            codes = [(await (a if i % 2 == 0 else b).get(LIMITED)).status_code for i in range(4)]
            assert codes == [401, 401, 401, 429]
            assert (await a.get(LIMITED)).status_code == 429 and (await b.get(LIMITED)).status_code == 429


async def test_redis_going_away_fails_closed_but_health_still_answers(tmp_path):
    with RedisServer() as own:
        settings = app_settings(tmp_path, SIMPLETUNER_RATE_LIMIT_BACKEND="redis",
                                SIMPLETUNER_RATE_LIMIT_REDIS_URL=own.url)
        async with running(settings) as (_, client):
            async with client() as c:
                assert (await c.get(LIMITED)).status_code == 401
                own.stop()
                gone = await c.get(LIMITED)
                assert gone.status_code == 503 and "Redis does not answer" in gone.json()["detail"]
                assert (await c.get("/api/cloud/health/live")).status_code == 200  # probes are never counted


def test_an_unreachable_redis_stops_the_server_with_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIMPLETUNER_")}
    (tmp_path / "enterprise.yaml").write_text("# nothing\n")
    env.update({"HOME": str(tmp_path), "SIMPLETUNER_ENTERPRISE_CONFIG": str(tmp_path / "enterprise.yaml"),
                "SIMPLETUNER_DATA_DIR": str(tmp_path / "data"), "SIMPLETUNER_PORT": str(free_port()),
                "SIMPLETUNER_RATE_LIMIT_BACKEND": "redis",
                "SIMPLETUNER_RATE_LIMIT_REDIS_URL": f"redis://:s3cret@127.0.0.1:{free_port()}/0"})
    done = subprocess.run([sys.executable, "-m", "cli.main", "server"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: SIMPLETUNER_RATE_LIMIT_REDIS_URL: "), done.stderr
    assert "cannot use Redis at redis://:***@127.0.0.1:" in lines[0] and "s3cret" not in lines[0] and "Traceback" not in done.stderr
    assert not (tmp_path / "data").exists()  # stopped before anything was started or written


def test_the_openapi_document_says_where_429_can_come(tmp_path):
    on = create_app(app_settings(tmp_path)).openapi()["paths"]
    for path, method in (("/api/cloud/jobs", "get"), ("/api/queue/submit", "post"), ("/api/auth/login", "post"),
                         ("/api/configs/{name}", "put"), ("/api/cloud/jobs/{job_id}/cancel", "post")):
        answer = on[path][method]["responses"]["429"]
        assert "Retry-After" in answer["headers"], path
    for path in ("/api/cloud/health/live", "/api/users/me", "/api/events/stream"):
        assert "429" not in on[path]["get"]["responses"], path
    off = create_app(app_settings(tmp_path, SIMPLETUNER_RATE_LIMIT_ENABLED="false")).openapi()["paths"]
    assert "429" not in off["/api/cloud/jobs"]["get"]["responses"]
    assert "429" in off["/api/auth/login"]["post"]["responses"]  # the failed-sign-in limit is always there
