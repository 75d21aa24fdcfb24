"""Reading JSON that comes from outside (hint files, the hint editor's requests) within limits.

Whatever the bytes, the outcome is Python values, or a HintError whose one-line message
names the file, the point where there is one, and the reason. Only regular files are opened
(a FIFO blocks its reader until something writes; a device may never end). Size, nesting and
the number of values are capped before they cost time or memory, and every number must be
finite: json itself accepts NaN and Infinity, overflows 1e400 to infinity, fails deep
nesting with a RecursionError and long integers with a ValueError.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
from pathlib import Path

import numpy as np

# Far above any real hint file, and low enough that the worst a file can be takes well
# under a second to refuse.
#: Largest document read; checked before reading, so a huge file costs nothing. A thousand
#: points with 1000-character notes are about 1.1 MB.
MAX_FILE_BYTES = 4 * 1024 * 1024
#: Deepest nesting of arrays and objects: a hint document needs 5 (document, points, point,
#: colour, lab). Checked before json parses, whose recursion would otherwise fail at ~1000
#: levels with a RecursionError (or, with a raised recursion limit, overflow the C stack).
MAX_DEPTH = 32
#: Most values (array items and object members) in a document: a point has at most 9 (x,
#: y, radius, note, colour, its one key, three components), so 1000 points are about 10,000.
#: Bounds the schema check's work: jsonschema makes an error object for every failing value.
MAX_VALUES = 20_000
#: Longest integer literal parsed: more digits than any number a hint file may hold, and far
#: below the 4300 at which int() refuses with a ValueError.
MAX_INTEGER_DIGITS = 20


class HintError(Exception):
    """A hint file that cannot be used; the message names the file, the point and the reason."""

    def __init__(self, path: Path | str, reason: str, index: int | None = None) -> None:
        name = printable(str(path))  # a file name may hold a newline: the message stays one line
        where = f"{name}: point {index}" if index is not None else name
        super().__init__(f"{where}: {reason}")
        self.path, self.reason, self.index = Path(path), reason, index


def printable(text: str) -> str:
    """Text with control characters escaped, and a file name's bytes that are not UTF-8
    (lone surrogates, as os.fsdecode gives them) written as `\\xNN`, as the CLI prints them."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escaped(c) for c in text)


def _escaped(char: str) -> str:
    if "\udc80" <= char <= "\udcff":  # os.fsdecode's stand-in for the byte 0x80-0xFF
        return f"\\x{ord(char) - 0xDC00:02x}"
    return char.encode("unicode_escape", "backslashreplace").decode("ascii")


def short(text: str, limit: int = 60) -> str:
    """A value quoted in a message: one line of at most `limit` characters (a hostile file's
    values can be megabytes)."""
    text = printable(text)
    return text if len(text) <= limit else f"{text[: limit - 1]}…"


_FILE_KINDS = (
    (stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
)


def _refuse_special(path: Path, mode: int) -> None:
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _FILE_KINDS if test(mode)), "not a file")
        raise HintError(path, f"is {kind}, not a regular file; only regular files are read")


def _too_big(size: int) -> str:
    return f"{size} bytes: a hint file is at most {MAX_FILE_BYTES} bytes"


