"""`photochrom export` on a real little catalog: every link resolves, the CSV follows the
columns of docs/export.md, IIIF manifests hold a Choice, the bag validates, and re-exporting
rewrites nothing until there is something new."""

from __future__ import annotations

import csv
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import bagit
import numpy as np
import pytest
import tifffile
from PIL import Image
from typer.testing import CliRunner

from catalog.db import open_catalog
from catalog.export import COLUMNS, ExportError, ExportSettings, export
from catalog.ingest import ingest
from cli import app
from jobs.run import JobSettings, create_restore_job, run_job
from restore.settings import RestoreSettings
from tests.conftest import gray_u8

REPO = Path(__file__).resolve().parents[2]


def _archive(folder: Path) -> None:
    (folder / "box1").mkdir(parents=True)
    (folder / "box2").mkdir()
    Image.fromarray(gray_u8(60, 80)).save(folder / "box1" / "street.png")
    tifffile.imwrite(folder / "box2" / "harbour.tif", gray_u8(90, 120).astype(np.uint16) * 257, photometric="minisblack")
    Image.fromarray(np.clip(gray_u8(70, 50).astype(int) + 30, 0, 255).astype(np.uint8)).save(folder / "portrait.jpg", quality=90)


def _restore(catalog, out: Path, **restore: object) -> int:  # noqa: ANN001
    job_id, _ = create_restore_job(catalog, JobSettings(restore=RestoreSettings(model="ramp", **restore), out_dir=str(out)))
    assert run_job(catalog, job_id, scheduler="synchronous").failed == []
    return job_id


@pytest.fixture
def catalog(tmp_path: Path):
    _archive(tmp_path / "archive")
    with open_catalog(tmp_path / "archive.db") as cat:
        ingest(cat, [tmp_path / "archive"])
        _restore(cat, tmp_path / "restored")
        yield cat


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value and ((tag in ("a", "link") and name == "href") or (tag in ("img", "script") and name == "src")):
                self.links.append(value)


def _links(page: Path) -> list[Path]:
    parser = _Links()
    parser.feed(page.read_text())
    return [(page.parent / link).resolve() for link in parser.links if not link.startswith(("http:", "https:", "#"))]


def _snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {p.relative_to(folder).as_posix(): (p.stat().st_mtime_ns, p.read_bytes()) for p in folder.rglob("*") if p.is_file()}


def test_site_links_resolve_and_images_are_web_derivatives(catalog, tmp_path: Path) -> None:
    site = tmp_path / "site"
    summary = export(catalog, site)
    assert (summary.scans, summary.results, summary.failed, summary.exit_code) == (3, 3, [], 0)
    index = site / "index.html"
    embedded = json.loads(re.search(r'id="scans-data" type="application/json">(.*?)</script>', index.read_text(), re.S).group(1))
    assert sorted(s["name"] for s in embedded) == ["harbour.tif", "portrait.jpg", "street.png"]
    assert {s["folder"] for s in embedded} == {"", "box1", "box2"} and {s["status"] for s in embedded} == {"colorized"}
    pages = [site / s["page"] for s in embedded]
    for page in [index, *pages]:
        for target in _links(page) + ([site / s["thumbnail"] for s in embedded] if page == index else []):
            assert target.is_file(), f"{page.name} links to missing {target}"
    for page in pages:
        text = page.read_text()
        assert 'class="compare"' in text and "AI-colorized" in text
        before, after = re.findall(r'<img class="(?:before|after)" src="([^"]+)"', text)
        with Image.open(page.parent / before) as b, Image.open(page.parent / after) as a:
            assert b.size == a.size and b.format == a.format == "JPEG" and a.mode == "RGB"
    for image in (site / "images").rglob("*.jpg"):
        with Image.open(image) as im:
            assert im.format == "JPEG" and im.mode == "RGB"  # the 16-bit TIFF scan too
            if image.stem.endswith("_thumb"):
                assert max(im.size) <= 256


def test_scan_page_shows_provenance_and_history(catalog, tmp_path: Path) -> None:
    export(catalog, tmp_path / "site")
    rows = list(csv.DictReader((tmp_path / "site" / "catalog.csv").open()))
    tif = next(r for r in rows if r["name"] == "harbour.tif")
    page = (tmp_path / "site" / tif["page"]).read_text()
    for expected in ("ramp", tif["result_sha256"], tif["scan_sha256"], "ingested", "job 1: done", '"saturation": null'.replace('"', "&quot;")):
        assert expected in page, expected


