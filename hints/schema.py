"""Curator hint files, `photochrom.hints/1` (see CONTRACTS.md): parsing and validation.

Validation has two stages. `load_hint_file` checks the document against the JSON Schema
below (jsonschema): keys, types, colours, ranges. `resolve` checks it against the scan it
is used with (the right scan, every point inside the image, no radius larger than the
image) and gives each point in the scan's own upright pixel grid with its chroma. Every
error names the file, the point's index where there is one, and the reason, on one line.

Hint files come from outside (a curator, a script, a web page through the editor): they are
read and decoded within limits (hints/untrusted.py: regular files only, size, nesting, finite
numbers), and the schema caps the points and every number's range. Whatever the bytes, the
outcome is a HintFile whose every number is finite and in range, or a HintError.

Coordinates: `space: "pixels"` (default): x = column, y = row of the upright scan, origin
top-left, 0 <= x < width. `space: "normalized"`: x, y in [0, 1], mapped to
x * (width - 1), y * (height - 1), so (0, 0) and (1, 1) are the corner pixels.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from jsonschema import Draft202012Validator

from hints.untrusted import HintError, decode_json, read_regular_file, short

SCHEMA_ID = "photochrom.hints/1"
#: Default radius (pixels) as a fraction of the scan's long side, at least 2 pixels.
DEFAULT_RADIUS_FRACTION = 0.004
#: Most points in one file. Holding hints solves a dense points x points system
#: (restore/hold.py): 1000 points take 8 MB and about a second, 4000 took 30 s, and 200,000
#: would need 298 GiB. Size, nesting and numbers are limited in hints/untrusted.py.
MAX_POINTS = 1000
#: Largest pixel coordinate or radius: above any image side a TIFF (2^32 - 1) can have.
MAX_PIXELS = 2**32

_COORDINATE = {"type": "number", "minimum": 0, "maximum": MAX_PIXELS}
JSON_SCHEMA: dict[str, object] = {
    "type": "object",
    "required": ["schema", "points"],
    "additionalProperties": False,
    "properties": {
        "schema": {"const": SCHEMA_ID},
        "image": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"sha256": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"}, "path": {"type": "string"}},
        },
        "space": {"enum": ["pixels", "normalized"]},
        "points": {"type": "array", "maxItems": MAX_POINTS, "items": {"$ref": "#/$defs/point"}},
    },
    "$defs": {
        "point": {
            "type": "object",
            "required": ["x", "y", "color"],
            "additionalProperties": False,
            "properties": {
                "x": _COORDINATE,
                "y": _COORDINATE,
                "color": {"$ref": "#/$defs/color"},
                "radius": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_PIXELS},
                "note": {"type": "string"},
            },
        },
        "color": {
            "oneOf": [
                {"type": "string", "pattern": "^#[0-9a-fA-F]{6}$"},
                {
                    "type": "object",
                    "required": ["rgb"],
                    "additionalProperties": False,
                    "properties": {
                        "rgb": {"type": "array", "minItems": 3, "maxItems": 3, "items": {"type": "number", "minimum": 0, "maximum": 255}}
                    },
                },
                {
                    "type": "object",
                    "required": ["lab"],
                    "additionalProperties": False,
                    "properties": {
                        "lab": {
                            "type": "array",
                            "minItems": 3,
                            "maxItems": 3,
                            "prefixItems": [
                                {"type": "number", "minimum": 0, "maximum": 100},
                                {"type": "number", "minimum": -128, "maximum": 127},
                                {"type": "number", "minimum": -128, "maximum": 127},
                            ],
                        }
                    },
                },
            ]
        },
    },
}
_VALIDATOR = Draft202012Validator(JSON_SCHEMA)
_COLOUR_FORMS = "expected \"#rrggbb\", {\"rgb\": [r, g, b]} with 0-255, or {\"lab\": [L, a, b]} with L 0-100"


@dataclass(frozen=True)
class Hint:
    """One curator hint in the upright scan's pixel grid; only its chroma is used."""

    x_px: float  # column
    y_px: float  # row
    ab: tuple[float, float]  # CIE a*, b* (D65)
    radius_px: float
    note: str = ""


@dataclass(frozen=True)
class HintFile:
    path: Path
    sha256: str  # of the file's bytes: recorded with every result it makes
    image_sha256: str | None
    space: str
    points: tuple[dict[str, object], ...]


def load_hint_file(path: Path) -> HintFile:
    """Read and schema-check a hint file (a regular file only). Raises HintError."""
    return parse_hint_document(read_regular_file(Path(path)), path)


def parse_hint_document(data: bytes, path: Path | str) -> HintFile:
    """Schema-check a hint document's bytes as `load_hint_file` does; `path` names it in errors
    (and is the HintFile's path). Raises HintError."""
    path = Path(path)
    document = decode_json(data, path)
    errors = sorted(_VALIDATOR.iter_errors(document), key=lambda e: (list(e.absolute_path), e.message))
    if errors:
        raise _explain(path, errors[0])
    image = document.get("image", {})
    return HintFile(
        path=path,
        sha256=hashlib.sha256(data).hexdigest(),
        image_sha256=image.get("sha256", "").lower() or None,
        space=document.get("space", "pixels"),
        points=tuple(document["points"]),
    )


