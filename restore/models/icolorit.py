"""`icolorit-base`, `icolorit-small`, `icolorit-tiny`: iColoriT (Yun, Lee, Park and Choo,
WACV 2023), our implementation of the official architecture (github.com/pmh9960/iColoriT,
`modeling.py`, factories `icolorit_{base,small,tiny}_4ch_patch16_224`), run with the
authors' published checkpoints, which users download and import themselves
(`photochrom models import icolorit-tiny FILE`).

The network, as the official code builds it with the options its train.py, infer.py and
demo use by default (`use_rpb`, `avg_hint`, `head_mode='cnn'`, no `mask_cent`):
- Input, 4 x 224 x 224: (L* - 50) / 100; a*/110 and b*/110 of the hints, each hinted 2 x 2
  cell filled with the cell's mean colour, 0 elsewhere; 1 in hinted cells, 0 elsewhere.
- ViT: 16 x 16 patches (a 4-channel convolution), fixed sinusoidal position embedding,
  12 pre-norm blocks (LayerNorm eps 1e-6, GELU MLP x4) whose attention has q and v biases
  (no k bias) and a learnt relative position bias per block (27 x 27 offsets x heads).
- Local stabilizing layer: a 3 x 3 convolution (reflect padding) over the 14 x 14 token
  grid to 16 x 16 x 2 values per token, then tanh; pixel shuffle puts them back as the
  patch's a*b* / 110.

Sizes: ViT-B 768 wide, 12 heads; ViT-S 384, 6; ViT-Ti 192, 3; all 12 blocks deep.

Importing reads the training checkpoint (`utils.save_model`: 'model', 'optimizer',
'epoch', 'scaler', 'args' = argparse.Namespace) with `torch.load(weights_only=True)`,
allowing argparse.Namespace and nothing else beyond tensors and plain containers; takes
'model' (or a plain state dict), strips a DistributedDataParallel 'module.' prefix,
refuses checkpoints whose recorded training options compute something else, and checks
the relative position index buffers against their definition.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F
from timm.layers import Mlp
from torch import nn

from restore.models.base import Imported, ModelError, ModelSpec, check_batch
from restore.models.device import batch_tensors, place, to_numpy
from restore.models.imported import load_imported
from restore.models.registry import register

INPUT_PX = 224
PATCH = 16
HINT_CELL = 2  # hints are given per 2 x 2 cell (the official hint_size)
L_CENT, L_NORM, AB_NORM = 50.0, 100.0, 110.0  # utils.rgb2lab's normalisation
LN_EPS = 1e-6
MLP_RATIO = 4


@dataclass(frozen=True)
class IColoriTSize:
    """One published size: the official factory's embed_dim, depth and num_heads."""

    key: str  # base / small / tiny
    backbone: str
    embed_dim: int
    depth: int
    heads: int
    batch_size: int  # patches per call on a 2-core CPU
    download: str

    @property
    def name(self) -> str:
        return f"icolorit-{self.key}"

    @property
    def official_model(self) -> str:
        return f"icolorit_{self.key}_4ch_patch16_224"


_DRIVE = "https://drive.google.com/file/d/{}/view?usp=sharing"
SIZES: dict[str, IColoriTSize] = {
    size.name: size
    for size in (
        IColoriTSize("base", "ViT-B", 768, 12, 12, 2, _DRIVE.format("16i9ulB4VRbFLbLlAa7UjIQR6J334BeKW") + " (github.com/pmh9960/iColoriT README, 'iColoriT', ViT-B)"),
        IColoriTSize("small", "ViT-S", 384, 12, 6, 4, _DRIVE.format("1yKwFTQGDBvr9B7NIyXhxQH0K-BNlCs4L") + " (github.com/pmh9960/iColoriT README, 'iColoriT-S', ViT-S)"),
        IColoriTSize("tiny", "ViT-Ti", 192, 12, 3, 8, _DRIVE.format("1GMmjfxAoM95cABwlZD8555WxI7nmIZrR") + " (github.com/pmh9960/iColoriT README, 'iColoriT-T', ViT-Ti)"),
    )
}

