"""Hypothesis strategies for hint documents, hostile ones included, written as JSON text
(with the NaN, Infinity, 1e400 and 400-digit tokens that json.dumps would never write)."""

from __future__ import annotations

import json
import math

from hypothesis import strategies as st

BIG_INT = "1" + "0" * 399
_TOKENS = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", BIG_INT, "1" * 4400, "0.5", "-0", "1E-400"]


class Token(str):
    """A number token written into the JSON text as it is."""


numbers = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(_TOKENS).map(Token),
)
colours = st.one_of(
    st.text(max_size=9), st.sampled_from(["#ff0000", "#7A9cc6"]),
    st.fixed_dictionaries({"rgb": st.lists(numbers, min_size=2, max_size=4)}),
    st.fixed_dictionaries({"lab": st.lists(numbers, min_size=2, max_size=4)}),
)
points = st.fixed_dictionaries(
    {"x": numbers, "y": numbers, "color": colours},
    optional={"radius": numbers, "note": st.text(max_size=5), "extra": numbers},
)
json_values = st.recursive(
    st.none() | st.booleans() | numbers | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)
documents = st.fixed_dictionaries(
    {"schema": st.sampled_from(["photochrom.hints/1", "photochrom.hints/2"]), "points": st.lists(points | json_values, max_size=6)},
    optional={"space": st.sampled_from(["pixels", "normalized", "NaN"]), "image": json_values},
)


def encode(value: object) -> str:
    """JSON text for a value drawn from these strategies."""
    if isinstance(value, Token):
        return str(value)
    if isinstance(value, float):
        return {math.inf: "Infinity", -math.inf: "-Infinity"}.get(value, "NaN" if math.isnan(value) else repr(value))
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {encode(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(encode(v) for v in value) + "]"
    return json.dumps(value)
