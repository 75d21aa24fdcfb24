"""Hint files: each invalid file gives its own message naming the file, the point and the
reason; colours in every form; normalized and pixel coordinates agree. Hostile files (NaN,
huge numbers, deep nesting, too many points, oversize, FIFOs and devices) are refused in one
line, and any document whatever parses to finite, in-range hints or is a HintError."""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage.color import rgb2lab

from hints.schema import HintError, HintFile, find_hint_file, load_hint_file, parse_hint_document, resolve, template
from tests.hints.hostile import in_thread
from tests.hints.strategies import BIG_INT, documents, encode, json_values

SHA = "ab" * 32


def _write(tmp_path: Path, document: object, name: str = "scan.json") -> Path:
    path = tmp_path / name
    if isinstance(document, bytes):
        path.write_bytes(document)
    else:
        path.write_text(document if isinstance(document, str) else json.dumps(document))
    return path


def _doc(*points: dict, **extra: object) -> dict:
    return {"schema": "photochrom.hints/1", "points": list(points), **extra}


GOOD = {"x": 10, "y": 20, "color": "#7a9cc6"}

INVALID = [
    ("not json", "{points: oops", "not valid JSON"),
    ("wrong schema", {"schema": "photochrom.hints/2", "points": []}, "schema must be 'photochrom.hints/1'"),
    ("unknown top key", _doc(GOOD, colour_space="srgb"), "scan.json: unknown key 'colour_space'"),
    ("unknown point key", _doc(GOOD, {**GOOD, "size": 3}), "scan.json: point 1: unknown key 'size'"),
    ("bad hex", _doc(GOOD, GOOD, {**GOOD, "color": "#12345g"}), "scan.json: point 2: bad colour \"#12345g\""),
    ("rgb out of range", _doc({**GOOD, "color": {"rgb": [0, 300, 0]}}), "point 0: bad colour {\"rgb\": [0, 300, 0]}"),
    ("lab out of range", _doc({**GOOD, "color": {"lab": [120, 0, 0]}}), "point 0: bad colour"),
    ("missing x", _doc({"y": 3, "color": "#ffffff"}), "point 0: 'x' is missing"),
    ("negative radius", _doc({**GOOD, "radius": -2}), "point 0: radius: -2 is less than or equal to the minimum of 0"),
    ("space", _doc(GOOD, space="inches"), "space: 'inches' is not one of ['pixels', 'normalized']"),
]


@pytest.mark.parametrize(("case", "document", "message"), INVALID, ids=[c[0] for c in INVALID])
def test_each_invalid_file_gives_its_message(case: str, document: object, message: str, tmp_path: Path) -> None:
    path = _write(tmp_path, document)
    with pytest.raises(HintError) as caught:
        load_hint_file(path)
    assert message in str(caught.value)
    assert str(caught.value).startswith(str(path))
    assert "\n" not in str(caught.value)


def test_point_outside_the_image(tmp_path: Path) -> None:
    hint_file = load_hint_file(_write(tmp_path, _doc(GOOD, {"x": 640, "y": 5, "color": "#ffffff"})))
    with pytest.raises(HintError, match=r"scan.json: point 1: \(640.0, 5.0\) is outside the image \(640x480 pixels\)"):
        resolve(hint_file, 640, 480)
    normalized = load_hint_file(_write(tmp_path, _doc({"x": 1.2, "y": 0.5, "color": "#fff000"}, space="normalized"), "n.json"))
    with pytest.raises(HintError, match="point 0: .* normalized x and y must be in"):
        resolve(normalized, 640, 480)


def test_wrong_scan(tmp_path: Path) -> None:
    hint_file = load_hint_file(_write(tmp_path, _doc(GOOD, image={"sha256": SHA})))
    with pytest.raises(HintError, match=f"is for scan {SHA[:12]}, not this scan"):
        resolve(hint_file, 640, 480, scan_sha256="cd" * 32)
    assert len(resolve(hint_file, 640, 480, scan_sha256=SHA)) == 1


