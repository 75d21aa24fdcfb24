"""--repair through jobs and the command line, with the shipped damage segmenter: a scratched
scan is repaired (mask beside the result, recorded in the catalog and the export), a clean
one is left alone, a repair-only job gives gray at the scan's depth, the repair settings make a
new result while the old stays, and the flags are checked before any work."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image

from catalog.db import open_catalog
from catalog.export import export
from catalog.ingest import ingest
from jobs.run import JobSettings, create_restore_job, run_job, show_job
from restore.colour import gray_to_lightness, lightness_to_gray
from restore.pipeline import mask_path
from restore.repair.synth import synthesize_damage
from restore.scanio.read import read_scan
from restore.scanio.write import result_provenance
from restore.settings import RepairSettings, RestoreSettings

REPO = Path(__file__).resolve().parents[2]


def _photo_l(height: int = 240, width: int = 320) -> np.ndarray:
    """A smooth photo-like L*: gradients and soft blobs, no thin bright lines of its own."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    l_hw = 35 + 25 * x / width + 10 * np.sin(y / 23.0) + 12 * np.exp(-((x - 200) ** 2 + (y - 90) ** 2) / 900.0)
    return l_hw.astype(np.float32)


def _scratch(l_hw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic damage (scratches, dust, cracks... as restore/repair/synth.py draws them; a
    fixed seed); (L*, true mask). Hand-drawn lines of one flat value and hard edges are not
    what scans show, and damage-lite takes long uniform straight lines for picture structure."""
    return synthesize_damage(l_hw, np.random.default_rng(0), amount=1.5)


def _near(mask: np.ndarray) -> np.ndarray:
    """Within 1 px (the evaluation's tolerance)."""
    return cv2.dilate(mask.view(np.uint8), np.ones((3, 3), np.uint8)).view(bool)


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    folder = tmp_path / "archive"
    folder.mkdir()
    clean = _photo_l()
    damaged, truth = _scratch(clean)
    Image.fromarray(lightness_to_gray(damaged, np.uint8)).save(folder / "scratched.png")
    np.save(tmp_path / "truth.npy", truth)
    tifffile.imwrite(folder / "clean16.tif", lightness_to_gray(_photo_l(200, 260) + 5, np.uint16), photometric="minisblack")
    return folder


def _job(catalog, tmp_path: Path, out: str, settings: RestoreSettings):  # noqa: ANN001, ANN202
    job_id, _ = create_restore_job(catalog, JobSettings(restore=settings, out_dir=str(tmp_path / out)))
    return job_id, run_job(catalog, job_id, scheduler="synchronous")


def test_a_repair_job_fills_the_scratches_records_the_mask_and_leaves_a_clean_scan_alone(archive: Path, tmp_path: Path) -> None:
    truth = np.load(tmp_path / "truth.npy")
    with open_catalog(tmp_path / "archive.db") as catalog:
        ingest(catalog, [archive])
        job_id, summary = _job(catalog, tmp_path, "repaired", RestoreSettings(model="ramp", repair=RepairSettings()))
        assert (summary.done, summary.failed) == (2, [])
        out = tmp_path / "repaired" / "scratched.png"
        mask = np.array(Image.open(mask_path(out)))
        assert mask.shape == truth.shape
        assert _near(mask)[truth].mean() > 0.8  # the damage is found (0.90 when written) ...
        assert (mask & ~_near(truth)).sum() < 0.05 * mask.sum()  # ... and little else (the mask's margin is 1 px)
        l_in = gray_to_lightness(np.array(Image.open(archive / "scratched.png")))
        l_out = read_scan(out).l_hw
        np.testing.assert_allclose(l_out[~mask], l_in[~mask], atol=0.6)  # the scan's own lightness outside the mask
        clean = _photo_l()
        assert np.abs(l_out[truth] - clean[truth]).mean() < 0.5 * np.abs(l_in[truth] - clean[truth]).mean()  # damage at least halved

        clean_mask = np.array(Image.open(mask_path(tmp_path / "repaired" / "clean16.tif")))
        assert clean_mask.mean() < 0.001  # nothing to repair on a clean scan

        tasks = {Path(t["output"]).name: t for t in show_job(catalog, job_id)["tasks"]}
        record = tasks["scratched.png"]["repair"]
        assert record["segmenter"] == "damage-lite" and record["mask"] == "scratched.png.mask.png"
        assert record["fraction"] == pytest.approx(mask.mean(), abs=1e-6)
        assert json.loads(result_provenance(out)["Repair"]) == record

        site = tmp_path / "site"
        assert export(catalog, site).failed == []
        rows = {r["name"]: r for r in (json.loads(line) for line in (site / "catalog.jsonl").read_text().splitlines())}
        assert float(rows["scratched.png"]["repair_fraction"]) == pytest.approx(record["fraction"])
        page = (site / rows["scratched.png"]["page"]).read_text()
        assert "Repair: the mask over the original" in page and record["mask_sha256"] in page
        overlay = next((site / "images").rglob("repair-*.jpg"))
        assert Image.open(overlay).size == Image.open(site / rows["scratched.png"]["original_image"]).size

        # Other repair settings are another result; the first stays where it was.
        _, again = _job(catalog, tmp_path, "again", RestoreSettings(model="ramp", repair=RepairSettings(margin_px=2)))
        assert again.done == 2 and out.exists()
        settings = JobSettings(restore=RestoreSettings(model="ramp", repair=RepairSettings(margin_px=2)), out_dir=str(tmp_path / "same"))
        assert create_restore_job(catalog, settings)[1] == 2  # the same settings again: both results current


def test_a_repair_only_job_writes_gray_at_the_scans_depth(archive: Path, tmp_path: Path) -> None:
    with open_catalog(tmp_path / "archive.db") as catalog:
        ingest(catalog, [archive])
        _, summary = _job(catalog, tmp_path, "gray", RestoreSettings(repair=RepairSettings(), colorize=False))
        assert summary.done == 2
    sixteen = tifffile.imread(tmp_path / "gray" / "clean16.tif")
    original = tifffile.imread(archive / "clean16.tif")
    assert sixteen.dtype == np.uint16 and sixteen.shape == original.shape
    mask = np.array(Image.open(mask_path(tmp_path / "gray" / "clean16.tif")))
    np.testing.assert_array_equal(sixteen[~mask], original[~mask])
    eight = np.array(Image.open(tmp_path / "gray" / "scratched.png"))
    assert eight.ndim == 2 and eight.dtype == np.uint8


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=REPO, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--repair-threshold", "0.3"], "apply only with --repair"),
        (["--repair-only", "--model", "lite"], "--model: --repair-only does not colorize"),
        (["--repair-only", "--instances"], "--instances: --repair-only does not colorize"),
        (["--repair", "--repair-threshold", "1.0"], "threshold must be between 0 and 1"),
    ],
)
def test_bad_repair_flags_are_one_line_and_exit_2(flags: list[str], message: str, tmp_path: Path) -> None:
    scan = tmp_path / "a.png"
    Image.fromarray(lightness_to_gray(_photo_l(40, 50), np.uint8)).save(scan)
    done = _cli("colorize", str(scan), "-o", str(tmp_path / "out"), *flags, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_colorize_with_repair_from_the_command_line(archive: Path, tmp_path: Path) -> None:
    done = _cli("--device", "cpu", "colorize", str(archive / "scratched.png"), "-o", str(tmp_path / "out"), "--repair", "--model", "ramp", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    written = json.loads(done.stdout)["written"]
    assert written[0]["repair"]["mask"] == "scratched.png.mask.png"
    assert (tmp_path / "out" / "scratched.png.mask.png").exists()
