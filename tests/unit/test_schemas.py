"""The shared marshmallow pieces: inputs are refused, never silently changed."""
from __future__ import annotations

import pytest
from marshmallow import ValidationError

from shared.schemas import PageArgs


@pytest.mark.parametrize("value", [1.5, True, False, "1.5", "two", None])
def test_a_whole_number_is_never_rounded_or_guessed(value):
    with pytest.raises(ValidationError) as refused:
        PageArgs().load({"page": value})
    assert "page" in refused.value.messages


@pytest.mark.parametrize("value, expected", [(3, 3), (3.0, 3), ("3", 3)])
def test_a_whole_number_in_json_or_a_query_string_is_taken(value, expected):
    assert PageArgs().load({"page": value})["page"] == expected