def test_colour_forms_agree(tmp_path: Path) -> None:
    lab = rgb2lab([[[122 / 255, 156 / 255, 198 / 255]]])[0, 0]
    document = _doc(
        {"x": 1, "y": 1, "color": "#7a9cc6"},
        {"x": 1, "y": 1, "color": {"rgb": [122, 156, 198]}},
        {"x": 1, "y": 1, "color": {"lab": [float(lab[0]), float(lab[1]), float(lab[2])]}},
    )
    hints = resolve(load_hint_file(_write(tmp_path, document)), 10, 10)
    for hint in hints:
        assert hint.ab == pytest.approx((lab[1], lab[2]), abs=1e-6)


def test_normalized_and_pixel_coordinates_agree(tmp_path: Path) -> None:
    pixels = _doc({"x": 0, "y": 0, "color": "#ff0000"}, {"x": 639, "y": 479, "color": "#ff0000"}, {"x": 319.5, "y": 239.5, "color": "#ff0000"})
    normalized = _doc(*({**p, "x": p["x"] / 639, "y": p["y"] / 479} for p in pixels["points"]), space="normalized")
    a = resolve(load_hint_file(_write(tmp_path, pixels, "p.json")), 640, 480)
    b = resolve(load_hint_file(_write(tmp_path, normalized, "n.json")), 640, 480)
    for pa, pb in zip(a, b):
        assert (pa.x_px, pa.y_px) == pytest.approx((pb.x_px, pb.y_px))


def test_default_radius_scales_with_the_image(tmp_path: Path) -> None:
    path = _write(tmp_path, _doc(GOOD))
    assert resolve(load_hint_file(path), 640, 480)[0].radius_px == 2.6
    assert resolve(load_hint_file(path), 6000, 4000)[0].radius_px == 24.0


def test_template_is_a_valid_file(tmp_path: Path) -> None:
    path = _write(tmp_path, template(SHA, 640, 480, "box1/scan.tif"))
    hints = resolve(load_hint_file(path), 640, 480, scan_sha256=SHA)
    assert (hints[0].x_px, hints[0].y_px) == (320, 240)


# -- hostile documents (issue 16): every refusal is a one-line HintError, never a hang ------

HUGE_INT = "1" + "0" * 4999
POINT = '{"x": 1, "y": 2, "color": "#ffffff"}'


def _raw(points: str, **extra: str) -> str:
    keys = "".join(f', "{k}": {v}' for k, v in extra.items())
    return '{"schema": "photochrom.hints/1", "points": [' + points + "]" + keys + "}"