def read_regular_file(path: Path) -> bytes:
    """A regular file's bytes, at most MAX_FILE_BYTES. Raises HintError.

    The file is checked before it is opened, and again on the open descriptor: it is opened
    non-blocking, so that a FIFO swapped in between cannot block either."""
    try:
        _refuse_special(path, os.stat(path).st_mode)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
        try:
            info = os.fstat(fd)
            _refuse_special(path, info.st_mode)
            if info.st_size > MAX_FILE_BYTES:
                raise HintError(path, _too_big(info.st_size))
            with os.fdopen(os.dup(fd), "rb") as file:
                data = file.read(MAX_FILE_BYTES + 1)  # +1: a file that grew since fstat is still refused
        finally:
            os.close(fd)
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the name
        raise HintError(path, f"unreadable: {getattr(exc, 'strerror', None) or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise HintError(path, _too_big(len(data)))
    return data


def decode_json(data: bytes, path: Path | str) -> object:
    """JSON bytes (UTF-8, -16 or -32, as json reads them) as Python values, within the limits
    above; `path` names the document in errors. Raises HintError."""
    if len(data) > MAX_FILE_BYTES:
        raise HintError(path, _too_big(len(data)))
    try:
        text = data.decode(json.detect_encoding(data))
    except UnicodeDecodeError as exc:
        raise HintError(path, f"not valid JSON: {exc}") from None
    if _depth(text) > MAX_DEPTH:
        raise HintError(path, f"nested deeper than {MAX_DEPTH} levels")
    try:
        document = json.loads(text, parse_constant=_parse_constant, parse_float=_parse_float, parse_int=_parse_int)
    except json.JSONDecodeError as exc:
        raise HintError(path, f"not valid JSON: {exc}") from None
    except RecursionError:  # not reached past the depth check; kept so that no input escapes as one
        raise HintError(path, f"nested deeper than {MAX_DEPTH} levels") from None
    _Walk(path).check(document, [])
    return document


# A JSON string, or an unterminated one running to the end; possessive, so each string is
# scanned once (a failed match retried from every quote inside it would be quadratic).
_STRING = re.compile(r'"(?:[^"\\]|\\.)*+(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")


def _depth(text: str) -> int:
    """How deeply the JSON text's arrays and objects nest (brackets in strings do not count).

    At least the depth json's parser can reach: it stops at the first bracket that does not
    match, and where it has parsed, the brackets counted here are the ones it has seen."""
    brackets = _NOT_BRACKETS.sub("", _STRING.sub("", text)).encode("ascii")
    if not brackets:
        return 0
    codes = np.frombuffer(brackets, np.uint8)
    steps = np.where((codes == ord("[")) | (codes == ord("{")), 1, -1).astype(np.int32)
    return int(np.cumsum(steps).max())


class _BadNumber:
    """A number token a document may not hold, left in its place so that the refusal can say
    where it is (json's parse hooks do not know)."""

    def __init__(self, text: str, why: str) -> None:
        self.text, self.why = text, why


def _parse_constant(name: str) -> _BadNumber:
    return _BadNumber(name, "numbers must be finite")


def _parse_float(text: str) -> float | _BadNumber:
    value = float(text)
    return value if math.isfinite(value) else _BadNumber(text, "numbers must be finite")


def _parse_int(text: str) -> int | _BadNumber:
    digits = len(text.lstrip("-"))
    if digits > MAX_INTEGER_DIGITS:
        return _BadNumber(f"an integer of {digits} digits", f"at most {MAX_INTEGER_DIGITS} digits")
    return int(text)


class _Walk:
    """Looks through a decoded document, in document order, for the first number it may not
    hold, counting values on the way."""

    def __init__(self, path: Path | str) -> None:
        self.path, self.values = path, 0

    def check(self, value: object, location: list[str | int]) -> None:
        if isinstance(value, _BadNumber):
            raise self._error(location, f"{short(value.text, 30)} is not allowed: {value.why}")
        if isinstance(value, str):
            self._text(value, location)
            return
        if isinstance(value, dict):
            items: object = value.items()
        elif isinstance(value, list):
            items = enumerate(value)
        else:
            return
        self.values += len(value)
        if self.values > MAX_VALUES:
            raise HintError(self.path, f"holds more than {MAX_VALUES} values (array items and object members)")
        for key, item in items:  # type: ignore[attr-defined]
            if isinstance(key, str):
                self._text(key, location)
            if isinstance(item, (dict, list, str, _BadNumber)):
                self.check(item, [*location, key])  # as deep as MAX_DEPTH at most

    def _text(self, text: str, location: list[str | int]) -> None:
        """A string must be writable as UTF-8: json lets a \\ud800 escape through as a lone
        surrogate, which fails whatever writes it later (a file, the catalog)."""
        if not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise self._error(location, f"a string holds an unpaired surrogate \\u{ord(text[exc.start]):04x}") from None

    def _error(self, location: list[str | int], what: str) -> HintError:
        index = location[1] if len(location) >= 2 and location[0] == "points" and isinstance(location[1], int) else None
        field = _location(location[2:] if index is not None else location)
        return HintError(self.path, f"{field}: {what}" if field else what, index)


def _location(location: list[str | int]) -> str:
    """["color", "lab", 0] as color.lab[0]."""
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else f"{'.' if text else ''}{short(part, 30)}"
    return text