def test_csv_and_jsonl_follow_the_documented_columns(catalog, tmp_path: Path) -> None:
    export(catalog, tmp_path / "site")
    page = (REPO / "docs" / "export.md").read_text()
    section = page[page.index("## Columns of `catalog.csv` and `catalog.jsonl`"):]
    documented = re.findall(r"^\| `(\w+)` \|", section, re.M)
    assert tuple(documented) == COLUMNS
    with (tmp_path / "site" / "catalog.csv").open() as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames or ()) == COLUMNS
        rows = list(reader)
    lines = [json.loads(line) for line in (tmp_path / "site" / "catalog.jsonl").read_text().splitlines()]
    assert [tuple(line) for line in lines] == [COLUMNS] * 3
    with catalog.read() as session:
        from catalog.models import Scan, Task

        scans = {s.id: s for s in session.query(Scan)}
        tasks = {t.scan_id: t for t in session.query(Task)}
    assert sorted(int(r["scan_id"]) for r in rows) == sorted(scans)
    for row, line in zip(rows, lines, strict=True):
        scan, task = scans[int(row["scan_id"])], tasks[int(row["scan_id"])]
        assert (row["scan_sha256"], row["result_sha256"], row["result_path"]) == (scan.sha256, task.output_sha256, task.output_path)
        assert (row["result_label"], row["model"], line["task_id"]) == ("AI-colorized", "ramp", task.id)
        assert row["bit_depth"] == str(scan.bit_depth)


def _check_manifest(doc: dict, base_url: str) -> dict:
    assert doc["@context"] == "http://iiif.io/api/presentation/3/context.json"
    assert doc["type"] == "Manifest" and doc["id"].startswith(base_url) and doc["label"]
    (canvas,) = doc["items"]
    assert canvas["type"] == "Canvas" and canvas["width"] > 0 and canvas["height"] > 0 and canvas["id"].startswith(base_url)
    (page,) = canvas["items"]
    assert page["type"] == "AnnotationPage" and page["id"].startswith(base_url)
    (annotation,) = page["items"]
    assert annotation["type"] == "Annotation" and annotation["motivation"] == "painting"
    assert annotation["target"] == canvas["id"] and annotation["id"].startswith(base_url)
    return annotation["body"]


def test_iiif_manifests_hold_a_choice_of_original_and_ai_colorized(catalog, tmp_path: Path) -> None:
    base = "https://archive.example.org/export/"
    export(catalog, tmp_path / "site", ExportSettings(base_url=base))
    iiif = tmp_path / "site" / "iiif"
    collection = json.loads((iiif / "collection.json").read_text())
    assert collection["type"] == "Collection" and len(collection["items"]) == 3
    for item in collection["items"]:
        assert item["type"] == "Manifest"
        doc = json.loads((iiif / item["id"].removeprefix(base + "iiif/")).read_text())
        body = _check_manifest(doc, base)
        assert body["type"] == "Choice" and len(body["items"]) == 2
        original, colorized = body["items"]
        assert "AI-colorized" not in json.dumps(original) and "AI-colorized" in colorized["label"]["en"][0]
        for image in body["items"]:
            assert image["type"] == "Image" and image["format"] == "image/jpeg"
            assert (tmp_path / "site" / image["id"].removeprefix(base)).is_file()
        assert any("AI-colorized" in json.dumps(m) for m in doc["metadata"])


def test_bag_validates_and_tampering_fails(catalog, tmp_path: Path) -> None:
    out = tmp_path / "bagged"
    summary = export(catalog, out, ExportSettings(bag=True))
    assert summary.site == str(out / "data") and (out / "data" / "index.html").is_file()
    bag = bagit.Bag(str(out))
    assert "sha256" in bag.algorithms
    bag.validate()
    _restore(catalog, tmp_path / "restored-2", saturation=2.0)
    export(catalog, out, ExportSettings(bag=True))  # updated in place: still a valid bag
    bagit.Bag(str(out)).validate()
    with (out / "data" / "catalog.csv").open("a") as f:
        f.write("tampered\n")
    with pytest.raises(bagit.BagValidationError):
        bagit.Bag(str(out)).validate()


