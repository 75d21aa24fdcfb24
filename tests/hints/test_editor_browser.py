"""The hint editor's page in a real browser (headless Chromium through Playwright), against the
real server (hints/editor/server.py, with restore/editing.py's renderer and model `ramp`):
clicks add hints at the scan pixels under the mouse, the hex field, the palette and the a*b*
gamut set their colours, the preview changes where they are, Save writes a valid
`photochrom.hints/1` file with exactly those points; dragging moves a hint, undo and redo
(buttons and keys) walk the history, right-click and Delete remove; zooming keeps markers on
their pixels and loads the visible region at screen resolution; an existing normalized file
is shown at its pixels and saved unchanged; the full-resolution render opens in a new tab.
Nothing is logged to the console as an error, and no request fails.

Needs Debian's `chromium` and the `playwright` package (the `chromium` fixture in
tests/conftest.py skips, saying which is missing, without them)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from math import floor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage.color import rgb2lab

from hints.editor import default_hints_path, make_server
from hints.schema import SCHEMA_ID, colour_to_ab, load_hint_file, resolve
from restore.colour import gray_to_lightness
from restore.editing import ScanRenderer

WIDTH, HEIGHT = 640, 480
VIEWPORT = {"width": 1400, "height": 900}  # the scan view is larger than 640 x 480: shown 1:1
READY = "() => window.editor && editor.ready && editor.previewShown()"
PREVIEW_SHOWN = "() => editor.previewShown()"
# The preview image's pixels, as a PNG data URL (drawn on a canvas: the page's own blob).
PREVIEW_PIXELS = """() => { const img = document.getElementById("preview"), c = document.createElement("canvas");
  c.width = img.naturalWidth; c.height = img.naturalHeight; c.getContext("2d").drawImage(img, 0, 0);
  return c.toDataURL("image/png"); }"""


def structured_gray(height: int, width: int) -> np.ndarray:
    """A gray scan with structure: a horizontal gradient, a step halfway down, and a checker of 80-pixel squares."""
    y, x = np.mgrid[0:height, 0:width]
    return np.clip(60 + 120 * x / (width - 1) + 30 * (y > height // 2) + 25 * ((x // 80 + y // 80) % 2), 0, 255).astype(np.uint8)


@pytest.fixture
def scan(tmp_path: Path) -> Path:
    path = tmp_path / "harbour.png"
    Image.fromarray(structured_gray(HEIGHT, WIDTH)).save(path)
    return path


@contextmanager
def editor(chromium, scan: Path, hints: Path | None = None) -> Iterator[tuple[object, object, object, list[str]]]:  # noqa: ANN001
    """(page, browser context, server, errors) with the page loaded and its first preview shown."""
    sync_api, executable = chromium
    server = make_server(ScanRenderer(scan, "ramp"), hints or default_hints_path(scan))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    errors: list[str] = []
    try:
        with sync_api.sync_playwright() as p:
            # --no-sandbox: CI runs as root in a container, where Chromium's sandbox cannot start.
            browser = p.chromium.launch(executable_path=executable, headless=True, args=["--no-sandbox"])
            try:
                context = browser.new_context(viewport=VIEWPORT)
                page = context.new_page()
                page.set_default_timeout(20_000)
                page.on("console", lambda m: errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
                page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
                page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url} ({r.failure})"))
                page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
                page.goto(server.url)
                page.wait_for_function(READY)
                yield page, context, server, errors
            finally:
                browser.close()
    finally:
        server.shutdown()
        server.server_close()


def view_of(page) -> tuple[dict[str, float], dict[str, float]]:  # noqa: ANN001
    """The scan view's box on the page and its transform (scan pixel x -> ox + x * scale)."""
    box = page.locator("#view").bounding_box()
    assert box
    return box, page.evaluate("() => ({...editor.view})")


