"""What every response model shares: the strict base and the fields of small generic answers."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class Answer(BaseModel):
    """A JSON answer with exactly these fields: an unnamed field is an error, never dropped."""
    model_config = ConfigDict(extra="forbid")


Total = Annotated[int, Field(description="rows in the whole list (every page)")]
NextCursor = Annotated[str | None, Field(description="pass as `cursor` for the next page; null on the last one")]
Number = Annotated[int | float, Field(description="a whole number for counts, else a decimal")]


class Deleted(Answer):
    deleted: str = Field(description="the id (or name) of what was deleted")
