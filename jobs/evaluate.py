"""`photochrom evaluate`: iColoriT's hint-count protocol on a folder of colour photos,
through the whole pipeline.

For each photo: a 16-bit gray PNG scan whose CIE L* is the photo's; for each hint count
(default 0, 1, 10, 50, 100), points sampled uniformly at random with a fixed seed (the
seed, the count and the photo's name), each point's colour the photo's mean Lab over a
window of about 2 x 2 pixels at 224-pixel scale (2 * long side / 224 pixels here),
written as a real `photochrom.hints/1` file; then `restore_file` (global pass, patches,
stitching, edge-aware upsampling, saturation, the hold step, writing) for every model.

Measured per result, against the photo:
- PSNR on 8-bit sRGB at full resolution;
- colourfulness (Hasler and Suesstrunk 2003), beside the photo's own;
- the chroma error (CIE76 on a*, b*) at every hint point, against the reachable colour
  (the hint's chroma reduced, hue and L* kept, until sRGB can show it at that pixel's
  lightness: no result can be closer) and against the raw hint, with how many hints
  cannot exist at their pixel's lightness.
The gray scan itself is the baseline (no colour).
"""

from __future__ import annotations

import json
import os
import tempfile
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from functools import cache
from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from hints.schema import load_hint_file
from restore.colour import COLOURFUL_CHROMA, NEUTRAL_CHROMA, lab_to_rgb, lightness_to_gray, rgb_to_lab
from restore.models.base import Colorizer
from restore.scanio.files import PHOTO_SUFFIXES, file_sha256, photo_files
from restore.models.registry import shared_model
from restore.pipeline import restore_file
from restore.settings import (
    DEFAULT_EVALUATE_COUNTS,
    DEFAULT_EVALUATE_MODELS,
    DEFAULT_EVALUATE_SEED,
    DEFAULT_EVALUATE_WORKERS,
    DEFAULT_MODEL,
    RestoreSettings,
)

GRAY = "gray"  # the baseline's name in the results
UNREACHABLE_EPS = 0.5  # a*b* units between a hint and its reachable colour


@dataclass(frozen=True)
class EvaluateSettings:
    data: Path
    models: tuple[str, ...] = DEFAULT_EVALUATE_MODELS
    counts: tuple[int, ...] = DEFAULT_EVALUATE_COUNTS
    seed: int = DEFAULT_EVALUATE_SEED
    limit: int | None = None  # the first N photos in name order
    sample: int | None = None  # N photos evenly spaced in name order (every source represented)
    workers: int = DEFAULT_EVALUATE_WORKERS
    saturation: float | None = None  # None: the pipeline's default (RestoreSettings.saturation_for)
    weights: Path | None = None  # lite weights to measure instead of the shipped ones (a `train` run's lite.pt)


class EvaluateError(Exception):
    """The evaluation cannot run; one line for people."""


def parse_counts(text: str) -> tuple[int, ...]:
    """The hint counts of `--counts`: whole numbers, at least 0, separated by commas."""
    try:
        counts = tuple(int(c) for c in text.split(","))
    except ValueError:
        raise EvaluateError(f"--counts {text}: expected whole numbers separated by commas") from None
    if any(c < 0 for c in counts):
        raise EvaluateError(f"--counts {text}: counts cannot be negative")
    return counts