HOSTILE = [
    ("NaN colour", _raw(POINT + ', {"x": 1, "y": 2, "color": {"lab": [NaN, NaN, NaN]}}'), "point 1: color.lab[0]: NaN is not allowed"),
    ("NaN x", _raw('{"x": NaN, "y": 2, "color": "#ffffff"}'), "point 0: x: NaN is not allowed"),
    ("Infinity radius", _raw('{"x": 1, "y": 2, "color": "#ffffff", "radius": Infinity}'), "point 0: radius: Infinity is not allowed"),
    ("NaN radius", _raw('{"x": 1, "y": 2, "color": "#ffffff", "radius": NaN}'), "point 0: radius: NaN is not allowed"),
    ("-Infinity rgb", _raw('{"x": 1, "y": 2, "color": {"rgb": [0, -Infinity, 0]}}'), "point 0: color.rgb[1]: -Infinity is not allowed"),
    ("1e400", _raw('{"x": 1e400, "y": 2, "color": "#ffffff"}'), "point 0: x: 1e400 is not allowed: numbers must be finite"),
    ("400-digit integer", _raw('{"x": ' + BIG_INT + ', "y": 2, "color": "#ffffff"}'), "point 0: x: an integer of 400 digits"),
    ("5000-digit integer", _raw('{"x": 1, "y": ' + HUGE_INT + ', "color": "#ffffff"}'), "point 0: y: an integer of 5000 digits"),
    ("huge coordinate", _raw('{"x": 1e300, "y": 2, "color": "#ffffff"}'), "point 0: x: 1e+300 is greater than the maximum"),
    ("negative coordinate", _raw('{"x": -1, "y": 2, "color": "#ffffff"}'), "point 0: x: -1 is less than the minimum of 0"),
    ("huge radius", _raw('{"x": 1, "y": 2, "color": "#ffffff", "radius": 1e300}'), "point 0: radius: 1e+300 is greater than the maximum"),
    ("NaN outside the points", _raw(POINT, space="NaN"), "space: NaN is not allowed"),
    ("only NaN", "NaN", "NaN is not allowed"),
    ("100,000 [", "[" * 100_000, "nested deeper than 32 levels"),
    ("100,000 [ closed", "[" * 100_000 + "]" * 100_000, "nested deeper than 32 levels"),
    ("100,000 {", '{"a":' * 100_000, "nested deeper than 32 levels"),
    ("deep inside a point", _raw('{"x": 1, "y": 2, "color": ' + "[" * 40 + "]" * 40 + "}"), "nested deeper than 32 levels"),
    ("too many points", _raw(", ".join([POINT] * 1001)), "1001 points: a hint file holds at most 1000"),
    ("too many values", "[" + "1, " * 20_000 + "1]", "holds more than 20000 values"),
    ("not UTF-8", b'{"schema": "photochrom.hints/1", "points": [], "\xff": 1}', "not valid JSON: 'utf-8' codec can't decode"),
    ("lone surrogate", _raw('{"x": 1, "y": 2, "color": "#ffffff", "note": "\\ud800"}'),
     "point 0: note: a string holds an unpaired surrogate \\ud800"),
    ("a huge unknown key", _raw(POINT, **{"k" * 100_000: "1"}), "unknown key 'kkkkkkkkkk"),
]


@pytest.mark.parametrize(("case", "text", "message"), HOSTILE, ids=[c[0] for c in HOSTILE])
def test_hostile_documents_are_refused_in_one_line(case: str, text: str, message: str, tmp_path: Path) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(HintError) as caught:
        load_hint_file(path)
    error = str(caught.value)
    assert error.startswith(f"{path}: ") and message in error and "\n" not in error
    assert len(error) < 400  # a bad value is quoted, not copied whole


def test_brackets_inside_strings_are_not_nesting(tmp_path: Path) -> None:
    note = "[{" * 5000 + '\\"[' * 100
    hint_file = load_hint_file(_write(tmp_path, _raw('{"x": 1, "y": 2, "color": "#ffffff", "note": "' + note + '"}')))
    assert resolve(hint_file, 10, 10)[0].note == note.replace('\\"', '"')


def test_an_oversize_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    from hints.untrusted import MAX_FILE_BYTES

    path = _write(tmp_path, _raw(POINT))
    with path.open("ab") as f:
        f.truncate(MAX_FILE_BYTES + 1)  # sparse: padded with NUL bytes that are never read
    with pytest.raises(HintError, match=rf"scan.json: {MAX_FILE_BYTES + 1} bytes: a hint file is at most {MAX_FILE_BYTES} bytes"):
        load_hint_file(path)
    with pytest.raises(HintError, match="bytes: a hint file is at most"):
        parse_hint_document(b" " * (MAX_FILE_BYTES + 1), "body")


