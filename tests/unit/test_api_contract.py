"""The OpenAPI document's promises: every number the API takes (body, path, query, header) has
declared bounds, every operation has its own id, and every success answer of an /api route is
described: a JSON body by a typed model naming all its fields, a stream or download by its media
type, a 204 by no body at all."""

from __future__ import annotations

import warnings

import pytest

from activities.settings import load_settings
from api.app import create_app


@pytest.fixture(scope="module")
def spec() -> dict:
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="Duplicate Operation ID")  # only a warning in FastAPI
        return create_app(load_settings({})).openapi()


def _numbers(schema: dict, where: str, schemas: dict, seen: set[str]):
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name not in seen:
            seen.add(name)
            yield from _numbers(schemas[name], name, schemas, seen)
        return
    if schema.get("type") in ("integer", "number"):
        yield where, schema
    for key in ("anyOf", "oneOf", "allOf"):
        for i, option in enumerate(schema.get(key, [])):
            yield from _numbers(option, where, schemas, seen)
    for name, prop in schema.get("properties", {}).items():
        yield from _numbers(prop, f"{where}.{name}", schemas, seen)
    if isinstance(schema.get("items"), dict):
        yield from _numbers(schema["items"], f"{where}[]", schemas, seen)
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _numbers(schema["additionalProperties"], f"{where}{{}}", schemas, seen)


def test_every_number_the_api_takes_is_bounded(spec):
    schemas = spec["components"]["schemas"]
    unbounded = []
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            found = []
            for param in op.get("parameters", []):
                found += _numbers(param["schema"], f"{param['in']} {param['name']}", schemas, set())
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            if body:
                found += _numbers(body, "body", schemas, set())
            for where, schema in found:
                low = schema.get("minimum", schema.get("exclusiveMinimum"))
                high = schema.get("maximum", schema.get("exclusiveMaximum"))
                if low is None or high is None:
                    unbounded.append(f"{method.upper()} {path}: {where}")
    assert unbounded == []


def test_operation_ids_are_unique(spec):
    ids = [op["operationId"] for ops in spec["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))


def _resolved(schema: dict, schemas: dict) -> dict:
    while "$ref" in schema:
        schema = schemas[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _untyped(schema: dict, where: str, schemas: dict, seen: set[str]):
    """Every place in ``schema`` that says nothing about its value (``{}``, or no type at all)."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name not in seen:
            seen.add(name)
            yield from _untyped(schemas[name], name, schemas, seen)
        return
    options = [o for key in ("anyOf", "oneOf", "allOf") for o in schema.get(key, [])]
    if not options and not any(key in schema for key in ("type", "const", "enum")):
        yield where
    for option in options:
        yield from _untyped(option, where, schemas, seen)
    for name, prop in schema.get("properties", {}).items():
        yield from _untyped(prop, f"{where}.{name}", schemas, seen)
    if isinstance(schema.get("items"), dict):
        yield from _untyped(schema["items"], f"{where}[]", schemas, seen)
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _untyped(schema["additionalProperties"], f"{where}{{}}", schemas, seen)


def _bodies(schema: dict, schemas: dict) -> list[dict]:
    """The object shapes a JSON answer may take (one model, or each option of a union)."""
    schema = _resolved(schema, schemas)
    options = schema.get("anyOf") or schema.get("oneOf")
    return [b for option in options for b in _bodies(option, schemas)] if options else [schema]


def _successes(spec: dict):
    for path, operations in spec["paths"].items():
        if not path.startswith("/api/"):
            continue
        for method, op in operations.items():
            found = {code: answer for code, answer in op["responses"].items() if code.startswith("2")}
            yield f"{method.upper()} {path}", found


def test_every_api_route_declares_its_success(spec):
    assert [where for where, found in _successes(spec) if not found] == []


def test_every_json_success_body_is_a_typed_model(spec):
    schemas = spec["components"]["schemas"]
    problems = []
    for where, found in _successes(spec):
        for code, answer in found.items():
            content = answer.get("content", {})
            if code == "204":
                if content:
                    problems.append(f"{where} {code}: a 204 has no body")
                continue
            if not content:
                problems.append(f"{where} {code}: no content declared")
            for media, body in content.items():
                schema = body.get("schema") or {}
                if not schema:
                    problems.append(f"{where} {code} {media}: no schema")
                    continue
                if media != "application/json":
                    continue
                for shape in _bodies(schema, schemas):
                    if shape.get("type") != "object" or not shape.get("properties"):
                        problems.append(f"{where} {code}: not an object with named fields: {shape}")
                    elif shape.get("additionalProperties") is not False:
                        problems.append(f"{where} {code}: {shape.get('title')} does not name every field "
                                        "(use api.schemas.base.Answer)")
                problems += [f"{where} {code}: untyped {place}" for place in _untyped(schema, "body", schemas, set())]
    assert problems == []


def test_streams_and_downloads_declare_their_media_type(spec):
    media = {where: set(answer.get("content", {})) for where, found in _successes(spec)
             for code, answer in found.items() if code == "200"}
    assert media["GET /api/events/stream"] == {"text/event-stream"}
    assert media["GET /api/cloud/jobs/{job_id}/logs/stream"] == {"text/event-stream"}
    assert media["GET /api/cloud/jobs/{job_id}/outputs/{name}"] == {"*/*"}