LICENCE = (
    "code: our implementation of iColoriT (official code MIT, github.com/pmh9960/iColoriT); "
    "weights: the authors' checkpoints, trained on ImageNet and published without a licence of their own, "
    "so ImageNet's non-commercial research terms apply"
)


def relative_position_index(window: int) -> torch.Tensor:
    """N x N (N = window^2, tokens row-major) indices into the (2 window - 1)^2 bias table:
    for query token i at (yi, xi) and key token j at (yj, xj), the offset
    (yi - yj, xi - xj) shifted to start at 0, row-major."""
    y, x = torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")
    y, x = y.flatten(), x.flatten()
    dy = y[:, None] - y[None, :] + window - 1
    dx = x[:, None] - x[None, :] + window - 1
    return dy * (2 * window - 1) + dx


def sinusoid_table(tokens: int, dim: int) -> torch.Tensor:
    """1 x tokens x dim fixed position embedding (Vaswani et al.): angle pos / 10000^(2 (j // 2) / dim),
    sine in even columns, cosine in odd ones."""
    position = torch.arange(tokens, dtype=torch.float64)[:, None]
    exponent = 2 * (torch.arange(dim, dtype=torch.float64) // 2) / dim
    angle = position / torch.pow(10000.0, exponent)[None, :]
    table = torch.empty_like(angle)
    table[:, 0::2] = torch.sin(angle[:, 0::2])
    table[:, 1::2] = torch.cos(angle[:, 1::2])
    return table.float()[None]


class RelPosAttention(nn.Module):
    """Multi-head self-attention with q and v biases and a learnt relative position bias."""

    def __init__(self, dim: int, heads: int, window: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(dim))
        self.v_bias = nn.Parameter(torch.zeros(dim))
        self.rpb_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        nn.init.trunc_normal_(self.rpb_table, std=0.02, a=-0.02, b=0.02)
        self.register_buffer("relative_position_index", relative_position_index(window))  # persistent, as the official one
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        bias = torch.cat([self.q_bias, torch.zeros_like(self.v_bias), self.v_bias])
        qkv = F.linear(x, self.qkv.weight, bias).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        position_bias = self.rpb_table[self.relative_position_index.reshape(-1)].reshape(n, n, self.heads).permute(2, 0, 1)
        # softmax(q k^T / sqrt(head_dim) + bias) v, as the official code computes it
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], attn_mask=position_bias[None].to(x.dtype))
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, window: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = RelPosAttention(dim, heads, window)
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.mlp = Mlp(dim, dim * MLP_RATIO, act_layer=nn.GELU)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, channels: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(channels, dim, kernel_size=PATCH, stride=PATCH)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class LocalStabilizingHead(nn.Module):
    """The official CnnHead: a 3 x 3 convolution over the token grid, reflect-padded."""

    def __init__(self, dim: int, out: int, window: int) -> None:
        super().__init__()
        self.window = window
        self.head = nn.Conv2d(dim, out, kernel_size=3, padding=1, padding_mode="reflect")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        grid = x.transpose(1, 2).reshape(b, c, self.window, self.window)
        return self.head(grid).flatten(2).transpose(1, 2)


class IColoriT(nn.Module):
    """4 x 224 x 224 input (see `encode_input`) -> B x 224 x 224 x 2 a*b* / 110 in -1..1."""

    def __init__(self, size: IColoriTSize) -> None:
        super().__init__()
        self.size = size
        window = INPUT_PX // PATCH
        self.window = window
        self.patch_embed = PatchEmbed(4, size.embed_dim)
        self.register_buffer("pos_embed", sinusoid_table(window * window, size.embed_dim), persistent=False)
        self.blocks = nn.ModuleList([Block(size.embed_dim, size.heads, window) for _ in range(size.depth)])
        self.norm = nn.LayerNorm(size.embed_dim, eps=LN_EPS)
        self.head = LocalStabilizingHead(size.embed_dim, 2 * PATCH * PATCH, window)

    def forward(self, x_b4hw: torch.Tensor) -> torch.Tensor:
        if tuple(x_b4hw.shape[1:]) != (4, INPUT_PX, INPUT_PX):
            raise ValueError(f"iColoriT takes B x 4 x {INPUT_PX} x {INPUT_PX}, got {tuple(x_b4hw.shape)}")
        x = self.patch_embed(x_b4hw) + self.pos_embed.to(x_b4hw.dtype)
        for block in self.blocks:
            x = block(x)
        x = torch.tanh(self.head(self.norm(x)))  # B x tokens x (16 * 16 * 2), a*b* innermost
        return pixel_shuffle(x, self.window)


