"""Hint files: each invalid file gives its own message naming the file, the point and the
reason; colours in every form; normalized and pixel coordinates agree."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from skimage.color import rgb2lab

from hints.schema import HintError, load_hint_file, resolve, template

SHA = "ab" * 32


def _write(tmp_path: Path, document: object, name: str = "scan.json") -> Path:
    path = tmp_path / name
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
