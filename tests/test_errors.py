"""The typed errors every layer raises: what their messages say and how long they may get."""

from __future__ import annotations

from allocation_engine.errors import FieldProblem, InvalidInput


def test_an_error_message_quotes_values_short_and_counts_what_it_leaves_out() -> None:
    """Given thousands of bad fields each holding a megabyte, then the message stays a few
    kilobytes: each value quoted short, the first problems spelled out, the rest counted, and
    every problem still kept as data."""
    huge = "x" * 1_000_000
    error = InvalidInput([FieldProblem(f"lines[{i}].sku", huge, "too long") for i in range(5_000)])
    message = str(error)
    assert len(message) < 4_000
    assert message.endswith("; and 4980 more")
    assert message.startswith("lines[0].sku='xxx")
    assert len(error.problems) == 5_000


def test_a_short_value_is_quoted_whole() -> None:
    """Given one bad field with a short value, then the message names the field, quotes the
    value whole and says what is wrong."""
    assert str(InvalidInput.one("lines[2].quantity", -2, "must be > 0")) == (
        "lines[2].quantity=-2: must be > 0"
    )