def pixel_at(page, client_x: float, client_y: float) -> tuple[int, int]:  # noqa: ANN001
    """The scan pixel the page should put a hint on for a click here: the view's transform inverted."""
    box, view = view_of(page)
    return floor((client_x - box["x"] - view["ox"]) / view["scale"]), floor((client_y - box["y"] - view["oy"]) / view["scale"])


def screen_at(page, x: float, y: float) -> tuple[float, float]:  # noqa: ANN001
    """The centre of scan pixel (x, y) on the page."""
    box, view = view_of(page)
    return box["x"] + view["ox"] + (x + 0.5) * view["scale"], box["y"] + view["oy"] + (y + 0.5) * view["scale"]


def click_scan(page, client_x: float, client_y: float) -> tuple[int, int]:  # noqa: ANN001
    expected = pixel_at(page, client_x, client_y)
    count = len(page.evaluate("() => editor.points()"))
    page.mouse.click(client_x, client_y)
    page.wait_for_function(f"() => editor.points().length === {count + 1}")
    page.wait_for_function(PREVIEW_SHOWN)
    return expected


def preview_lab(page) -> np.ndarray:  # noqa: ANN001
    data = page.evaluate(PREVIEW_PIXELS)
    rgb = np.asarray(Image.open(io.BytesIO(base64.b64decode(data.split(",", 1)[1]))).convert("RGB"))
    return rgb2lab(rgb)


def around(lab: np.ndarray, x: int, y: int, info: dict[str, object]) -> np.ndarray:
    """Mean a*b* of the 3 x 3 preview pixels around scan pixel (x, y)."""
    sx, sy = info["preview"]["width"] / info["width"], info["preview"]["height"] / info["height"]  # type: ignore[index]
    col, row = round((x + 0.5) * sx - 0.5), round((y + 0.5) * sy - 0.5)
    return lab[row - 1 : row + 2, col - 1 : col + 2, 1:].reshape(-1, 2).mean(axis=0)


def points_in(path: Path, scan: Path) -> list[tuple[float, float]]:
    hint_file = load_hint_file(path)
    return [(h.x_px, h.y_px) for h in resolve(hint_file, WIDTH, HEIGHT, hashlib.sha256(scan.read_bytes()).hexdigest())]


