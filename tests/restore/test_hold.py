"""Hints hold whatever the model: the hint's colour is at its point, blended smoothly and
edge-aware into its surroundings, and regions the hint does not reach are unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hints.schema import Hint, HintError, load_hint_file
from restore.colour import rgb_to_lab
from restore.models.base import ModelSpec
from restore.models.registry import create_model
from restore.pipeline import restore_file
from restore.preview import colorize
from restore.settings import RestoreSettings
from restore.scanio.read import read_scan

SETTINGS = RestoreSettings(model="ramp")


class FlatOrange:
    """A model that ignores hints and paints everything one colour."""

    spec = ModelSpec(name="flat", description="test", input_px=64, receptive_field_px=64, takes_hints=False, licence="test")

    def colorize(self, l_bhw: np.ndarray, hint_ab: np.ndarray, hint_mask: np.ndarray) -> np.ndarray:
        return np.broadcast_to(np.array([20.0, 35.0], np.float32), l_bhw.shape + (2,)).copy()


def _scan(tmp_path: Path) -> Path:
    """400 x 600: a dark left half (L* about 35) and a light right half (L* about 75)."""
    gray = np.where(np.arange(600)[None, :] < 300, 85, 190).astype(np.uint8).repeat(400, axis=0)
    gray = np.clip(gray + np.random.default_rng(0).integers(-3, 4, gray.shape), 0, 255).astype(np.uint8)
    path = tmp_path / "scan.png"
    Image.fromarray(gray).save(path)
    return path


# Blue, on the dark side, 15 px from the edge; in sRGB's gamut at that lightness (a hint's
# chroma is used at the scan's own L*, and beyond the gamut only the boundary is reachable).
HINT = Hint(x_px=285, y_px=200, ab=(-15.0, -12.0), radius_px=6.0)


@pytest.mark.parametrize("model", [create_model("ramp"), FlatOrange()], ids=["ramp", "ignores-hints"])
def test_hint_colour_is_where_it_was_given_and_nowhere_else(model, tmp_path: Path) -> None:  # noqa: ANN001
    scan = read_scan(_scan(tmp_path))
    settings = RestoreSettings(model="ramp", saturation=1.15)  # one gain for both (by default a hinted scan gets none)
    plain = rgb_to_lab(colorize(scan, model, settings))
    hinted = rgb_to_lab(colorize(scan, model, settings, hints=[HINT]))
    at_hint = hinted[200, 285, 1:]
    assert np.hypot(*(at_hint - HINT.ab)) <= 3.0  # CIE76 on a*, b*
    np.testing.assert_allclose(hinted[..., 0], plain[..., 0], atol=0.5)  # lightness untouched (8-bit rounding)
    change = np.hypot(*(hinted[..., 1:] - plain[..., 1:]).transpose(2, 0, 1))
    assert change[:, 450:].max() < 0.5 and change[:20].max() < 0.5  # far regions unchanged
    assert change[200, 285] > 10  # the hint did change its own spot...
    steps = np.hypot(*np.diff(hinted[150:250, 230:300, 1:], axis=1).transpose(2, 0, 1))
    assert steps.max() < 0.25 * change[200, 285]  # ...smoothly: no hard dot
    across_edge, same_side = change[190:210, 300:315].mean(), change[190:210, 255:270].mean()
    assert across_edge < 0.25 * same_side  # it stays on its side of the edge


def test_hints_from_a_file_through_restore_file(tmp_path: Path) -> None:
    src = _scan(tmp_path)
    hint_path = tmp_path / "scan.json"
    hint_path.write_text(json.dumps({"schema": "photochrom.hints/1", "space": "normalized",
                                     "points": [{"x": 0.75, "y": 0.5, "color": {"lab": [50, 25, 15]}, "note": "red door"}]}))
    hint_file = load_hint_file(hint_path)
    out = tmp_path / "out.png"
    restore_file(src, out, create_model("ramp"), SETTINGS, source_sha256="0" * 64, hint_file=hint_file)
    lab = rgb_to_lab(np.asarray(Image.open(out).convert("RGB")))
    target = np.array([25.0, 15.0])
    row, col = round(0.5 * 399), round(0.75 * 599)
    assert np.hypot(*(lab[row, col, 1:] - target)) <= 3.0
    assert hint_file.sha256.encode() in out.read_bytes()  # the provenance names the hint file


def test_hint_file_for_another_scan_is_refused(tmp_path: Path) -> None:
    src = _scan(tmp_path)
    hint_path = tmp_path / "scan.json"
    hint_path.write_text(json.dumps({"schema": "photochrom.hints/1", "image": {"sha256": "ab" * 32}, "points": []}))
    with pytest.raises(HintError, match="is for scan abababababab, not this scan"):
        restore_file(src, tmp_path / "o.png", create_model("ramp"), SETTINGS, source_sha256="cd" * 32, hint_file=load_hint_file(hint_path))
    assert not (tmp_path / "o.png").exists()


def test_hints_on_an_exif_rotated_scan_land_in_the_upright_picture(tmp_path: Path) -> None:
    # Stored 160 wide x 120 high with orientation 6: seen (and hinted) 120 wide x 160 high.
    stored = np.full((120, 160), 128, np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6
    src = tmp_path / "rotated.jpg"
    Image.fromarray(stored).save(src, quality=95, exif=exif)
    hint_path = tmp_path / "rotated.json"
    hint_path.write_text(json.dumps({"schema": "photochrom.hints/1", "points": [{"x": 20, "y": 130, "color": {"lab": [50, -20, 10]}, "radius": 4}]}))
    out = tmp_path / "out.jpg"
    restore_file(src, out, create_model("ramp"), SETTINGS, source_sha256="0" * 64, hint_file=load_hint_file(hint_path))
    lab = rgb_to_lab(np.asarray(Image.open(out).convert("RGB")))
    assert lab.shape[:2] == (160, 120)
    assert np.hypot(lab[130, 20, 1] + 20, lab[130, 20, 2] - 10) <= 3.0  # where the curator put it
    assert np.hypot(lab[20, 130 - 20, 1] + 20, lab[20, 130 - 20, 2] - 10) > 10  # not where stored pixels were


def test_propagate_spreads_a_hint_through_its_region_and_not_across_edges() -> None:
    from restore.models.propagate import propagate

    l_hw = np.where(np.arange(120)[None, :] < 60, 30.0, 80.0).astype(np.float32).repeat(80, axis=0)
    hint_ab = np.zeros((80, 120, 2), np.float32)
    mask = np.zeros((80, 120), np.float32)
    hint_ab[40, 10], mask[40, 10] = (25.0, 15.0), 1.0  # one hint, in the dark region
    hint_ab[40, 110], mask[40, 110] = (-15.0, -20.0), 1.0  # one, in the light region
    ab = propagate(l_hw, hint_ab, mask)
    np.testing.assert_allclose(ab[:, :55].reshape(-1, 2).mean(axis=0), (25.0, 15.0), atol=1.0)
    np.testing.assert_allclose(ab[:, 65:].reshape(-1, 2).mean(axis=0), (-15.0, -20.0), atol=1.0)
    assert not propagate(l_hw, hint_ab, np.zeros_like(mask)).any()  # no hints: no colour


def test_propagate_solves_small_systems_directly_to_the_multigrid_solution(monkeypatch: pytest.MonkeyPatch) -> None:
    from restore.models import propagate as module

    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:96, 0:112]
    l_hw = (50 + 30 * np.sin(x / 9.0) * np.cos(y / 13.0) + 15 * (x > 60)).astype(np.float32)
    hint_ab = np.zeros((96, 112, 2), np.float32)
    mask = np.zeros((96, 112), np.float32)
    for row, col in rng.integers(0, 94, (6, 2)):
        hint_ab[row : row + 2, col : col + 2], mask[row : row + 2, col : col + 2] = rng.uniform(-40, 40, 2), 1.0
    assert 96 * 112 <= module.DIRECT_MAX_UNKNOWNS
    direct = module.propagate(l_hw, hint_ab, mask, pull=1e-5)
    monkeypatch.setattr(module, "DIRECT_MAX_UNKNOWNS", 0)
    multigrid = module.propagate(l_hw, hint_ab, mask, pull=1e-5, tol=1e-10)
    assert np.abs(direct).max() > 10
    np.testing.assert_allclose(direct, multigrid, atol=1e-3)


def test_a_hint_on_a_sharp_edge_still_holds() -> None:
    # Large enough that the correction's grid is coarser than the scan, so the hint falls
    # between grid nodes whose lightness differs from its own pixel's: the weights must be
    # solved against that reading, not the kernel's value at the hint itself.
    gray = np.where(np.arange(1500)[None, :] < 751, 30, 235).astype(np.uint8).repeat(1000, axis=0)
    scan = read_scan_from_array(gray)
    hints = [Hint(x_px=751, y_px=500, ab=(-12.0, 10.0), radius_px=3.0), Hint(x_px=750, y_px=300, ab=(8.0, -10.0), radius_px=3.0)]
    lab = rgb_to_lab(colorize(scan, FlatOrange(), SETTINGS, hints=hints))
    for hint in hints:
        assert np.hypot(*(lab[int(hint.y_px), int(hint.x_px), 1:] - hint.ab)) <= 3.0


def read_scan_from_array(gray: np.ndarray):  # noqa: ANN201
    from restore.colour import gray_to_lightness
    from restore.scanio.read import Metadata, ScanPixels

    return ScanPixels("PNG", gray_to_lightness(gray), 8, None, "monochrome", Metadata())


def test_hinted_colours_are_not_boosted_unless_asked(tmp_path: Path) -> None:
    # By default the model's own colours get the midtone boost and hinted results do not
    # (boosting colours the hints gave moves them off the truth); an explicit --saturation
    # applies to both, and the XMP records the gain applied.
    src = _scan(tmp_path)
    hint_path = tmp_path / "scan.json"
    hint_path.write_text(json.dumps({"schema": "photochrom.hints/1", "points": [{"x": 450, "y": 200, "color": {"lab": [75, 20, 30]}}]}))
    hint_file = load_hint_file(hint_path)
    model = FlatOrange()

    def restored(name: str, hints: bool, **settings: object) -> np.ndarray:
        out = tmp_path / f"{name}.png"
        restore_file(src, out, model, RestoreSettings(model="ramp", **settings), source_sha256="0" * 64, hint_file=hint_file if hints else None)
        return np.asarray(Image.open(out).convert("RGB"))

    assert np.array_equal(restored("auto-free", False), restored("boost", False, saturation=1.15))
    auto_hinted = restored("auto-hinted", True)
    assert np.array_equal(auto_hinted, restored("flat-hinted", True, saturation=1.0))
    assert not np.array_equal(auto_hinted, restored("boost-hinted", True, saturation=1.15))
    assert b'"saturation": 1.0' in (tmp_path / "auto-hinted.png").read_bytes()
    assert b'"saturation": 1.15' in (tmp_path / "auto-free.png").read_bytes()