def pixel_shuffle(tokens_bnc: torch.Tensor, window: int) -> torch.Tensor:
    """B x (h w) x (p1 p2 2) -> B x (h p1) x (w p2) x 2: each token's values become its patch."""
    b = tokens_bnc.shape[0]
    x = tokens_bnc.reshape(b, window, window, PATCH, PATCH, 2).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, window * PATCH, window * PATCH, 2)


def encode_input(l_bhw: torch.Tensor, hint_ab_bhw2: torch.Tensor, hint_mask_bhw: torch.Tensor) -> torch.Tensor:
    """The official 4-channel input from L* and pixel hints.

    The official model takes hints per 2 x 2 cell: the cell's mean a*b* (its `avg_hint`),
    0 where there is none, and a channel that is 1 in hinted cells. A cell here is hinted
    when any of its pixels is (mask > 0.5), with the mean a*b* of its hinted pixels.
    """
    b, h, w = l_bhw.shape
    hinted = (hint_mask_bhw > 0.5).to(l_bhw.dtype)[:, None]  # B x 1 x H x W
    weighted = hint_ab_bhw2.permute(0, 3, 1, 2) * hinted
    cell_count = F.avg_pool2d(hinted, HINT_CELL)
    cell_ab = F.avg_pool2d(weighted, HINT_CELL) / cell_count.clamp(min=1e-6)
    cell_hinted = (cell_count > 0).to(l_bhw.dtype)
    ab = F.interpolate(cell_ab * cell_hinted, scale_factor=HINT_CELL, mode="nearest") / AB_NORM
    indicator = F.interpolate(cell_hinted, scale_factor=HINT_CELL, mode="nearest")
    lightness = (l_bhw[:, None] - L_CENT) / L_NORM
    return torch.cat([lightness, ab, indicator], dim=1)


# --- Importing the published checkpoints -------------------------------------------------------

#: The training options (train.py's arguments, in the checkpoint's 'args') this
#: implementation computes; a checkpoint trained otherwise would load but compute wrongly.
REQUIRED_ARGS: dict[str, object] = {
    "use_rpb": True,
    "avg_hint": True,
    "head_mode": "cnn",
    "mask_cent": False,
    "hint_size": HINT_CELL,
    "input_size": INPUT_PX,
}


def _check_args(args: object, size: IColoriTSize) -> None:
    if args is None:
        return
    values = vars(args) if isinstance(args, argparse.Namespace) else args
    if not isinstance(values, Mapping):
        raise ModelError(f"not an {size.name} checkpoint: its 'args' is a {type(args).__name__}")
    model = values.get("model")
    if model is not None and not isinstance(model, str):
        raise ModelError(f"the checkpoint's recorded option model is {_kind(model)}, not a model name")
    if model is not None and model != size.official_model:
        raise ModelError(f"the checkpoint was trained with model={model!r}; {size.name} is {size.official_model!r}")
    for key, needed in REQUIRED_ARGS.items():
        if key not in values:
            continue
        value = values[key]
        # Exact types first: argparse records plain bools, ints and strings, and comparing
        # anything else (a tensor, an array) may not give a bool at all.
        if type(value) is not type(needed):
            raise ModelError(f"the checkpoint's recorded option {key} is {_kind(value)}, not {type(needed).__name__} {needed!r}")
        if value != needed:
            raise ModelError(f"the checkpoint was trained with {key}={value!r}; {size.name} implements {key}={needed!r}")


