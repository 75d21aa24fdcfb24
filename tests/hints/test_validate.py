"""hints.validate: the one check of a hint file against its scan (schema, identity, points inside)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hints.schema import HintError
from hints.validate import ScanIdentity, validate_hint_file

SHA, OTHER = "ab" * 32, "cd" * 32
SCAN = ScanIdentity(SHA, 96, 64)


def _write(tmp_path: Path, points: list[dict], name: str = "street.json", **extra: object) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps({"schema": "photochrom.hints/1", "points": points, **extra}))
    return path


def test_against_a_scan_the_points_are_resolved(tmp_path: Path) -> None:
    path = _write(tmp_path, [{"x": 70, "y": 30, "color": "#ff0000"}], image={"sha256": SHA})
    checked = validate_hint_file(path, SCAN)
    assert checked.scan == SCAN and checked.file.path == path and len(checked.file.points) == 1
    assert [(h.x_px, h.y_px) for h in checked.hints] == [(70, 30)]


@pytest.mark.parametrize(
    ("points", "extra", "expected"),
    [
        ([{"x": 96, "y": 1, "color": "#ff0000"}], {}, "point 0: (96.0, 1.0) is outside the image (96x64 pixels)"),
        ([{"x": 1, "y": 1, "color": "#ff0000", "radius": 1e6}], {}, "point 0: radius 1e+06 is larger than the image"),
        ([], {"image": {"sha256": OTHER}}, f"is for scan {OTHER[:12]}, not this scan ({SHA[:12]})"),
        ([{"x": 1, "y": 1, "color": "red"}], {}, "point 0: bad colour"),
    ],
)
def test_each_way_to_be_invalid_for_the_scan(tmp_path: Path, points: list[dict], extra: dict, expected: str) -> None:
    path = _write(tmp_path, points, **extra)
    with pytest.raises(HintError, match="^" + str(path).replace(".", r"\.")) as caught:
        validate_hint_file(path, SCAN)
    assert expected in str(caught.value)


def test_without_a_scan_only_the_schema(tmp_path: Path) -> None:
    path = _write(tmp_path, [{"x": 5000, "y": 1, "color": "#ff0000"}], image={"sha256": OTHER})
    checked = validate_hint_file(path)
    assert checked.scan is None and checked.hints == [] and len(checked.file.points) == 1
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(HintError, match="not valid JSON"):
        validate_hint_file(broken)


def test_known_scans_are_picked_by_the_files_sha256_else_its_stem(tmp_path: Path) -> None:
    """As `hints validate --db` looks them up in the catalog (catalog.queries.scan_sizes)."""
    scans = {SHA: (SHA, 96, 64), "street": (SHA, 96, 64), OTHER: (OTHER, 10, 10)}
    outside = [{"x": 50, "y": 20, "color": "#ff0000"}]  # inside 96 x 64, outside 10 x 10
    by_sha = _write(tmp_path, outside, name="anything.json", image={"sha256": OTHER})
    with pytest.raises(HintError, match="outside the image \\(10x10 pixels\\)"):
        validate_hint_file(by_sha, scans)
    assert validate_hint_file(_write(tmp_path, outside), scans).scan == SCAN  # street.json, no sha256: by stem
    unknown = validate_hint_file(_write(tmp_path, outside, name="elsewhere.json"), scans)
    assert unknown.scan is None  # neither known: schema only


def test_bytes_not_yet_on_disk_are_checked_and_named_as_the_file(tmp_path: Path) -> None:
    """The editor checks a save before writing it."""
    target = tmp_path / "hints" / "street.json"
    data = json.dumps({"schema": "photochrom.hints/1", "points": [{"x": 1, "y": 2, "color": "#00ff00"}]}).encode()
    checked = validate_hint_file(target, SCAN, data=data)
    assert checked.file.path == target and [(h.x_px, h.y_px) for h in checked.hints] == [(1, 2)]
    assert not target.exists()
    with pytest.raises(HintError, match=f"^{target}: point 0: \\(100.0, 2.0\\) is outside"):
        validate_hint_file(target, SCAN, data=data.replace(b'"x": 1', b'"x": 100'))


def test_only_regular_files_are_read(tmp_path: Path) -> None:
    folder = tmp_path / "folder.json"
    folder.mkdir()
    with pytest.raises(HintError, match="is a folder, not a regular file"):
        validate_hint_file(folder, SCAN)
