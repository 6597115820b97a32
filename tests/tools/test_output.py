"""tool_output_to_str: what the model sees for each kind of return value."""

from __future__ import annotations

import dataclasses
import datetime
import enum
from typing import Any

import pytest
from pydantic import BaseModel, Field

from threadline.tools.function_tool import tool_output_to_str


class Forecast(BaseModel):
    city: str
    temp_c: float = Field(serialization_alias="tempC")


class Aliased(BaseModel, serialize_by_alias=True):
    temp_c: float = Field(serialization_alias="tempC")


@dataclasses.dataclass
class Reading:
    when: datetime.date
    value: int


class Level(enum.Enum):
    HIGH = "high"


class Opaque:
    def __str__(self) -> str:
        return "<opaque>"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("plain text", "plain text"),
        ("", ""),
        (None, ""),
        (Forecast(city="Oslo", temp_c=-3.5), '{"city":"Oslo","temp_c":-3.5}'),
        (Aliased(temp_c=2), '{"tempC":2.0}'),  # the model's own config is honoured
        ({"a": 1, "b": [True, None], "ü": "é"}, '{"a":1,"b":[true,null],"ü":"é"}'),
        ([1, "two", {"three": 3.0}], '[1,"two",{"three":3.0}]'),
        ((1, 2), "[1,2]"),
        (Reading(datetime.date(2024, 5, 1), 7), '{"when":"2024-05-01","value":7}'),
        ([Forecast(city="A", temp_c=1)], '[{"city":"A","temp_c":1.0}]'),
        ({"level": Level.HIGH, "obj": Opaque()}, '{"level":"high","obj":"<opaque>"}'),
        (42, "42"),
        (1.5, "1.5"),
        (True, "True"),
        (Level.HIGH, "Level.HIGH"),
        (Opaque(), "<opaque>"),
        (Reading, str(Reading)),  # a dataclass type is not an instance
    ],
)
def test_tool_output_to_str(value: Any, expected: str) -> None:
    assert tool_output_to_str(value) == expected
