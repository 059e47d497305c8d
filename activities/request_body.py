"""The base of every JSON request body the API accepts.

Pydantic's lax mode turns ``true`` into ``1.0`` and ``"5"`` into ``5``, and Python's JSON parser
reads ``Infinity`` and ``NaN``. A request body here means what it says: a number field takes a JSON
number (never ``true``/``false`` or a string), a true/false field takes ``true`` or ``false`` (never
``0``/``1``), no number is infinite or NaN, and unknown fields are refused so typos surface. Every
bound (``ge``/``le``, lengths) is declared on the field itself, so the OpenAPI document shows it.
"""

from __future__ import annotations

import types
import typing
from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

_NUMBERS = (int, float)


@cache
def _kinds(annotation: Any) -> frozenset[type]:
    """The plain types an annotation admits (``Optional``, unions and ``Annotated`` unwrapped)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _kinds(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return frozenset().union(*(_kinds(a) for a in typing.get_args(annotation)))
    if origin is typing.Literal:
        return frozenset(type(v) for v in typing.get_args(annotation))
    if isinstance(annotation, type):
        return frozenset({annotation}) if origin is None else frozenset({origin})
    return frozenset({object}) if origin is None else frozenset({origin})


class RequestBody(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _as_written(cls, value: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name or "")
        if field is None or value is None:
            return value
        kinds = _kinds(field.annotation)
        if object in kinds or Any in kinds:
            return value
        number = bool(kinds & set(_NUMBERS)) and bool not in kinds
        if isinstance(value, bool):
            if number:
                raise ValueError("must be a number, not true or false")
        elif isinstance(value, _NUMBERS):
            if bool in kinds and not kinds & set(_NUMBERS) and str not in kinds:
                raise ValueError("must be true or false, not a number")
        elif isinstance(value, str) and kinds - {type(None)} <= {int, float, bool}:
            raise ValueError("must be a number, not a string" if number else "must be true or false, not a string")
        return value
