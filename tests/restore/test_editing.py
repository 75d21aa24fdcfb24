"""restore.editing.ScanRenderer, the hint editor's renderer: the scan's identity and lightness,
and colorizations that are the pipeline's own (up to JPEG rounding)."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest
from PIL import Image

from hints.editor.renderer import OVERVIEW_LONG_SIDE, PREVIEW_LONG_SIDE, Renderer
from hints.schema import Hint, colour_to_ab
from restore.colour import gray_to_lightness
from restore.editing import ScanRenderer
from restore.preview import colorize, colorize_preview

WIDTH, HEIGHT = 96, 64
RED = Hint(70, 30, colour_to_ab("#ff0000"), 4)


@pytest.fixture(scope="module")
def scan(tmp_path_factory):  # noqa: ANN001, ANN201
    x = np.linspace(40, 200, WIDTH)[None, :] + np.zeros((HEIGHT, 1))
    path = tmp_path_factory.mktemp("scan") / "street.png"
    Image.fromarray(x.astype(np.uint8), "L").save(path)
    return path


@pytest.fixture(scope="module")
def renderer(scan):  # noqa: ANN001, ANN201
    return ScanRenderer(scan, "ramp")


def _rgb(jpeg: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(jpeg))
    assert image.format == "JPEG"
    return np.asarray(image.convert("RGB")).astype(int)


def test_it_is_a_renderer_of_the_scan(renderer, scan) -> None:  # noqa: ANN001
    members = [m for m in dir(Renderer) if not m.startswith("_")] + list(Renderer.__annotations__)
    assert all(hasattr(renderer, m) for m in members)
    assert (renderer.name, renderer.width, renderer.height, renderer.model) == ("street.png", WIDTH, HEIGHT, "ramp")
    assert renderer.sha256 == hashlib.sha256(scan.read_bytes()).hexdigest()
    assert renderer.overview_size == (WIDTH, HEIGHT) and renderer.preview_size == (WIDTH, HEIGHT)  # small: never enlarged


def test_gray_images_and_lightness_are_the_scans(renderer, scan) -> None:  # noqa: ANN001
    gray = np.asarray(Image.open(scan)).astype(int)
    overview = _rgb(renderer.overview_jpeg())[..., 0]
    assert overview.shape == (HEIGHT, WIDTH) and np.abs(overview - gray).max() <= 3
    region = _rgb(renderer.region_jpeg(10, 5, 40, 20, 1600))[..., 0]
    assert region.shape == (20, 40) and np.abs(region - gray[5:25, 10:50]).max() <= 3
    assert _rgb(renderer.region_jpeg(0, 0, WIDTH, HEIGHT, 48)).shape[:2] == (32, 48)
    assert renderer.lightness(70, 30) == pytest.approx(float(gray_to_lightness(gray.astype(np.uint8))[30, 70]), abs=0.01)


def test_render_is_the_pipelines_colorize(renderer) -> None:  # noqa: ANN001
    rgb = _rgb(renderer.render_jpeg([RED]))
    expected = colorize(renderer.scan, renderer.colorizer, renderer.settings, hints=[RED])
    assert rgb.shape == expected.shape and np.abs(rgb - expected.astype(int)).mean() < 2
    r, g, b = rgb[30, 70]
    assert r > g + 40 and r > b + 40


def test_preview_is_the_global_pass_with_the_hints_on_its_grid(tmp_path) -> None:  # noqa: ANN001
    """A scan larger than the preview: hints given in scan pixels land at the same place on it."""
    width, height = 2 * PREVIEW_LONG_SIDE, PREVIEW_LONG_SIDE
    path = tmp_path / "wide.png"
    Image.fromarray(np.tile(np.linspace(40, 200, width, dtype=np.float32), (height, 1)).astype(np.uint8), "L").save(path)
    renderer = ScanRenderer(path, "ramp")
    assert renderer.preview_size == (PREVIEW_LONG_SIDE, PREVIEW_LONG_SIDE // 2)
    assert renderer.overview_size == (min(width, OVERVIEW_LONG_SIDE), min(height, OVERVIEW_LONG_SIDE // 2))
    hint = Hint(800, 300, colour_to_ab("#ff0000"), 8)
    (scaled,) = renderer.preview_hints([hint])
    assert (scaled.x_px, scaled.y_px, scaled.radius_px) == (399.75, 149.75, 4.0)  # pixel centres to pixel centres
    rgb = _rgb(renderer.preview_jpeg([hint]))
    expected = colorize_preview(renderer.preview_scan, renderer.colorizer, renderer.settings, [scaled])
    assert rgb.shape == expected.shape and np.abs(rgb - expected.astype(int)).mean() < 2
    r, g, b = rgb[150, 400]
    assert r > g and r > b
