"""The exported site in a real browser (headless Chromium through Playwright): the index and a
scan page load every image, the before/after slider moves under the mouse and the range
control, and nothing is logged to the console as an error along the way.

Needs Debian's `chromium` (or $PHOTOCHROM_CHROMIUM) and the `playwright` package from the
[dev] extra; no browser is downloaded. Skips, saying which is missing, where either is absent
(the `chromium` fixture, tests/conftest.py)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from catalog.db import open_catalog
from catalog.export import export
from catalog.ingest import ingest
from tests.catalog.test_export import _restore
from tests.conftest import gray_u8


@pytest.fixture
def site(tmp_path: Path) -> Path:
    archive = tmp_path / "archive"
    (archive / "box1").mkdir(parents=True)
    Image.fromarray(gray_u8(180, 240)).save(archive / "box1" / "street.png")
    tifffile.imwrite(archive / "harbour.tif", gray_u8(150, 200).astype(np.uint16) * 257, photometric="minisblack")
    with open_catalog(tmp_path / "archive.db") as cat:
        ingest(cat, [archive])
        _restore(cat, tmp_path / "restored")
        summary = export(cat, tmp_path / "site")
    assert (summary.scans, summary.results, summary.failed) == (2, 2, [])
    return tmp_path / "site"


ALL_IMAGES_LOADED = "() => [...document.images].every(i => i.complete)"
BROKEN_IMAGES = "() => [...document.images].filter(i => !(i.naturalWidth > 0)).map(i => i.getAttribute('src'))"


def _loaded(page, images: int, errors: list[str]) -> None:  # noqa: ANN001 - a playwright Page
    """Every image on the page decoded, and nothing failed to load (script, stylesheet, image)."""
    page.wait_for_function(ALL_IMAGES_LOADED)
    assert page.evaluate("() => document.images.length") == images, page.url
    assert page.evaluate(BROKEN_IMAGES) == [], f"images that did not load on {page.url}"
    assert errors == [], page.url


def _band(box, left: float, right: float) -> np.ndarray:  # noqa: ANN001 - a playwright Locator
    """The pixels of a vertical band of the element's screenshot, the labels at the top left out."""
    shot = np.asarray(Image.open(io.BytesIO(box.screenshot())).convert("RGB"), dtype=np.float32)
    h, w = shot.shape[:2]
    return shot[h // 3 :, int(w * left) : int(w * right)]


def test_site_in_chromium_loads_images_and_the_slider_moves(chromium, site: Path) -> None:  # noqa: ANN001
    sync_api, executable = chromium
    errors: list[str] = []
    with sync_api.sync_playwright() as p:
        # --no-sandbox: CI runs as root in a container, where Chromium's sandbox cannot start.
        browser = p.chromium.launch(executable_path=executable, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 800})
            page.set_default_timeout(10_000)
            page.on("console", lambda m: errors.append(f"console {m.type}: {m.text} ({m.location})") if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
            page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url} ({r.failure})"))

            page.goto((site / "index.html").as_uri())
            page.wait_for_selector("#grid a.card")
            assert page.locator("#count").inner_text() == "2 of 2 scans"
            _loaded(page, 2, errors)  # the two thumbnails

            card = page.locator("#grid a.card", has_text="street.png")
            href = card.get_attribute("href")
            card.click()
            page.wait_for_url(f"**/{href}")
            page.wait_for_selector(".compare .after")
            _loaded(page, 2, errors)  # original and AI-colorized
            assert page.evaluate("() => typeof OpenSeadragon") == "function", "openseadragon.min.js did not load"

            after, divider, box = page.locator(".compare .after"), page.locator(".compare .divider"), page.locator(".compare")
            clip = lambda: after.evaluate("el => el.style.clipPath")  # noqa: E731
            assert clip() == "inset(0px 0px 0px 50%)"
            shown, under = after.bounding_box(), page.locator(".compare .before").bounding_box()
            assert shown and shown["width"] > 100 and shown == under, "the AI-colorized image does not lie over the original"

            # Drag the divider with the mouse from the middle to a fifth of the way across.
            at_half = _band(box, 0.25, 0.45)
            bounds = box.bounding_box()
            assert bounds
            y = bounds["y"] + bounds["height"] / 2
            page.mouse.move(bounds["x"] + bounds["width"] / 2, y)
            page.mouse.down()
            page.mouse.move(bounds["x"] + bounds["width"] * 0.2, y, steps=5)
            page.mouse.up()
            dragged = clip()
            assert dragged != "inset(0px 0px 0px 50%)", dragged
            percent = float(dragged.removeprefix("inset(0px 0px 0px ").removesuffix("%)"))
            assert 15 < percent < 25, dragged
            assert 15 < float(page.locator("input.compare-range").input_value()) < 25
            assert float(divider.evaluate("el => el.style.left").removesuffix("%")) == percent
            # What is seen changed: between 25% and 45% across, the original gave way to the result.
            at_fifth = _band(box, 0.25, 0.45)
            assert np.abs(at_fifth - at_half).mean() > 2, "the slider moved but the picture did not change"
            # Once the button is up, moving the mouse no longer moves the divider.
            page.mouse.move(bounds["x"] + bounds["width"] * 0.9, y)
            assert clip() == dragged

            # The range control under the image moves it too.
            page.locator("input.compare-range").evaluate("el => { el.value = 80; el.dispatchEvent(new Event('input', {bubbles: true})); }")
            assert clip() == "inset(0px 0px 0px 80%)"
            assert divider.evaluate("el => el.style.left") == "80%"
            # ... and so does the keyboard on it, as a user would.
            page.locator("input.compare-range").focus()
            page.keyboard.press("ArrowLeft")
            assert clip() == "inset(0px 0px 0px 79%)"

            # Back to the index: its images load again.
            page.locator("a", has_text="all scans").click()
            page.wait_for_url("**/index.html")
            _loaded(page, 2, errors)
        finally:
            browser.close()
    assert errors == []
