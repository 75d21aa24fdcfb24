"""The exported pages with scan names that are HTML, script or markup: every card is still
there (the embedded JSON cannot end or re-state its <script> element), and every page shows
the names as text."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
from PIL import Image

from catalog.db import open_catalog
from catalog.export import export
from catalog.export_site import index_page
from catalog.ingest import ingest
from tests.conftest import gray_u8

# Relative paths: "/" separates folders, so a name holding "</script>" spans three of them.
NAMES = (
    "a<!--b.png",
    "</script><script>alert(1)</script>.png",
    "<SCRIPT>x.png",
    "[bold red]x[/].png",
    "tom & jerry &amp; co.png",
    "line\u2028separator.png",
    'quote" onload="alert(2).png',
)


def _archive(folder: Path) -> None:
    for i, relpath in enumerate(NAMES):
        path = folder / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.clip(gray_u8(30, 40).astype(int) + 5 * i, 0, 255).astype(np.uint8)).save(path, format="PNG")


def _script_data(html: str) -> str:
    """The text of the scans-data element, ended where an HTML parser ends it: the first "</script"."""
    start = html.index('<script id="scans-data" type="application/json">') + len('<script id="scans-data" type="application/json">')
    return html[start : html.lower().index("</script", start)]


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tag: str | None = None
        self.found: dict[str, list[str]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tag = tag

    def handle_endtag(self, tag: str) -> None:
        self.tag = None

    def handle_data(self, data: str) -> None:
        if self.tag:
            self.found.setdefault(self.tag, []).append(data)


def test_every_card_survives_names_that_are_html(tmp_path: Path) -> None:
    _archive(tmp_path / "archive")
    with open_catalog(tmp_path / "archive.db") as catalog:
        ingest(catalog, [tmp_path / "archive"])
        summary = export(catalog, tmp_path / "site")
    assert (summary.scans, summary.failed) == (len(NAMES), [])
    html = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    data = _script_data(html)
    # What would change how a browser tokenizes script data (HTML's "script data escaped"
    # states) or end it early must not appear in it.
    for token in ("<!--", "<script", "</script", "-->"):
        assert token not in data.lower(), token
    cards = json.loads(data)
    assert sorted(f"{c['folder']}/{c['name']}".lstrip("/") for c in cards) == sorted(NAMES)
    for card in cards:  # each card's page shows its name as text
        page = _Text()
        page.feed((tmp_path / "site" / card["page"]).read_text(encoding="utf-8"))
        assert page.found["h1"] == [card["name"]]
        assert page.found["title"] == [f"{card['name']} · photochrom"]


def test_the_embedded_json_escapes_every_character_html_or_javascript_reads(tmp_path: Path) -> None:
    record = {
        "scan_id": 1, "name": "<&>\u2028\u2029'\"", "folder": "", "status": "ok", "ingested_at": None, "notes": "</SCRIPT >",
        "page": "scans/1.html", "results": [], "original": None,
    }
    data = _script_data(index_page([record]))
    assert not set("<>&\u2028\u2029") & set(data)
    [card] = json.loads(data)
    assert (card["name"], card["notes"]) == (record["name"], record["notes"])


def test_the_index_script_sets_user_text_as_text() -> None:
    script = (Path(__file__).resolve().parents[2] / "catalog" / "export_assets" / "index.js").read_text()
    assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write", script)


def test_every_card_shows_in_chromium(chromium, tmp_path: Path) -> None:  # noqa: ANN001
    """The same in a real browser (skipped where Chromium or Playwright is absent)."""
    sync_api, executable = chromium
    _archive(tmp_path / "archive")
    with open_catalog(tmp_path / "archive.db") as catalog:
        ingest(catalog, [tmp_path / "archive"])
        export(catalog, tmp_path / "site")
    problems: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.set_default_timeout(10_000)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("dialog", lambda d: (problems.append(f"a script ran: {d.message}"), d.dismiss()))
            page.goto((tmp_path / "site" / "index.html").as_uri())
            page.wait_for_selector("#grid a.card")
            assert page.locator("#count").inner_text() == f"{len(NAMES)} of {len(NAMES)} scans"
            shown = page.evaluate("() => [...document.querySelectorAll('#grid a.card > div:not(.muted)')].map(d => d.textContent)")
            assert sorted(shown) == sorted(name.rsplit("/", 1)[-1] for name in NAMES)
        finally:
            browser.close()
    assert problems == []
