"""The OpenAPI document's promises about input: every number the API takes (body, path, query,
header) has declared bounds, and every operation has its own id."""

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
