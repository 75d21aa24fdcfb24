"""`photochrom evaluate-reference`: series references measured on pairs made from colour
photos, through the whole pipeline.

For each photo, with a generator seeded by the run's seed and the photo's name:
- the target: a crop of the photo (REFERENCE_CROP of each side), its CIE L* written as a
  16-bit gray scan; its colours are the truth;
- the related reference: another view of the same photo: a quadrilateral of about the same
  size, moved by up to a third of its side (so only part of the target is in it), turned
  by up to 20 degrees, scaled 0.7-1.4x, each corner moved by up to 8% (a perspective
  change), resampled to its own size, then relit: gamma 0.7-1.4, gain 0.8-1.15, and a
  colour cast of up to 4% per channel;
- the unrelated reference: the next photo in the list, whole (nothing of the target in it).

Each target is restored (`restore_file`, default settings) without a reference, with the
related one and with the unrelated one; beside them the naive baseline: the result without
a reference with its a*b* moved, per lightness band (BANDS bands of equal width in L*), to
the reference's a*b* mean and standard deviation in that band (Reinhard et al. 2001's
statistics transfer, per band). Measured against the truth: PSNR on 8-bit sRGB and mean
CIEDE2000; and how much of the target the related reference covered confidently.
"""

from __future__ import annotations

import json
import tempfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from skimage.color import deltaE_ciede2000

from jobs.evaluate import EvaluateError, chosen_photos, psnr_u8
from restore.colour import lab_to_rgb, lightness_to_gray, rgb_to_lab
from restore.models.registry import shared_model
from restore.pipeline import restore_file
from restore.reference import reference_from_file
from restore.settings import DEFAULT_EVALUATE_SEED, DEFAULT_MODEL, RestoreSettings

REFERENCE_CROP = 0.75
BANDS = 8
CONDITIONS = ("none", "reference", "naive", "unrelated")


@dataclass(frozen=True)
class ReferenceEvaluateSettings:
    data: Path
    model: str = DEFAULT_MODEL
    seed: int = DEFAULT_EVALUATE_SEED
    limit: int | None = None
    sample: int | None = None