def psnr_u8(a_u8: np.ndarray, b_u8: np.ndarray) -> float:
    mse = float(np.mean((a_u8.astype(np.float64) - b_u8.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else float(10.0 * np.log10(255.0**2 / mse))


def colourfulness(rgb_u8: np.ndarray) -> float:
    """Hasler and Suesstrunk's colourfulness of an sRGB image (0 for gray)."""
    r, g, b = (rgb_u8[..., c].astype(np.float64) for c in range(3))
    rg, yb = r - g, 0.5 * (r + g) - b
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def neutral_cast(truth_lab: np.ndarray, result_lab: np.ndarray) -> dict[str, int]:
    """How many of the truth's neutral pixels there are, and how many the result turned colourful."""
    neutral = np.hypot(truth_lab[..., 1], truth_lab[..., 2]) < NEUTRAL_CHROMA
    colourful = np.hypot(result_lab[..., 1], result_lab[..., 2]) > COLOURFUL_CHROMA
    return {"neutral_pixels": int(neutral.sum()), "neutral_colourful": int((neutral & colourful).sum())}


def sample_hints(lab_hw3: np.ndarray, count: int, rng: np.random.Generator) -> list[dict[str, object]]:
    """`count` hint points, uniformly placed, each the mean Lab of a 2 x 2 (at 224) window."""
    height, width = lab_hw3.shape[:2]
    window = max(1, round(2 * max(height, width) / 224))
    points = []
    for _ in range(count):
        top, left = int(rng.integers(0, height - window + 1)), int(rng.integers(0, width - window + 1))
        mean = lab_hw3[top : top + window, left : left + window].reshape(-1, 3).mean(axis=0)
        points.append(
            {
                "x": left + (window - 1) / 2,
                "y": top + (window - 1) / 2,
                "color": {"lab": [round(float(v), 4) for v in mean]},
                "radius": window / 2,
            }
        )
    return points


def chosen_photos(folder: Path, limit: int | None = None, sample: int | None = None) -> list[Path]:
    if not folder.is_dir():
        raise EvaluateError(f"{folder}: not a folder of colour photos")
    photos = photo_files(folder)
    if not photos:
        raise EvaluateError(f"{folder}: no photos ({', '.join(PHOTO_SUFFIXES)})")
    photos = photos[:limit] if limit else photos
    if sample and sample < len(photos):
        photos = [photos[i] for i in np.unique(np.linspace(0, len(photos) - 1, sample).round().astype(int))]
    return photos


def hint_errors(result_lab: np.ndarray, points: Sequence[dict[str, object]]) -> dict[str, float]:
    """Chroma error at the hint points, against the reachable colour and the raw hint."""
    if not points:
        return {}
    rows = [int(round(float(p["y"]))) for p in points]  # type: ignore[arg-type]
    cols = [int(round(float(p["x"]))) for p in points]  # type: ignore[arg-type]
    wanted = np.array([p["color"]["lab"][1:] for p in points], np.float32)  # type: ignore[index]
    got = result_lab[rows, cols, 1:]
    reachable = rgb_to_lab(lab_to_rgb(result_lab[rows, cols, 0][None], wanted[None], np.uint16))[0, :, 1:]
    errors, raw = np.hypot(*(got - reachable).T), np.hypot(*(got - wanted).T)
    return {
        "hint_error_mean": float(errors.mean()),
        "hint_error_max": float(errors.max()),
        "raw_error_mean": float(raw.mean()),
        "raw_error_max": float(raw.max()),
        "unreachable": int((np.hypot(*(reachable - wanted).T) > UNREACHABLE_EPS).sum()),
    }


def evaluate_photo(photo: Path, settings: EvaluateSettings) -> list[dict[str, object]]:
    """One row per (model, count) for this photo, plus the gray baseline's row."""
    truth = np.asarray(Image.open(photo).convert("RGB"))
    lab = rgb_to_lab(truth)
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="photochrom-evaluate-") as tmp:
        scan = Path(tmp) / "scan.png"
        gray16 = lightness_to_gray(lab[..., 0], np.uint16)
        Image.fromarray(gray16).save(scan)
        gray8 = np.repeat(np.rint(gray16 / 257.0).astype(np.uint8)[..., None], 3, axis=2)
        base = {"photo": photo.name, "truth_colourfulness": colourfulness(truth)}
        rows.append(base | {"model": GRAY, "hints": 0, "psnr": psnr_u8(gray8, truth), "colourfulness": colourfulness(gray8)}
                    | neutral_cast(lab, rgb_to_lab(gray8)))
        for count in settings.counts:
            rng = np.random.default_rng([settings.seed, count, zlib.crc32(photo.name.encode())])
            points = sample_hints(lab, count, rng)
            hint_path = Path(tmp) / f"hints_{count}.json"
            hint_path.write_text(json.dumps({"schema": "photochrom.hints/1", "points": points}))
            hint_file = load_hint_file(hint_path) if points else None
            for name in settings.models:
                out = Path(tmp) / f"{name}_{count}.png"
                restore_settings = RestoreSettings(model=name, saturation=settings.saturation)
                restore_file(scan, out, _model(name, settings.weights), restore_settings, source_sha256="0" * 64, hint_file=hint_file)
                result16 = cv2.cvtColor(cv2.imread(str(out), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGR2RGB)
                result8 = np.rint(result16 / 257.0).astype(np.uint8)
                row = base | {"model": name, "hints": count, "psnr": psnr_u8(result8, truth), "colourfulness": colourfulness(result8)}
                result_lab = rgb_to_lab(result16)
                rows.append(row | hint_errors(result_lab, points) | neutral_cast(lab, result_lab))
    return rows


@cache
def _model(name: str, weights: Path | None) -> Colorizer:
    """The model measured: the shared instance, or lite with `weights` (loaded once per process)."""
    if weights is None or name != DEFAULT_MODEL:
        return shared_model(name)
    from restore.models.lite import Lite

    return Lite(weights)


def check_weights(weights: Path) -> str:
    """The SHA-256 of a lite weights file `evaluate --weights` can measure, or EvaluateError."""
    from restore.models.base import ModelError
    from restore.models.lite import load_weights

    if not weights.is_file():
        raise EvaluateError(f"{weights}: not a weights file")
    try:
        load_weights(weights)
    except ModelError as exc:
        raise EvaluateError(str(exc)) from None
    return file_sha256(weights)


def _worker_init() -> None:
    # One math thread per worker process (read by torch and OpenCV's BLAS when first
    # imported, after this): the workers are the parallelism.
    os.environ["OMP_NUM_THREADS"] = "1"


def evaluate(settings: EvaluateSettings, progress: Callable[[int, int, str], None] | None = None) -> dict[str, object]:
    """Run the protocol; returns {"settings", "rows" (per photo, model, count), "summary"}."""
    from restore.models.registry import ModelError, get_spec

    for name in settings.models:
        try:
            get_spec(name)
        except ModelError as exc:
            raise EvaluateError(str(exc)) from exc
    weights_sha256 = None
    if settings.weights is not None:
        if DEFAULT_MODEL not in settings.models:
            raise EvaluateError(f"--weights: measures {DEFAULT_MODEL}'s weights, and {DEFAULT_MODEL} is not among the models")
        weights_sha256 = check_weights(settings.weights)
    photos = chosen_photos(settings.data, settings.limit, settings.sample)
    rows: list[dict[str, object]] = []
    if settings.workers <= 1:
        results = (evaluate_photo(photo, settings) for photo in photos)
        for done, photo_rows in enumerate(results, 1):
            rows.extend(photo_rows)
            if progress:
                progress(done, len(photos), str(photo_rows[0]["photo"]))
    else:
        with ProcessPoolExecutor(settings.workers, mp_context=get_context("spawn"), initializer=_worker_init) as pool:
            for done, photo_rows in enumerate(pool.map(evaluate_photo, photos, [settings] * len(photos)), 1):
                rows.extend(photo_rows)
                if progress:
                    progress(done, len(photos), str(photo_rows[0]["photo"]))
    document = asdict(settings) | {"data": str(settings.data), "weights": None if settings.weights is None else str(settings.weights)}
    if weights_sha256 is not None:
        document["weights_sha256"] = weights_sha256
    return {"settings": document, "photos": len(photos), "summary": summarise(rows), "rows": rows}


def summarise(rows: Sequence[dict[str, object]]) -> list[dict[str, object]]:
    """Means over photos per (model, hints); hint errors: mean of means and overall max."""
    groups: dict[tuple[str, int], list[dict[str, object]]] = {}
    for row in rows:
        groups.setdefault((str(row["model"]), int(row["hints"])), []).append(row)  # type: ignore[arg-type]
    truth = float(np.mean([r["truth_colourfulness"] for r in rows if r["model"] == GRAY]))
    summary = []
    for (model, hints), group in groups.items():
        entry: dict[str, object] = {
            "model": model,
            "hints": hints,
            "photos": len(group),
            "psnr": float(np.mean([r["psnr"] for r in group])),
            "colourfulness": float(np.mean([r["colourfulness"] for r in group])),
            "colourfulness_ratio": float(np.mean([r["colourfulness"] for r in group])) / truth if truth else float("nan"),
        }
        neutral = sum(int(r.get("neutral_pixels", 0)) for r in group)  # type: ignore[call-overload]
        if neutral:  # pooled over photos: the share of all truly neutral pixels turned colourful
            entry["neutral_turned_colourful"] = sum(int(r.get("neutral_colourful", 0)) for r in group) / neutral  # type: ignore[call-overload]
        if "hint_error_mean" in group[0]:
            entry |= {
                "hint_error_mean": float(np.mean([r["hint_error_mean"] for r in group])),
                "hint_error_max": float(np.max([r["hint_error_max"] for r in group])),
                "photos_hint_error_over_3": sum(float(r["hint_error_max"]) > 3 for r in group),  # type: ignore[arg-type]
                "raw_error_max": float(np.max([r["raw_error_max"] for r in group])),
                "unreachable": int(np.sum([r["unreachable"] for r in group])),
            }
        summary.append(entry)
    order = {GRAY: 0}
    return sorted(summary, key=lambda e: (order.get(str(e["model"]), 1), str(e["model"]), int(e["hints"])))  # type: ignore[arg-type]


def markdown_table(report: dict[str, object]) -> str:
    """The summary as a markdown table (one row per model and hint count)."""
    truth = [r for r in report["rows"] if r["model"] == GRAY]  # type: ignore[index, union-attr]
    truth_c = float(np.mean([r["truth_colourfulness"] for r in truth])) if truth else float("nan")
    settings = report.get("settings", {})
    weights = f"; lite weights {settings['weights']} (SHA-256 {str(settings['weights_sha256'])[:12]}…)" if settings.get("weights_sha256") else ""  # type: ignore[union-attr]
    lines = [
        f"{report['photos']} photos; ground truth colourfulness {truth_c:.1f}{weights}",
        "",
        "| model | hints | PSNR (dB) | colourfulness (vs truth) | neutral turned colourful | hint error vs reachable: mean / max | hints unreachable |",
        "|---|---|---|---|---|---|---|",
    ]
    for e in report["summary"]:  # type: ignore[union-attr]
        errors = f"{e['hint_error_mean']:.2f} / {e['hint_error_max']:.2f}" if "hint_error_mean" in e else ""
        unreachable = f"{e['unreachable']} of {e['hints'] * e['photos']}" if "unreachable" in e else ""
        cast = f"{100 * e['neutral_turned_colourful']:.2f}%" if "neutral_turned_colourful" in e else ""
        lines.append(
            f"| {e['model']} | {e['hints']} | {e['psnr']:.2f} | {e['colourfulness']:.1f} ({e['colourfulness_ratio']:.2f}) | {cast} | {errors} | {unreachable} |"
        )
    return "\n".join(lines) + "\n"


def write_report(report: dict[str, object], out: Path) -> str:
    """Writes the report into the folder `out` (made if missing): evaluation.json (all of
    it, every row) and evaluation.md (`markdown_table`). Returns the table."""
    out.mkdir(parents=True, exist_ok=True)
    table = markdown_table(report)
    (out / "evaluation.json").write_text(json.dumps(report, indent=1))
    (out / "evaluation.md").write_text(table)
    return table


def report_summary(report: dict[str, object]) -> dict[str, object]:
    """The report without its per-photo rows: its settings, photo count and summary."""
    return {key: report[key] for key in ("settings", "photos", "summary")}
