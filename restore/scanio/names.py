"""File names as text for people and for JSON: a POSIX name is any bytes but NUL and "/", so
the str Python gives it may hold lone surrogates (bytes that are not UTF-8), which no UTF-8
output can carry, and control characters, which would break a line or drive the terminal.

Kept free of heavy imports: `cli.py` uses it on every line it prints.
"""

from __future__ import annotations

import os
import re

# C0 and C1 controls, DEL, the Unicode line and paragraph separators, and the bidirectional
# embeddings, overrides and isolates (they reorder what a terminal shows after them).
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def valid_unicode(text: str | bytes | os.PathLike[str] | os.PathLike[bytes]) -> str:
    """`text` with each byte that is not UTF-8 written as `\\xNN`; valid text is unchanged.

    For output that must be valid Unicode (JSON, HTML) and keeps other characters as they are.
    """
    value = os.fspath(text)
    if isinstance(value, str):
        try:
            value = value.encode("utf-8", "surrogateescape")  # undoes os.fsdecode
        except UnicodeEncodeError:  # a surrogate that did not come from a byte
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value.decode("utf-8", "backslashreplace")


def valid_document(value: object) -> object:
    """A JSON-ready document (dicts, lists, str, numbers) with `valid_unicode` applied to every
    str in it, keys included."""
    if isinstance(value, str):
        return valid_unicode(value)
    if isinstance(value, dict):
        return {valid_document(key): valid_document(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [valid_document(item) for item in value]
    return value


def printable(text: str | bytes | os.PathLike[str] | os.PathLike[bytes]) -> str:
    """`text` for a terminal or a log: one line, each byte that is not UTF-8 and each control
    character written as `\\xNN` (`\\u2028` etc. above U+00FF)."""
    return _UNPRINTABLE.sub(_escaped, valid_unicode(text))


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"