def _kind(value: object) -> str:
    """What a recorded option holds, for a message: its type, and its value when short."""
    text = repr(value) if isinstance(value, (bool, int, float, str, type(None))) else ""
    return f"a {type(value).__name__}" + (f" ({text[:40]})" if text else "")


def check_position_indices(state: Mapping[str, torch.Tensor], what: str) -> None:
    """Raise ModelError unless every relative_position_index is the one its definition gives."""
    expected = relative_position_index(INPUT_PX // PATCH)
    for key, tensor in state.items():
        if key.endswith("relative_position_index"):
            if not isinstance(tensor, torch.Tensor) or tensor.shape != expected.shape or not torch.equal(tensor.to(expected.dtype), expected):
                raise ModelError(f"{what}: {key} is not the relative position index of a {INPUT_PX // PATCH} x {INPUT_PX // PATCH} token grid")


def extract_state(checkpoint: object, size: IColoriTSize) -> dict[str, torch.Tensor]:
    """The model's state dict from a training checkpoint ('model' entry) or a plain state dict."""
    if not isinstance(checkpoint, Mapping):
        raise ModelError(f"not an {size.name} checkpoint: the file holds a {type(checkpoint).__name__}")
    if "model" in checkpoint:
        _check_args(checkpoint.get("args"), size)
        state = checkpoint["model"]
        if not isinstance(state, Mapping):
            raise ModelError(f"not an {size.name} checkpoint: its 'model' entry is a {type(state).__name__}")
    elif checkpoint and all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        state = checkpoint
    else:
        raise ModelError(f"not an {size.name} checkpoint: no 'model' entry and not a state dict (keys {', '.join(map(str, list(checkpoint)[:5]))})")
    out = {(str(k)[len("module."):] if str(k).startswith("module.") else str(k)): v for k, v in state.items()}
    check_position_indices(out, "the checkpoint")
    return out


# --- The models ------------------------------------------------------------------------------


def make_spec(size: IColoriTSize) -> ModelSpec:
    return ModelSpec(
        name=size.name,
        description=f"iColoriT (WACV 2023), {size.backbone}: ViT over L* and 2x2-cell hints, published ImageNet weights; takes hints",
        input_px=INPUT_PX,
        receptive_field_px=INPUT_PX,  # global self-attention
        takes_hints=True,
        licence=LICENCE,
        weights_file=f"{size.name}.pt",
        batch_size=size.batch_size,
        imported=Imported(
            download=size.download,
            build=partial(IColoriT, size),
            extract=partial(extract_state, size=size),
            safe_globals=(argparse.Namespace,),
        ),
    )


SPECS: dict[str, ModelSpec] = {name: make_spec(size) for name, size in SIZES.items()}


class IColoriTColorizer:
    """An imported iColoriT checkpoint behind the Colorizer interface."""

    def __init__(self, spec: ModelSpec, size: IColoriTSize) -> None:
        net = IColoriT(size)
        self.spec = load_imported(spec, net)
        check_position_indices(net.state_dict(), f"installed weights of {spec.name}")
        self.net, self.device = place(net)

    def colorize(self, l_bhw: np.ndarray, hint_ab_bhw2: np.ndarray, hint_mask_bhw: np.ndarray) -> np.ndarray:
        check_batch(self.spec, l_bhw, hint_ab_bhw2, hint_mask_bhw)
        with torch.inference_mode():
            ab = self.net(encode_input(*batch_tensors(self.device, l_bhw, hint_ab_bhw2, hint_mask_bhw))) * AB_NORM
        return to_numpy(ab)


def _declare(size: IColoriTSize) -> Callable[[], IColoriTColorizer]:
    spec = SPECS[size.name]

    def create() -> IColoriTColorizer:
        return IColoriTColorizer(spec, size)

    create.__name__ = create.__qualname__ = f"create_{size.key}"
    create.__doc__ = f"The {size.name} model ({size.backbone}) with its imported weights."
    return register(spec)(create)


FACTORIES: dict[str, Callable[[], IColoriTColorizer]] = {name: _declare(size) for name, size in SIZES.items()}