def test_two_hints_coloured_previewed_and_saved(chromium, scan: Path) -> None:  # noqa: ANN001
    with editor(chromium, scan) as (page, context, server, errors):
        info = page.evaluate("() => editor.info()")
        box, view = view_of(page)
        assert view["scale"] == 1 and view["ox"] == int(view["ox"]) and view["oy"] == int(view["oy"])  # 1:1 on whole pixels
        before = preview_lab(page)

        # First hint: a click, then a colour typed in the hex field.
        first = click_scan(page, box["x"] + view["ox"] + 130.3, box["y"] + view["oy"] + 90.7)
        assert first == (130, 90)
        page.locator("#hex").fill("#C03020")
        page.locator("#hex").press("Enter")
        page.wait_for_function("() => editor.points()[0].color === '#c03020'")
        page.wait_for_function(PREVIEW_SHOWN)

        # Second hint: it starts with the last colour; a palette swatch, then the a*b* gamut set it.
        second = click_scan(page, box["x"] + view["ox"] + 470.9, box["y"] + view["oy"] + 350.2)
        assert second == (470, 350)
        assert page.evaluate("() => editor.points()[1].color") == "#c03020"
        assert page.evaluate("() => editor.palette()") == ["#c03020", "#7a9cc6"]
        page.locator("#palette .swatch").nth(1).click()
        page.wait_for_function("() => editor.points()[1].color === '#7a9cc6'")
        l_second = float(gray_to_lightness(np.asarray(Image.open(scan)))[350, 470])
        page.wait_for_function(f"() => document.getElementById('hint-info').textContent.endsWith('L* {l_second:.1f}')")
        gamut = page.locator("#gamut").bounding_box()
        assert gamut
        a_pick, b_pick = -15, -25  # a sky blue that exists at this L*: the picker takes it as it is
        page.mouse.click(gamut["x"] + 110 + a_pick + 0.5, gamut["y"] + 110 - b_pick + 0.5)
        page.wait_for_function("() => editor.points()[1].color.lab !== undefined")
        page.wait_for_function(PREVIEW_SHOWN)
        assert page.evaluate("() => editor.points()[1].color") == {"lab": [round(l_second, 1), a_pick, b_pick]}

        # The preview changed at each hint towards its colour, and not far from both.
        after = preview_lab(page)
        red_ab, blue_ab = np.array(colour_to_ab("#c03020")), np.array([a_pick, b_pick])
        for (x, y), target in ((first, red_ab), (second, blue_ab)):
            was, now = around(before, x, y, info), around(after, x, y, info)
            assert np.linalg.norm(now - was) > 20, (x, y, was, now)
            assert np.linalg.norm(now - target) < np.linalg.norm(was - target) - 20, (x, y, was, now, target)
        far = around(after, 600, 40, info) - around(before, 600, 40, info)
        assert np.linalg.norm(far) < 3
        assert 0 < page.evaluate("() => editor.lastPreviewMs") < 5000

        page.locator("#save").click()
        page.wait_for_function("() => editor.saved !== null")
        target = scan.parent / "hints" / "harbour.json"
        assert page.locator("#status").inner_text() == f"saved 2 hints to {target}"

        # The full-resolution render opens in a new tab and writes nothing.
        files_before = sorted(scan.parent.rglob("*"))
        with context.expect_page() as opened:
            page.locator("#render").click()
        tab = opened.value
        tab.wait_for_url("blob:**")
        tab.wait_for_function("() => document.images.length === 1 && document.images[0].complete")
        assert tab.evaluate("() => [document.images[0].naturalWidth, document.images[0].naturalHeight]") == [WIDTH, HEIGHT]
        assert sorted(scan.parent.rglob("*")) == files_before
        assert errors == []

    document = json.loads(target.read_text())
    assert document["schema"] == SCHEMA_ID and document["space"] == "pixels"
    assert document["image"]["sha256"] == hashlib.sha256(scan.read_bytes()).hexdigest()
    assert points_in(target, scan) == [first, second]
    assert [p["color"] for p in document["points"]] == ["#c03020", {"lab": [round(l_second, 1), a_pick, b_pick]}]