def _explain(path: Path, error: object) -> HintError:
    """A jsonschema error as one line a curator can act on. Values are quoted short: a
    hostile file's values can be megabytes."""
    location = list(error.absolute_path)  # type: ignore[attr-defined]
    index = location[1] if len(location) >= 2 and location[0] == "points" else None
    within = location[2:] if index is not None else location  # a point's own error has no field
    field = next((short(p, 30) for p in reversed(within) if isinstance(p, str)), None)
    validator, instance = error.validator, error.instance  # type: ignore[attr-defined]
    if location and location[-1] == "color":  # a failed oneOf is reported at the colour itself
        reason = f"bad colour {short(json.dumps(instance, ensure_ascii=False))}: {_COLOUR_FORMS}"
    elif validator == "additionalProperties":
        unknown = sorted(set(instance) - set(error.schema.get("properties", {})))  # type: ignore[attr-defined]
        reason = f"unknown key {short(repr(unknown[0]))}" if unknown else short(error.message, 200)  # type: ignore[attr-defined]
    elif validator == "required":
        reason = error.message.replace("is a required property", "is missing")  # type: ignore[attr-defined]
    elif validator == "const" and location == ["schema"]:
        reason = f"schema must be {SCHEMA_ID!r}, got {short(repr(instance))}"
    elif validator == "maxItems" and location == ["points"]:
        reason = f"{len(instance)} points: a hint file holds at most {MAX_POINTS}"
    else:
        message = error.message.replace(repr(instance), short(repr(instance)))  # type: ignore[attr-defined]
        reason = f"{field}: {message}" if field else message
    return HintError(path, short(reason, 300), index)


def colour_to_ab(colour: object) -> tuple[float, float]:
    """A schema-valid `color` value -> its CIE a*, b* (D65)."""
    from skimage.color import rgb2lab

    if isinstance(colour, dict) and "lab" in colour:
        return float(colour["lab"][1]), float(colour["lab"][2])
    if isinstance(colour, str):
        rgb = [int(colour[i : i + 2], 16) for i in (1, 3, 5)]
    else:
        rgb = list(colour["rgb"])  # type: ignore[index]
    lab = rgb2lab(np.array(rgb, np.float64).reshape(1, 1, 3) / 255.0)[0, 0]
    return float(lab[1]), float(lab[2])


def default_radius(width: int, height: int) -> float:
    return max(2.0, round(DEFAULT_RADIUS_FRACTION * max(width, height), 1))


def max_radius(width: int, height: int) -> float:
    """The largest radius a hint may have on this image: its diagonal (a disc that large
    covers the image from any point in it), or the default radius on a tiny image."""
    return max(math.ceil(math.hypot(width, height)), default_radius(width, height))


def resolve(hint_file: HintFile, width: int, height: int, scan_sha256: str | None = None) -> list[Hint]:
    """The file's points on a scan of this (upright) size. Raises HintError for a wrong scan,
    a point outside the image, or a radius larger than the image (`max_radius`: what is
    rasterized and held per hint is then bounded by the image, whatever the file says)."""
    if scan_sha256 and hint_file.image_sha256 and hint_file.image_sha256 != scan_sha256.lower():
        raise HintError(
            hint_file.path, f"is for scan {hint_file.image_sha256[:12]}, not this scan ({scan_sha256[:12]})"
        )
    hints = []
    for index, point in enumerate(hint_file.points):
        x, y = float(point["x"]), float(point["y"])  # type: ignore[arg-type]
        if hint_file.space == "normalized":
            if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
                raise HintError(hint_file.path, f"({x}, {y}) is outside the image: normalized x and y must be in [0, 1]", index)
            x, y = x * (width - 1), y * (height - 1)
        elif not (0.0 <= x < width and 0.0 <= y < height):
            raise HintError(hint_file.path, f"({x}, {y}) is outside the image ({width}x{height} pixels)", index)
        radius = float(point.get("radius", default_radius(width, height)))  # type: ignore[arg-type]
        if radius > max_radius(width, height):
            limit = f"{width}x{height} pixels: at most {max_radius(width, height):g}"
            raise HintError(hint_file.path, f"radius {radius:g} is larger than the image ({limit})", index)
        hints.append(Hint(x, y, colour_to_ab(point["color"]), radius, str(point.get("note", ""))))
    return hints


def template(scan_sha256: str, width: int, height: int, path: str | None = None) -> dict[str, object]:
    """A starter hint file for a scan: its identity and size, and one example point at its centre."""
    return {
        "schema": SCHEMA_ID,
        "image": {"sha256": scan_sha256, **({"path": path} if path else {})},
        "space": "pixels",
        "points": [
            {"x": width // 2, "y": height // 2, "color": "#808080", "radius": default_radius(width, height),
             "note": f"example: replace with real hints (the scan is {width}x{height} pixels)"},
        ],
    }


def find_hint_file(folder: Path, stem: str, sha256: str) -> Path | None:
    """A scan's hint file in a hints folder: <scan stem>.json, else <sha256>.json.

    Whatever is at that name is the hint file (a FIFO, a folder, a broken link, one that
    cannot be read): loading it then fails the scan with the reason, rather than the scan
    being restored silently without its hints."""
    for name in (f"{stem}.json", f"{sha256}.json"):
        try:
            os.lstat(folder / name)
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as exc:
            if exc.errno == errno.ENAMETOOLONG:  # a long scan name plus ".json": no such file can exist
                continue
        return folder / name
    return None