def test_export_again_rewrites_nothing_then_adds_a_new_result(catalog, tmp_path: Path) -> None:
    site = tmp_path / "site"
    export(catalog, site)
    before = _snapshot(site)
    again = export(catalog, site)
    assert (again.written, again.unchanged) == (0, 6)
    assert _snapshot(site) == before
    job = _restore(catalog, tmp_path / "restored-2", saturation=2.0)
    third = export(catalog, site)
    assert (third.written, third.unchanged) == (3, 3)  # the three new results; originals unchanged
    rows = list(csv.DictReader((site / "catalog.csv").open()))
    assert {r["job_id"] for r in rows} == {str(job)} and len(rows) == 3
    assert all((site / r["result_image"]).is_file() for r in rows)


def test_results_all_and_job_select_history(catalog, tmp_path: Path) -> None:
    second = _restore(catalog, tmp_path / "restored-2", saturation=2.0)
    export(catalog, tmp_path / "all", ExportSettings(results="all"))
    rows = list(csv.DictReader((tmp_path / "all" / "catalog.csv").open()))
    assert len(rows) == 6 and sorted({r["job_id"] for r in rows}) == ["1", str(second)]
    assert sorted(r["result_current"] for r in rows) == ["False"] * 3 + ["True"] * 3
    manifest = json.loads((tmp_path / "all" / "iiif" / "1.json").read_text())
    assert len(manifest["items"][0]["items"][0]["items"][0]["body"]["items"]) == 3
    export(catalog, tmp_path / "job1", ExportSettings(results="job:1"))
    rows = list(csv.DictReader((tmp_path / "job1" / "catalog.csv").open()))
    assert {r["job_id"] for r in rows} == {"1"} and len(rows) == 3
    with pytest.raises(ExportError, match="no job with id 99"):
        export(catalog, tmp_path / "x", ExportSettings(results="job:99"))


def test_scan_without_result_gets_one_empty_row_and_deep_zoom(tmp_path: Path) -> None:
    _archive(tmp_path / "archive")
    with open_catalog(tmp_path / "archive.db") as cat:
        ingest(cat, [tmp_path / "archive"])
        export(cat, tmp_path / "site", ExportSettings(zoom_over_px=64))
    rows = list(csv.DictReader((tmp_path / "site" / "catalog.csv").open()))
    assert len(rows) == 3 and {r["result_path"] for r in rows} == {""} and {r["status"] for r in rows} == {"not colorized"}
    dzi = tmp_path / "site" / "images" / "3" / "original.dzi"  # harbour.tif, 120 x 90
    assert 'Width="120" Height="90"' in dzi.read_text()
    levels = sorted(int(p.name) for p in (tmp_path / "site" / "images" / "3" / "original_files").iterdir())
    assert levels == list(range(8))  # 2^7 = 128 >= 120
    with Image.open(tmp_path / "site" / "images" / "3" / "original_files" / "7" / "0_0.jpg") as tile:
        assert tile.size == (120, 90)


def test_missing_result_is_reported_and_the_rest_exported(catalog, tmp_path: Path) -> None:
    (tmp_path / "restored" / "box1" / "street.png").unlink()
    result = CliRunner().invoke(app, ["export", str(tmp_path / "site"), "--db", str(tmp_path / "archive.db"), "--json"])
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert summary["results"] == 2 and [f["path"] for f in summary["failed"]] == [str(tmp_path / "restored" / "box1" / "street.png")]
    assert "result file missing" in result.stderr
    assert (tmp_path / "site" / "catalog.csv").read_text().count("\n") == 4


def test_errors_name_the_path_and_exit_2(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(app, ["export", str(tmp_path / "site"), "--db", str(tmp_path / "none.db")])
    assert missing.exit_code == 2 and str(tmp_path / "none.db") in missing.stderr
    assert len([line for line in missing.stderr.splitlines() if line.strip()]) == 1
    _archive(tmp_path / "archive")
    runner.invoke(app, ["ingest", str(tmp_path / "archive"), "--db", str(tmp_path / "a.db")])
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    result = runner.invoke(app, ["export", str(blocked / "site"), "--db", str(tmp_path / "a.db")])
    assert result.exit_code == 2 and str(blocked / "site") in result.stderr
    assert len([line for line in result.stderr.splitlines() if line.strip()]) == 1
    bad = runner.invoke(app, ["export", str(tmp_path / "s"), "--db", str(tmp_path / "a.db"), "--results", "newest"])
    assert bad.exit_code == 2 and "--results newest" in bad.stderr