def test_drag_undo_redo_delete_and_pan(chromium, scan: Path) -> None:  # noqa: ANN001
    with editor(chromium, scan) as (page, _, server, errors):
        points = lambda: [(p["x"], p["y"]) for p in page.evaluate("() => editor.points()")]  # noqa: E731
        a = click_scan(page, *screen_at(page, 100, 100))
        assert points() == [a] == [(100, 100)]

        # Drag the marker to (300, 200): the hint follows; one undo step brings it back.
        page.mouse.move(*screen_at(page, 100, 100))
        page.mouse.down()
        page.mouse.move(*screen_at(page, 200, 150), steps=4)
        page.mouse.move(*screen_at(page, 300, 200), steps=4)
        page.mouse.up()
        page.wait_for_function(PREVIEW_SHOWN)
        assert points() == [(300, 200)]
        marker = page.locator(".mark").bounding_box()
        assert marker
        centre = (marker["x"] + marker["width"] / 2, marker["y"] + marker["height"] / 2)
        assert np.allclose(centre, screen_at(page, 300, 200), atol=1)
        page.keyboard.press("Control+z")
        assert points() == [(100, 100)]
        page.keyboard.press("Control+Shift+z")
        assert points() == [(300, 200)]
        page.keyboard.press("Control+z")
        page.keyboard.press("Control+y")
        assert points() == [(300, 200)]

        c = click_scan(page, *screen_at(page, 500, 60))
        assert points() == [(300, 200), c]
        # Right-click deletes the hint under the mouse; the Undo button brings it back.
        page.mouse.click(*screen_at(page, 300, 200), button="right")
        assert points() == [c]
        page.locator("#undo").click()
        assert points() == [(300, 200), c]
        # Select a hint by clicking its marker (no hint is added), then the Delete key.
        page.mouse.click(*screen_at(page, 500, 60))
        assert page.evaluate("() => editor.selected()") == 1 and len(points()) == 2
        page.keyboard.press("Delete")
        assert points() == [(300, 200)]
        assert page.locator("#redo").is_disabled()  # a new edit ends the redo history
        page.keyboard.press("Control+z")
        assert points() == [(300, 200), c]
        page.locator("#redo").click()
        assert points() == [(300, 200)]

        # Dragging on the scan away from markers pans the view and adds nothing.
        _, view = view_of(page)
        start = screen_at(page, 400, 400)
        page.mouse.move(*start)
        page.mouse.down()
        page.mouse.move(start[0] + 60, start[1] + 30, steps=5)
        page.mouse.up()
        _, panned = view_of(page)
        assert (panned["ox"] - view["ox"], panned["oy"] - view["oy"]) == (60, 30)
        assert points() == [(300, 200)]
        marker = page.locator(".mark").bounding_box()
        assert marker and np.allclose((marker["x"] + marker["width"] / 2, marker["y"] + marker["height"] / 2), screen_at(page, 300, 200), atol=1)

        page.keyboard.press("Control+s")
        page.wait_for_function("() => editor.saved !== null")
        page.wait_for_function(PREVIEW_SHOWN)
        assert errors == []
    assert points_in(scan.parent / "hints" / "harbour.json", scan) == [(300, 200)]


def test_zoom_loads_the_region_and_keeps_markers_on_their_pixels(chromium, tmp_path: Path) -> None:  # noqa: ANN001
    large = tmp_path / "plate.png"
    Image.fromarray(structured_gray(1800, 2400)).save(large)  # over the 1600-pixel overview
    with editor(chromium, large) as (page, _, server, errors):
        info = page.evaluate("() => editor.info()")
        assert info["overview"] == {"width": 1600, "height": 1200}
        box, view = view_of(page)
        assert view["scale"] < 1
        regions: list[str] = []
        page.on("response", lambda r: regions.append(r.url) if "/api/image?x=" in r.url and r.status == 200 else None)

        # The wheel zooms about the mouse: the pixel under it stays under it.
        at = (box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.6)
        under = pixel_at(page, *at)
        page.mouse.move(*at)
        for _ in range(6):
            page.mouse.wheel(0, -200)
        page.wait_for_function(f"() => editor.view.scale > {view['scale'] * 2}")
        zoomed = pixel_at(page, *at)
        assert abs(zoomed[0] - under[0]) <= 2 and abs(zoomed[1] - under[1]) <= 2
        assert page.evaluate("() => editor.view.scale") > 1600 / 2400  # past the overview's resolution
        page.wait_for_function("() => getComputedStyle(document.getElementById('detail')).visibility === 'visible'")
        assert regions, "no region of the scan was fetched"
        detail = page.evaluate("() => { const d = document.getElementById('detail'); return [d.naturalWidth, parseFloat(d.style.width)]; }")
        assert detail[0] > detail[1] * 1600 / 2400  # sharper than the overview would be

        # A click while zoomed lands on the pixel under the mouse, and its marker stays on it.
        box, view = view_of(page)
        spot = (box["x"] + box["width"] * 0.55, box["y"] + box["height"] * 0.45)
        hint = click_scan(page, *spot)
        for button in ("#zoom-out", "#zoom-fit", "#zoom-in", "#zoom-one"):
            page.locator(button).click()
            marker = page.locator(".mark").bounding_box()
            assert marker
            assert np.allclose((marker["x"] + marker["width"] / 2, marker["y"] + marker["height"] / 2), screen_at(page, *hint), atol=1), button
        assert page.evaluate("() => editor.view.scale") == 1
        page.wait_for_function(PREVIEW_SHOWN)
        assert errors == []
        assert [(p["x"], p["y"]) for p in page.evaluate("() => editor.points()")] == [hint]


