"""JSON log records have exactly the guide's fields; LogContext nests; the correlation id is the one in
effect; the API takes a safe X-Correlation-ID, replaces anything else, and never logs it raw."""

from __future__ import annotations

import asyncio
import json
import logging

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from activities import logging_setup
from activities.observability import correlation
from activities.observability.log_context import LogContext
from api.correlation import CorrelationIdMiddleware

FIELDS = {"timestamp", "level", "logger", "message", "correlation_id", "source", "extra"}


@pytest.fixture
def json_log(tmp_path):
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    path = tmp_path / "app.log"
    logging_setup.configure("DEBUG", "json", str(path))

    def records() -> list[dict]:
        for handler in logging.getLogger().handlers:
            handler.flush()
        return [json.loads(line) for line in path.read_text().splitlines()]
    yield records
    for handler in root.handlers:
        if handler not in saved[0]:
            handler.close()
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def test_a_record_has_exactly_the_fields_and_nested_context(json_log):
    log = logging_setup.get_logger("simpletuner.test.jobs")
    with correlation.correlation("req-42"):
        with LogContext(job_id="job-1", provider="replicate"):
            log.info("outer")
            with LogContext(step="validation", attempt=2):
                log.info("inner %s", "arg", extra={"cost_estimate": 2.5})
            log.info("outer again")
    log.warning("outside")
    outer, inner, again, outside = json_log()
    for record in (outer, inner, again, outside):
        assert set(record) == FIELDS, record
        assert record["timestamp"].endswith("Z") and record["logger"] == "simpletuner.test.jobs"
        assert set(record["source"]) == {"file", "line", "function"}
        assert record["source"]["file"] == "test_structured_logging.py"
    assert outer["extra"] == {"job_id": "job-1", "provider": "replicate"} and outer["correlation_id"] == "req-42"
    assert inner["message"] == "inner arg" and inner["level"] == "INFO"
    assert inner["extra"] == {"job_id": "job-1", "provider": "replicate", "step": "validation", "attempt": 2,
                              "cost_estimate": 2.5}
    assert again["extra"] == {"job_id": "job-1", "provider": "replicate"}
    assert outside["extra"] == {} and outside["correlation_id"] is None and outside["level"] == "WARNING"


def test_an_exception_lands_in_extra(json_log):
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("x").exception("failed")
    (record,) = json_log()
    assert set(record) == FIELDS and "ValueError: boom" in record["extra"]["exception"]


def test_context_is_kept_per_task(json_log):
    log = logging.getLogger("tasks")

    async def one(n: int) -> None:
        with correlation.correlation(f"task-{n}"), LogContext(job_id=f"job-{n}"):
            await asyncio.sleep(0)
            log.info("step")

    async def both() -> None:
        await asyncio.gather(one(1), one(2))
    asyncio.run(both())
    got = sorted((r["correlation_id"], r["extra"]["job_id"]) for r in json_log() if r["logger"] == "tasks")
    assert got == [("task-1", "job-1"), ("task-2", "job-2")]


@pytest.mark.parametrize("level, fmt, wrong", [("LOUD", "json", "SIMPLETUNER_LOG_LEVEL"),
                                               ("INFO", "xml", "SIMPLETUNER_LOG_FORMAT")])
def test_a_bad_level_or_format_names_the_setting(level, fmt, wrong):
    with pytest.raises(ValueError, match=wrong):
        logging_setup.configure(level, fmt)


def test_an_unopenable_log_file_is_a_start_up_error_naming_the_setting(tmp_path):
    from activities.runtime import configure_logging
    from activities.settings import ConfigFileError, load_settings

    settings = load_settings({"SIMPLETUNER_ENTERPRISE_CONFIG": str(_empty(tmp_path)),
                              "SIMPLETUNER_LOG_FILE": str(tmp_path / "missing-dir" / "x.log")})
    with pytest.raises(ConfigFileError, match="SIMPLETUNER_LOG_FILE"):
        configure_logging(settings)


def _empty(tmp_path):
    path = tmp_path / "enterprise.yaml"
    path.write_text("{}\n")
    return path


@pytest.mark.parametrize("value", ["abc123", "Req-1.2:3_x", "a" * 128])
def test_a_safe_id_is_kept(value):
    assert correlation.accept(value) == value


@pytest.mark.parametrize("value", ["", "a" * 129, "with space", "new\nline", "<script>", "-leading-dash", "é"])
def test_anything_else_is_replaced(value):
    replaced = correlation.accept(value)
    assert replaced != value and correlation.is_valid(replaced) and len(replaced) == 32


def _app() -> Starlette:
    async def echo(request):
        logging.getLogger("simpletuner.test.route").info("handled")
        return JSONResponse({"seen": correlation.current()})
    return Starlette(routes=[Route("/echo", echo)], middleware=[])


async def _get(headers: dict[str, str]) -> httpx.Response:
    app = CorrelationIdMiddleware(_app())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        return await client.get("/echo", headers=headers)


async def test_the_api_keeps_a_safe_id_and_returns_it(json_log):
    answer = await _get({"X-Correlation-ID": "caller-id-7"})
    assert answer.headers["X-Correlation-ID"] == "caller-id-7" and answer.json() == {"seen": "caller-id-7"}
    assert [r["correlation_id"] for r in json_log() if r["message"] == "handled"] == ["caller-id-7"]


async def test_the_api_makes_an_id_when_there_is_none():
    answer = await _get({})
    assert correlation.is_valid(answer.headers["X-Correlation-ID"])
    assert answer.json() == {"seen": answer.headers["X-Correlation-ID"]}


async def test_a_malformed_id_is_replaced_and_never_logged_raw(json_log):
    raw = "evil\" injected=<1> " + "x" * 300
    answer = await _get({"X-Correlation-ID": raw})
    new = answer.headers["X-Correlation-ID"]
    assert new != raw and correlation.is_valid(new) and answer.json() == {"seen": new}
    records = json_log()
    text = json.dumps(records)
    assert "injected" not in text and "x" * 50 not in text
    assert any("replaced a malformed" in r["message"] and r["correlation_id"] == new for r in records)