def test_a_radius_larger_than_the_image_is_refused(tmp_path: Path) -> None:
    hint_file = load_hint_file(_write(tmp_path, _doc({**GOOD, "radius": 900})))
    assert resolve(hint_file, 6000, 4000)[0].radius_px == 900
    with pytest.raises(HintError, match=r"point 0: radius 900 is larger than the image \(640x480 pixels: at most 800\)"):
        resolve(hint_file, 640, 480)
    tiny = load_hint_file(_write(tmp_path, template(SHA, 1, 1), "tiny.json"))  # the default radius is 2 px
    assert resolve(tiny, 1, 1)[0].radius_px == 2.0


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_is_refused_not_opened(tmp_path: Path) -> None:
    fifo = tmp_path / "scan.json"
    os.mkfifo(fifo)
    with pytest.raises(HintError) as caught:
        in_thread(lambda: load_hint_file(fifo), fifo, timeout=20)
    assert str(caught.value) == f"{fifo}: is a FIFO, not a regular file; only regular files are read"
    # a hints folder whose <stem>.json is a FIFO: that is the scan's hint file, which then fails
    assert find_hint_file(tmp_path, "scan", SHA) == fifo


def _refusal(path: Path) -> str:
    with pytest.raises(HintError) as caught:
        in_thread(lambda: load_hint_file(path), timeout=20)
    return str(caught.value)


def test_other_special_files_are_refused(tmp_path: Path) -> None:
    device = tmp_path / "device.json"
    device.symlink_to("/dev/null")  # a link to a device: the device is what is refused
    assert "device.json: is a character device, not a regular file" in _refusal(device)
    listening, short = socket.socket(socket.AF_UNIX), Path(tempfile.mkdtemp(prefix="h"))  # AF_UNIX paths are short
    try:
        listening.bind(str(short / "s.json"))
        assert "s.json: is a socket, not a regular file" in _refusal(short / "s.json")
    finally:
        listening.close()
        shutil.rmtree(short)
    folder = tmp_path / "folder.json"
    folder.mkdir()
    assert "folder.json: is a folder, not a regular file" in _refusal(folder)
    assert "missing.json: unreadable: No such file or directory" in _refusal(tmp_path / "missing.json")


def test_a_file_name_with_control_characters_stays_on_one_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "{", "two\nlines.json")
    with pytest.raises(HintError) as caught:
        load_hint_file(path)
    assert "\n" not in str(caught.value) and "two\\nlines.json" in str(caught.value)


# -- the property: any document parses to finite, in-range hints, or is a HintError --------

_LIMITS = {"x": (0, 2**32), "y": (0, 2**32), "radius": (0, 2**32)}


def _finite_and_in_range(hint_file: HintFile, width: int, height: int) -> None:
    json.dumps(hint_file.points, allow_nan=False)  # raises ValueError for any NaN or infinity, colours included
    for point in hint_file.points:
        for key, (low, high) in _LIMITS.items():
            if key in point:
                value = point[key]
                assert isinstance(value, (int, float)) and math.isfinite(value) and low <= value <= high
    for hint in resolve(hint_file, width, height):
        values = (hint.x_px, hint.y_px, *hint.ab, hint.radius_px)
        assert all(math.isfinite(v) for v in values)
        assert 0 <= hint.x_px < width and 0 <= hint.y_px < height and 0 < hint.radius_px <= math.hypot(width, height) + 2


def _parse_or_refuse(data: bytes, width: int = 100, height: int = 80) -> None:
    try:
        hint_file = parse_hint_document(data, "fuzz.json")
        _finite_and_in_range(hint_file, width, height)
    except HintError as exc:
        assert str(exc).startswith("fuzz.json") and "\n" not in str(exc)


@settings(max_examples=300, deadline=None)
@given(documents | json_values)
def test_any_document_is_finite_and_in_range_or_a_hint_error(document: object) -> None:
    _parse_or_refuse(encode(document).encode())


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200) | st.text(alphabet='[]{}":,0123456789.eE+-\\ NaInfity', max_size=300).map(str.encode))
def test_any_bytes_are_a_hint_file_or_a_hint_error(data: bytes) -> None:
    _parse_or_refuse(data)