def test_an_existing_normalized_file_is_shown_at_its_pixels_and_kept(chromium, scan: Path, tmp_path: Path) -> None:  # noqa: ANN001
    existing = tmp_path / "curated.json"
    document = {"schema": SCHEMA_ID, "image": {"sha256": hashlib.sha256(scan.read_bytes()).hexdigest(), "path": "harbour.png"},
                "space": "normalized", "points": [{"x": 0.25, "y": 0.5, "color": "#00aa00", "note": "field"},
                                                  {"x": 0.8, "y": 0.1, "color": {"rgb": [0, 0, 200]}, "radius": 6}]}
    existing.write_text(json.dumps(document))
    with editor(chromium, scan, existing) as (page, _, server, errors):
        expected = [(0.25 * (WIDTH - 1), 0.5 * (HEIGHT - 1)), (0.8 * (WIDTH - 1), 0.1 * (HEIGHT - 1))]
        assert np.allclose([(p["x"], p["y"]) for p in page.evaluate("() => editor.points()")], expected)
        marks = page.locator(".mark")
        assert marks.count() == 2
        for i, (x, y) in enumerate(expected):
            m = marks.nth(i).bounding_box()
            assert m and np.allclose((m["x"] + m["width"] / 2, m["y"] + m["height"] / 2), screen_at(page, x, y), atol=1)
        # Saved untouched: the same document. Then a hint moved is written in normalized form.
        page.locator("#save").click()
        page.wait_for_function("() => editor.saved !== null")
        assert json.loads(existing.read_text()) == document
        page.mouse.move(*screen_at(page, *expected[0]))
        page.mouse.down()
        page.mouse.move(*screen_at(page, 319, 100), steps=4)
        page.mouse.up()
        page.locator("#save").click()
        page.wait_for_function("() => editor.saved.points === 2 && document.getElementById('save').textContent === 'Save'")
        assert errors == []
    saved = json.loads(existing.read_text())
    assert saved["space"] == "normalized" and saved["points"][1] == document["points"][1]
    assert saved["points"][0] == {"x": 319 / (WIDTH - 1), "y": 100 / (HEIGHT - 1), "color": "#00aa00", "note": "field"}


def test_a_reference_picked_in_the_page_shows_where_it_matched_and_colours_the_preview(chromium, tmp_path: Path) -> None:  # noqa: ANN001
    from restore.colour import lightness_to_gray, rgb_to_lab
    from tests.restore.test_reference import scene, views

    target, reference = views(scene(1, 300, 400))
    scan = tmp_path / "street.png"
    Image.fromarray(lightness_to_gray(rgb_to_lab(target)[..., 0], np.uint8)).save(scan)
    Image.fromarray(reference).save(tmp_path / "street-1952.png")
    with editor(chromium, scan) as (page, _context, _server, errors):
        before = preview_lab(page)
        assert page.locator("#reference-match").is_hidden()
        page.set_input_files("#reference-file", str(tmp_path / "street-1952.png"))
        page.wait_for_function("() => /street-1952.png: \\d+% of the scan matched/.test(document.getElementById('reference-info').textContent)")
        page.wait_for_function("() => { const i = document.getElementById('reference-match'); return !i.hidden && i.complete && i.naturalWidth > 0; }")
        page.wait_for_function(PREVIEW_SHOWN)
        after = preview_lab(page)
        assert np.median(np.hypot(after[..., 1], after[..., 2])) > np.median(np.hypot(before[..., 1], before[..., 2])) + 5
        page.click("#reference-clear")
        page.wait_for_function("() => document.getElementById('reference-info').textContent.startsWith('none')")
        assert errors == []