def reference_pair(rgb: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(target, related reference) RGB uint8 views of one photo (see the module docstring)."""
    height, width = rgb.shape[:2]
    crop_h, crop_w = round(height * REFERENCE_CROP), round(width * REFERENCE_CROP)
    top, left = int(rng.integers(0, height - crop_h + 1)), int(rng.integers(0, width - crop_w + 1))
    target = np.ascontiguousarray(rgb[top : top + crop_h, left : left + crop_w])
    # The reference's corners in the photo: the target's box moved, turned, scaled, skewed.
    centre = np.array([left + crop_w / 2, top + crop_h / 2]) + rng.uniform(-1 / 3, 1 / 3, 2) * [crop_w, crop_h]
    angle, scale = np.deg2rad(rng.uniform(-20, 20)), rng.uniform(0.7, 1.4)
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float64) * [crop_w / 2, crop_h / 2] * scale
    turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    corners = corners @ turn.T + centre + rng.uniform(-0.08, 0.08, (4, 2)) * [crop_w, crop_h]
    frame = np.array([[0, 0], [crop_w, 0], [crop_w, crop_h], [0, crop_h]], np.float32)
    warp = cv2.getPerspectiveTransform(corners.astype(np.float32), frame)
    reference = cv2.warpPerspective(rgb, warp, (crop_w, crop_h), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT)
    relit = 255 * (reference / 255.0) ** rng.uniform(0.7, 1.4) * rng.uniform(0.8, 1.15) * rng.uniform(0.96, 1.04, 3)
    return target, np.clip(relit, 0, 255).astype(np.uint8)


def naive_transfer(result_lab: np.ndarray, reference_lab: np.ndarray) -> np.ndarray:
    """`result_lab`'s a*b* moved, band by band of L*, to the reference's a*b* mean and standard
    deviation in the same band (bands empty on either side are left as they are)."""
    edges = np.linspace(0, 100, BANDS + 1)
    out = result_lab.copy()
    for low, high in zip(edges[:-1], edges[1:]):
        ours = (result_lab[..., 0] >= low) & (result_lab[..., 0] < high if high < 100 else result_lab[..., 0] <= high)
        theirs = (reference_lab[..., 0] >= low) & (reference_lab[..., 0] < high if high < 100 else reference_lab[..., 0] <= high)
        if ours.sum() < 2 or theirs.sum() < 2:
            continue
        for channel in (1, 2):
            source, target = result_lab[..., channel][ours], reference_lab[..., channel][theirs]
            out[..., channel][ours] = (source - source.mean()) / max(float(source.std()), 1e-3) * float(target.std()) + float(target.mean())
    return out


def evaluate_pair(photo: Path, unrelated: Path, settings: ReferenceEvaluateSettings) -> dict[str, object]:
    """One row: PSNR and CIEDE2000 per condition for this photo's pair."""
    rng = np.random.default_rng([settings.seed, zlib.crc32(photo.name.encode())])
    with Image.open(photo) as image:
        target, related = reference_pair(np.asarray(image.convert("RGB")), rng)
    truth_lab = rgb_to_lab(target)
    model = shared_model(settings.model)
    row: dict[str, object] = {"photo": photo.name, "unrelated": unrelated.name}
    with tempfile.TemporaryDirectory(prefix="photochrom-evaluate-reference-") as tmp:
        folder = Path(tmp)
        scan = folder / "scan.png"
        Image.fromarray(lightness_to_gray(truth_lab[..., 0], np.uint16)).save(scan)
        Image.fromarray(related).save(folder / "related.png")
        results: dict[str, np.ndarray] = {}
        for condition, reference_path in (("none", None), ("reference", folder / "related.png"), ("unrelated", unrelated)):
            out = folder / f"{condition}.png"
            reference = reference_from_file(reference_path) if reference_path is not None else None
            result = restore_file(scan, out, model, RestoreSettings(model=settings.model), source_sha256="0" * 64, reference=reference)
            result16 = cv2.cvtColor(cv2.imread(str(out), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGR2RGB)
            results[condition] = np.rint(result16 / 257.0).astype(np.uint8)
            if condition == "reference":
                row["coverage"] = float(result.reference["coverage"])  # type: ignore[index]
        naive = naive_transfer(rgb_to_lab(results["none"]), rgb_to_lab(related))
        results["naive"] = lab_to_rgb(truth_lab[..., 0], naive[..., 1:].astype(np.float32), np.uint8)
    for condition in CONDITIONS:
        rgb8 = results[condition]
        row[f"psnr_{condition}"] = psnr_u8(rgb8, target)
        row[f"ciede2000_{condition}"] = float(deltaE_ciede2000(truth_lab, rgb_to_lab(rgb8)).mean())
    return row


def evaluate_references(settings: ReferenceEvaluateSettings, progress: Callable[[int, int, str], None] | None = None) -> dict[str, object]:
    """Run the protocol; returns {"settings", "photos", "summary", "rows"}."""
    from restore.models.registry import ModelError, get_spec

    try:
        get_spec(settings.model)
    except ModelError as exc:
        raise EvaluateError(str(exc)) from exc
    photos = chosen_photos(settings.data, settings.limit, settings.sample)
    if len(photos) < 2:
        raise EvaluateError(f"{settings.data}: needs at least two photos (one is the other's unrelated reference)")
    rows = []
    for i, photo in enumerate(photos):
        rows.append(evaluate_pair(photo, photos[(i + 1) % len(photos)], settings))
        if progress:
            progress(i + 1, len(photos), photo.name)
    return {"settings": asdict(settings) | {"data": str(settings.data)}, "photos": len(photos), "summary": summarise(rows), "rows": rows}


def summarise(rows: Sequence[dict[str, object]]) -> dict[str, object]:
    """Means over the pairs per condition, and the differences the targets are stated in."""
    summary: dict[str, object] = {
        condition: {
            "psnr": float(np.mean([r[f"psnr_{condition}"] for r in rows])),
            "ciede2000": float(np.mean([r[f"ciede2000_{condition}"] for r in rows])),
        }
        for condition in CONDITIONS
    }
    psnr = {c: summary[c]["psnr"] for c in CONDITIONS}  # type: ignore[index]
    summary["gain_over_none"] = psnr["reference"] - psnr["none"]
    summary["gain_over_naive"] = psnr["reference"] - psnr["naive"]
    summary["unrelated_change"] = psnr["unrelated"] - psnr["none"]
    summary["coverage"] = float(np.mean([r["coverage"] for r in rows]))
    return summary


def markdown_table(report: dict[str, object]) -> str:
    summary = report["summary"]
    names = {
        "none": "no reference", "reference": "with the related reference (photochrom)",
        "naive": "naive: a*b* statistics per lightness band from the reference", "unrelated": "with an unrelated reference",
    }
    lines = [
        f"{report['photos']} pairs, model {report['settings']['model']}, seed {report['settings']['seed']}; "  # type: ignore[index]
        f"the related reference covered {100 * summary['coverage']:.0f}% of the targets confidently on average",  # type: ignore[index]
        "",
        "| | PSNR (dB) | CIEDE2000 |",
        "|---|---|---|",
    ]
    for condition in CONDITIONS:
        values = summary[condition]  # type: ignore[index]
        lines.append(f"| {names[condition]} | {values['psnr']:.2f} | {values['ciede2000']:.2f} |")
    lines += [
        "",
        f"Related reference vs none: {summary['gain_over_none']:+.2f} dB; vs naive: {summary['gain_over_naive']:+.2f} dB; "  # type: ignore[index]
        f"unrelated reference vs none: {summary['unrelated_change']:+.2f} dB.",  # type: ignore[index]
    ]
    return "\n".join(lines) + "\n"


def write_report(report: dict[str, object], out: Path) -> str:
    """OUT/reference.json (everything) and OUT/reference.md (the table); returns the table."""
    out.mkdir(parents=True, exist_ok=True)
    table = markdown_table(report)
    (out / "reference.json").write_text(json.dumps(report, indent=1))
    (out / "reference.md").write_text(table)
    return table
