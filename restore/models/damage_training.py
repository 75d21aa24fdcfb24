"""Training of the damage segmenter (restore/models/damage.py) on synthetic damage drawn on
the fly over clean photos (restore/repair/synth.py).

Each sample: a photo's L* -> now and then upscaled 1.5-3x (so the network also sees smooth
content at pixel scale with thin damage on it, as a 6000 px scan shows it), or shrunk whole
to a short side of 1-2.5 crops (a low-resolution scan of a whole print) -> a random crop,
flip and quarter turn -> now and then harmless texture (grain, JPEG, halftone, paper:
`add_nuisance`) -> damage with probability DAMAGE_P (the rest stay clean, with texture:
negatives) -> now and then upscaled 1.5-3x only now, damage and all (wide soft-edged
damage; the mask is then what the upscaled damage changed) -> now and then a light JPEG or
grain over the result, as a scan of a damaged print has (the mask stays the damage's). Every batch is drawn from a generator seeded by
(seed, step), so a run is deterministic given its seed.

A fine-tune can also go back to what its initial weights get wrong (`hard_share`): before the
run they are run over the clean training photos, and a share of the crops is centred on the
places they flag (`hard_places`: picture structure taken for damage), damaged or not like
any other crop.

Loss: binary cross-entropy (damaged pixels weighted POS_WEIGHT) plus soft Dice over the
batch (what F1 rewards). AdamW, linear warm-up then cosine decay. The shipped-form weights
are written every `checkpoint_every` steps, so a run cut short is still usable.

The photos are split once, by name order: every `holdout_every`-th is held out (never
trained on) for choosing the threshold (`split_photos`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from restore.models.damage import (
    DamageConfig,
    DamageNet,
    Segmenter,
    extended,
    load_damage_net,
    load_damage_segmenter,
    save_damage_weights,
)
from restore.models.device import inference_device
from restore.repair.repair import damage_probability
from restore.repair.synth import MASK_CHANGE_L, add_nuisance, jpeg, synthesize_damage
from restore.scanio.files import file_sha256, photo_files
from restore.settings import REPAIR_TRAIN_DEFAULTS

DAMAGE_P = 0.75  # share of samples with damage; the rest are clean negatives with texture
UPSCALE_P = 0.4  # share of samples upscaled 1.5-3x before the damage is drawn
UPSCALE_AFTER_P = 0.2  # share upscaled 1.5-3x after it (wide, soft damage)
#: Share of samples whose whole photo is first shrunk to a short side of 1-2.5 crops: a
#: low-resolution scan of a whole print (faces and figures small, much picture structure per
#: pixel, as the historical portraits are), with damage drawn at that scale.
DOWNSCALE_P = 0.15
DOWNSCALE_SHORT_SIDE = (1.0, 2.5)
NUISANCE_P = 0.5  # share of damaged samples with texture under the damage (negatives: all)
POST_P = 0.3  # share of samples with light JPEG or grain over the damage
POS_WEIGHT = 2.0
DICE_WEIGHT = 0.5
WARMUP_STEPS = 100
# Hard negatives (`DamageTrainSettings.hard_share`): where the initial network's probability on
# a clean training photo exceeds HARD_PROBABILITY, the picture has something it takes for damage
# (a grout line, a bright roof edge, a window's cross-bar); up to HARD_PER_PHOTO such places per
# photo, the largest first, are crop centres.
HARD_PROBABILITY = 0.5
HARD_PER_PHOTO = 8


@dataclass(frozen=True)
class DamageTrainSettings:
    data: tuple[Path, ...]  # folders of clean photos (colour or gray)
    out: Path  # the weights file written (shipped form)
    steps: int = 3000
    crop_px: int = 160
    batch_size: int = 16
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0
    threads: int = 2
    holdout_every: int = 40  # every n-th photo (name order) is held out for the threshold
    checkpoint_every: int = 200
    max_minutes: float | None = None  # stop (with weights saved) after this long
    # The architecture; None: DamageConfig() from scratch, the initial weights' when fine-tuning.
    # Given with init_weights, it may add a context branch to theirs (`extended`).
    config: DamageConfig | None = None
    # That architecture with a stride-16 context branch of this many channels (0: none; None:
    # as it is), its dilations REPAIR_TRAIN_DEFAULTS.context_dilations.
    context_channels: int | None = None
    init_weights: Path | None = None  # start from these weights (fine-tuning)
    # Share of crops centred on a hard negative of the initial weights (`hard_places`, found
    # on at most hard_photos training photos before the run; needs init_weights): picture
    # structure the network took for damage, seen again with and without damage drawn on it.
    hard_share: float = REPAIR_TRAIN_DEFAULTS.hard_share
    hard_photos: int | None = None  # None: all the training photos


def split_photos(folders: Sequence[Path], holdout_every: int) -> tuple[list[Path], list[Path]]:
    """(training photos, held-out photos) of the folders: every holdout_every-th photo of each
    folder, in name order, is held out."""
    train, held_out = [], []
    for folder in folders:
        for i, path in enumerate(photo_files(Path(folder))):
            (held_out if holdout_every > 0 and i % holdout_every == holdout_every // 2 else train).append(path)
    return train, held_out


def _linear_lut() -> np.ndarray:
    """sRGB level (0..255) -> linear light: the sRGB transfer function, as restore/colour.py."""
    v = np.arange(256, dtype=np.float64) / 255
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4).astype(np.float32)


_LINEAR = _linear_lut()
# Luminance Y of linear sRGB (D65): the row of the sRGB -> XYZ matrix, in OpenCV's B, G, R order.
_Y_OF_BGR = np.array([0.0722, 0.7152, 0.2126], np.float32)


def read_lightness(path: Path) -> np.ndarray | None:
    """A photo's CIE L* (H x W float32), or None if it cannot be read. L* depends on the
    luminance alone, so it is computed from Y directly (restore/colour.py's rgb_to_lightness
    computes all of Lab: a third of a training batch's time went there)."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        return None
    y = _LINEAR[bgr] @ _Y_OF_BGR
    f = np.where(y > (6 / 29) ** 3, np.cbrt(y), y / (3 * (6 / 29) ** 2) + 4 / 29)
    return (116 * f - 16).astype(np.float32)


def damage_sample(l_hw: np.ndarray, rng: np.random.Generator, crop_px: int, centre: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One training sample from a clean photo's L*: (crop_px x crop_px float32 L*, bool mask);
    the crop holds `centre` (row, column of the photo as given) where one is given."""
    mode = rng.random()
    # Damage drawn before upscaling: wide, soft-edged damage, as a scan at a higher
    # resolution than the print's sharpness shows it (and as an upscaled old photo does).
    upscale_after = UPSCALE_P <= mode < UPSCALE_P + UPSCALE_AFTER_P
    factor = rng.uniform(1.5, 3.0) if mode < UPSCALE_P + UPSCALE_AFTER_P else 1.0
    if UPSCALE_P + UPSCALE_AFTER_P <= mode < UPSCALE_P + UPSCALE_AFTER_P + DOWNSCALE_P:
        factor = min(1.0, crop_px * rng.uniform(*DOWNSCALE_SHORT_SIDE) / min(l_hw.shape))
    interpolation = cv2.INTER_CUBIC if rng.random() < 0.5 else cv2.INTER_LINEAR
    if factor != 1 and not upscale_after:
        l_hw = cv2.resize(l_hw, None, fx=factor, fy=factor, interpolation=interpolation if factor > 1 else cv2.INTER_AREA)
    side = int(np.ceil(crop_px / factor)) if upscale_after else crop_px
    height, width = l_hw.shape
    if height < side or width < side:
        l_hw = cv2.copyMakeBorder(l_hw, 0, max(side - height, 0), 0, max(side - width, 0), cv2.BORDER_REFLECT)
        height, width = l_hw.shape
    scale = 1.0 if upscale_after else factor  # the centre in the pixels cropped from
    top, left = crop_origin(rng, (height, width), side, None if centre is None else (int(centre[0] * scale), int(centre[1] * scale)))
    l_hw = np.rot90(l_hw[top : top + side, left : left + side], int(rng.integers(0, 4)))
    if rng.random() < 0.5:
        l_hw = l_hw[:, ::-1]
    l_hw = np.ascontiguousarray(l_hw, np.float32)
    if rng.random() < 0.2:  # faded prints: low contrast, lifted blacks
        l_hw = l_hw * rng.uniform(0.5, 0.9) + rng.uniform(5, 35)
    damaged = rng.random() < DAMAGE_P
    if not damaged or rng.random() < NUISANCE_P:
        l_hw = add_nuisance(l_hw, rng)
    if not damaged:
        out, mask_hw = l_hw, np.zeros(l_hw.shape, bool)
    else:
        out, mask_hw = synthesize_damage(l_hw, rng, amount=float(rng.uniform(0.3, 2.5)))
    if upscale_after:
        clean = cv2.resize(l_hw, (crop_px, crop_px), interpolation=interpolation)
        out = cv2.resize(out, (crop_px, crop_px), interpolation=interpolation)
        mask_hw = np.abs(out - clean) > MASK_CHANGE_L
    if damaged and rng.random() < POST_P:
        if rng.random() < 0.5:
            out = jpeg(out, int(rng.integers(50, 96)))
        else:
            out = out + rng.uniform(0.5, 2.5) * rng.standard_normal(out.shape).astype(np.float32)
    return np.clip(out, 0, 100).astype(np.float32), mask_hw


def crop_origin(rng: np.random.Generator, shape: tuple[int, int], side: int, centre: tuple[int, int] | None) -> tuple[int, int]:
    """(top, left) of a side x side crop of an image of `shape` (each at least `side`): anywhere,
    or holding `centre` (row, column) in its middle half where the image's edges allow."""
    height, width = shape
    if centre is None:
        return int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1))
    row, column = centre
    top = row - int(rng.integers(side // 4, side - side // 4))
    left = column - int(rng.integers(side // 4, side - side // 4))
    return int(np.clip(top, 0, height - side)), int(np.clip(left, 0, width - side))


def damage_batch(
    photos: Sequence[Path], seed: int, step: int, batch_size: int, crop_px: int, hard: Sequence[tuple[int, int, int]] = (), hard_share: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Batch `step` of a run with `seed`: (B x S x S float32 L*, B x S x S bool masks); a
    `hard_share` of its crops centred on places of `hard` (photo index, row, column)."""
    rng = np.random.default_rng([seed, step])
    images, masks = [], []
    while len(images) < batch_size:
        centre = None
        if hard and rng.random() < hard_share:
            index, row, column = hard[int(rng.integers(0, len(hard)))]
            centre = (row, column)
        else:
            index = int(rng.integers(0, len(photos)))
        l_hw = read_lightness(photos[index])
        if l_hw is None:
            continue
        image, mask = damage_sample(l_hw, rng, crop_px, centre)
        images.append(image)
        masks.append(mask)
    return np.stack(images), np.stack(masks)


def hard_places(segmenter: Segmenter, photos: Sequence[Path], limit: int | None, seed: int) -> list[tuple[int, int, int]]:
    """Places (photo index, row, column) where `segmenter` flags clean photos: the centres of
    its detections above HARD_PROBABILITY, at most HARD_PER_PHOTO per photo (the largest
    first), over `limit` of `photos` drawn with `seed` (None: all). Photos are clean, so
    every such place is picture structure taken for damage."""
    if limit is None or limit >= len(photos):
        chosen = list(range(len(photos)))
    else:
        chosen = sorted(np.random.default_rng([seed, 1]).choice(len(photos), size=limit, replace=False).tolist())
    places: list[tuple[int, int, int]] = []
    for index in chosen:
        l_hw = read_lightness(photos[index])
        if l_hw is None:
            continue
        flagged = damage_probability(l_hw, segmenter) > HARD_PROBABILITY  # tiled: bounded memory on any photo
        count, _, stats, centroids = cv2.connectedComponentsWithStats(flagged.view(np.uint8), connectivity=8)
        largest = sorted(range(1, count), key=lambda k: -stats[k, cv2.CC_STAT_AREA])[:HARD_PER_PHOTO]
        places += [(index, int(centroids[k][1]), int(centroids[k][0])) for k in largest]
    return places


def loss_terms(logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(weighted BCE, soft Dice loss) of logits against the 0/1 target."""
    bce = F.binary_cross_entropy_with_logits(logits, target, pos_weight=torch.tensor(POS_WEIGHT, device=logits.device))
    probability = torch.sigmoid(logits)
    dice = 1 - (2 * (probability * target).sum() + 1) / (probability.sum() + target.sum() + 1)
    return bce, dice


def tolerant_counts(predicted_hw: np.ndarray, true_hw: np.ndarray, tolerance_px: int = 1) -> tuple[int, int, int, int]:
    """(predicted pixels within tolerance of a true one, predicted pixels, true pixels within
    tolerance of a predicted one, true pixels): precision and recall with a tolerance."""
    kernel = np.ones((2 * tolerance_px + 1, 2 * tolerance_px + 1), np.uint8)
    near_true = cv2.dilate(true_hw.view(np.uint8), kernel).view(bool)
    near_predicted = cv2.dilate(predicted_hw.view(np.uint8), kernel).view(bool)
    return int((predicted_hw & near_true).sum()), int(predicted_hw.sum()), int((true_hw & near_predicted).sum()), int(true_hw.sum())


def f1_of(counts: Sequence[int]) -> dict[str, float]:
    """Precision, recall and F1 from summed `tolerant_counts`."""
    right, predicted, found, true = counts
    precision = right / predicted if predicted else 1.0
    recall = found / true if true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def _progress(step: int, minutes: float, settings: DamageTrainSettings) -> float:
    """How far through the run (0..1): by steps, or by time where max_minutes ends it sooner
    (on a shared machine the steps a time budget allows are not known in advance, and a cut
    cosine schedule would end at a high learning rate; a run ended by time is then no longer
    a function of its seed alone)."""
    progress = step / settings.steps
    if settings.max_minutes is not None:
        progress = max(progress, minutes / settings.max_minutes)
    return min(progress, 1.0)


def _learning_rate(step: int, progress: float, settings: DamageTrainSettings) -> float:
    if step < WARMUP_STEPS:
        return settings.learning_rate * (step + 1) / WARMUP_STEPS
    warmup = WARMUP_STEPS / settings.steps
    after = min(max((progress - warmup) / max(1 - warmup, 1e-6), 0.0), 1.0)
    return settings.learning_rate * 0.5 * (1 + math.cos(math.pi * after))


def initial_net(settings: DamageTrainSettings) -> DamageNet:
    """The network a run starts from: new (with batch norms, which trained several times
    faster), or the initial weights, grown by a context branch where the config adds one."""
    if settings.init_weights is None:
        return DamageNet(_with_context(settings.config or DamageConfig(), settings.context_channels), batch_norm=True)
    net = load_damage_net(settings.init_weights)
    wanted = _with_context(settings.config or net.config, settings.context_channels)
    return net if wanted == net.config else extended(net, wanted)


def _with_context(config: DamageConfig, channels: int | None) -> DamageConfig:
    if channels is None:
        return config
    dilations = REPAIR_TRAIN_DEFAULTS.context_dilations if channels else ()
    return replace(config, context_channels=channels, context_dilations=dilations)


def train_damage_segmenter(settings: DamageTrainSettings, log: Callable[[str], None] | None = None) -> dict[str, object]:
    """Train a DamageNet as `settings` say, writing its weights to `settings.out` (every
    checkpoint_every steps and at the end). Returns a summary: steps done, seconds, the
    mean loss over the last steps, the photos used and held out, the weights' SHA-256."""
    if settings.hard_share > 0 and settings.init_weights is None:  # before anything is read or written
        raise ValueError("hard negatives are the initial weights' mistakes: give initial weights")
    torch.set_num_threads(settings.threads)
    torch.manual_seed(settings.seed)
    train, held_out = split_photos(settings.data, settings.holdout_every)
    if not train:
        raise ValueError(f"no photos to train on in {', '.join(map(str, settings.data))}")
    device = inference_device()  # PHOTOCHROM_DEVICE (`--device`): a GPU where there is one
    net = initial_net(settings).to(device)
    net.train()
    optimizer = torch.optim.AdamW(net.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    settings.out.parent.mkdir(parents=True, exist_ok=True)
    recent: list[float] = []
    step = 0

    hard: list[tuple[int, int, int]] = []
    if settings.hard_share > 0 and settings.init_weights is not None:
        hard = hard_places(load_damage_segmenter(str(device), settings.init_weights), train, settings.hard_photos, settings.seed)
        if log:
            log(f"hard negatives: {len(hard)} places on {len({index for index, _, _ in hard})} of {len(train) if settings.hard_photos is None else min(settings.hard_photos, len(train))} photos")
    # The clock (max_minutes, the schedule) starts with the training itself.
    start = time.perf_counter()

    def batch(step: int) -> tuple[np.ndarray, np.ndarray]:
        return damage_batch(train, settings.seed, step, settings.batch_size, settings.crop_px, hard, settings.hard_share)

    # The next batch is drawn on a thread while this one trains (OpenCV and NumPy release
    # the GIL); each batch depends only on (seed, step), so this changes no result.
    with ThreadPoolExecutor(1) as pool:
        upcoming = pool.submit(batch, 0)
        for step in range(settings.steps):
            images, masks = upcoming.result()
            if step + 1 < settings.steps:
                upcoming = pool.submit(batch, step + 1)
            minutes = (time.perf_counter() - start) / 60
            progress = _progress(step, minutes, settings)
            rate = _learning_rate(step, progress, settings)
            for group in optimizer.param_groups:
                group["lr"] = rate
            logits = net(torch.from_numpy(images)[:, None].to(device))
            bce, dice = loss_terms(logits, torch.from_numpy(masks)[:, None].to(device, torch.float32))
            loss = bce + DICE_WEIGHT * dice
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            recent = (recent + [loss.item()])[-50:]
            done = step + 1 == settings.steps or _progress(step + 1, (time.perf_counter() - start) / 60, settings) >= 1.0
            if (step + 1) % settings.checkpoint_every == 0 or done:
                save_damage_weights(net, settings.out)
                if log:
                    log(f"step {step + 1}/{settings.steps}: loss {np.mean(recent):.4f} (bce {bce.item():.4f}, dice {dice.item():.3f}), lr {rate:.2e}, {minutes:.1f} min")
            if done:
                break
    return {
        "steps": step + 1,
        "seconds": round(time.perf_counter() - start, 1),
        "loss": float(np.mean(recent)) if recent else None,
        "train_photos": len(train),
        "held_out_photos": len(held_out),
        "hard_places": len(hard),
        "device": str(device),
        "out": str(settings.out),
        "weights_sha256": file_sha256(settings.out),
    }
