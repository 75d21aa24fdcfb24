"""`ddcolor`, `ddcolor-tiny`: DDColor (Kang et al., ICCV 2023, "DDColor: Towards
Photo-Realistic Image Colorization via Dual Decoders"), our plain-torch implementation of the
official architecture (github.com/piddnad/DDColor, `ddcolor/model.py` and
`basicsr/archs/ddcolor_arch_utils`), run with the authors' released checkpoints, which users
download and import themselves (`photochrom models import ddcolor FILE`).

The network as the official `build_ddcolor_model` builds it for the released checkpoints
(MultiScaleColorDecoder, 100 colour queries, 3 scales, 9 decoder layers, nf 512,
`last_norm='Spectral'`, 2 output channels, no output denormalisation):
- Input: the lightness as a gray sRGB image in [0, 1], B x 3 x 512 x 512 (R = G = B);
  ImageNet mean/std applied inside the network (buffers `mean`, `std`).
- Encoder: ConvNeXt (L: depths 3-3-27-3, dims 192-384-768-1536; T: 3-3-9-3, 96-192-384-768);
  the features after each stage go through an extra channels-first LayerNorm (`norm0..3`).
  The final LayerNorm (`norm`) is in the checkpoint but plays no part.
- Pixel decoder: three U-Net blocks (spectral-normalised 1x1 conv + BN, pixel shuffle x2,
  blur; skip features through BN; ReLU; spectral-normalised 3x3 conv, ReLU, BN) to 1/16,
  1/8, 1/4 of the input, then a spectral-normalised pixel shuffle x4 (ReLU, blur) to full size.
- Colour decoder: 100 learnt queries, 9 post-norm transformer layers (cross-attention to
  the U-Net features at 1/16, 1/8, 1/4 in turn, with sine position encodings and level
  embeddings; self-attention; FFN 2048), LayerNorm, a 3-layer MLP; each query's embedding
  dotted with the full-size features gives one map per query.
- Refinement: a spectral-normalised 1x1 conv over the 100 maps and the normalised input
  to a*b* in CIE units; we clamp them to what Lab can hold (-128..127): the official output
  can leave that range, a known source of artifacts.

Spectral norm is computed as torch's `spectral_norm` does in evaluation: the stored
`weight_orig` divided by sigma = weight_u . (W weight_v), with the stored vectors (no power
iteration), so the layers store `weight_orig`, `weight_u` and `weight_v` as the official ones.

Importing takes `{'params': state_dict}` (the released files) or a plain state dict and
loads it strictly: every official tensor must be there, with its shape, and no other.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from restore.models.base import Imported, ModelError, ModelSpec, check_batch
from restore.models.device import ab_to_numpy, batch_tensors, place
from restore.models.imported import load_imported
from restore.models.registry import register
from restore.models.torch_colour import lightness_to_gray

INPUT_PX = 512
WORKING_PX = 2 * INPUT_PX
STRIDE = 32  # the encoder's total downsampling: input sides must be multiples of it
AB_MIN, AB_MAX = -128.0, 127.0  # what Lab can hold
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
NF = 512
NUM_QUERIES = 100  # the released checkpoints' (the official class default is 256)
NUM_SCALES = 3
DEC_LAYERS = 9
HIDDEN = 256
HEADS = 8
FFN_DIM = 2048
LN_EPS = 1e-6


@dataclass(frozen=True)
class DDColorSize:
    """One released encoder size."""

    name: str
    backbone: str
    depths: tuple[int, int, int, int]
    dims: tuple[int, int, int, int]
    checkpoints: str
    batch_size: int


_HF = "https://huggingface.co/piddnad/{}"
SIZES: dict[str, DDColorSize] = {
    size.name: size
    for size in (
        DDColorSize(
            "ddcolor",
            "ConvNeXt-L",
            (3, 3, 27, 3),
            (192, 384, 768, 1536),
            f"ddcolor_modelscope.pth (the default) from {_HF.format('ddcolor_modelscope')}, "
            f"ddcolor_paper.pth from {_HF.format('ddcolor_paper')} or ddcolor_artistic.pth from {_HF.format('ddcolor_artistic')}; "
            "about 912 MB each (github.com/piddnad/DDColor MODEL_ZOO.md)",
            1,
        ),
        DDColorSize(
            "ddcolor-tiny",
            "ConvNeXt-T",
            (3, 3, 9, 3),
            (96, 192, 384, 768),
            f"ddcolor_paper_tiny.pth from {_HF.format('ddcolor_paper_tiny')}, about 220 MB (github.com/piddnad/DDColor MODEL_ZOO.md)",
            2,
        ),
    )
}

LICENCE = (
    "code: our implementation of DDColor (official code Apache-2.0, github.com/piddnad/DDColor); "
    "weights: the authors' released checkpoints (Apache-2.0), trained on ImageNet (the artistic one also on private data)"
)


# --- Spectral norm, as torch.nn.utils.spectral_norm computes it in evaluation -----------------


class SpectralConv2d(nn.Module):
    """A Conv2d whose weight is `weight_orig` / sigma, sigma = weight_u . (W weight_v),
    W = weight_orig as out x (in k k), with the stored vectors."""

    def __init__(self, cin: int, cout: int, kernel: int, bias: bool) -> None:
        super().__init__()
        self.padding = (kernel - 1) // 2
        self.weight_orig = nn.Parameter(torch.empty(cout, cin, kernel, kernel))
        nn.init.kaiming_normal_(self.weight_orig)
        self.bias = nn.Parameter(torch.zeros(cout)) if bias else None
        self.register_buffer("weight_u", F.normalize(torch.randn(cout), dim=0))
        self.register_buffer(
            "weight_v", F.normalize(torch.randn(cin * kernel * kernel), dim=0)
        )

    def weight(self) -> torch.Tensor:
        w = self.weight_orig
        sigma = torch.dot(
            self.weight_u, torch.mv(w.reshape(w.shape[0], -1), self.weight_v)
        )
        return w / sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight(), self.bias, padding=self.padding)


def conv_layer(
    cin: int, cout: int, kernel: int, *, relu: bool, bn: bool
) -> nn.Sequential:
    """The official `custom_conv_layer` with spectral norm: conv (bias only without BN),
    then ReLU, then BatchNorm, indexed as there (conv.0, conv.1 ReLU, conv.2 BN)."""
    layers: list[nn.Module] = [SpectralConv2d(cin, cout, kernel, bias=not bn)]
    if relu:
        layers.append(nn.ReLU())
    if bn:
        layers.append(nn.BatchNorm2d(cout))
    return nn.Sequential(*layers)


# --- Encoder: ConvNeXt in the official layout --------------------------------------------------


class LayerNorm2d(nn.Module):
    """The official channels-first LayerNorm (mean and biased variance over channels)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        x = (x - u) / torch.sqrt(s + LN_EPS)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class ConvNeXtBlock(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=LN_EPS)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(1e-6 * torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x).permute(0, 2, 3, 1)
        y = self.gamma * self.pwconv2(self.act(self.pwconv1(self.norm(y))))
        return x + y.permute(0, 3, 1, 2)


class ConvNeXt(nn.Module):
    """Returns the four stages' features, each through its extra LayerNorm (norm0..norm3)."""

    def __init__(self, depths: tuple[int, ...], dims: tuple[int, ...]) -> None:
        super().__init__()
        self.downsample_layers = nn.ModuleList(
            [
                nn.Sequential(
                    nn.Conv2d(3, dims[0], kernel_size=4, stride=4), LayerNorm2d(dims[0])
                )
            ]
        )
        for i in range(3):
            self.downsample_layers.append(
                nn.Sequential(
                    LayerNorm2d(dims[i]),
                    nn.Conv2d(dims[i], dims[i + 1], kernel_size=2, stride=2),
                )
            )
        self.stages = nn.ModuleList(
            [
                nn.Sequential(*[ConvNeXtBlock(dims[i]) for _ in range(depths[i])])
                for i in range(4)
            ]
        )
        for i in range(4):
            self.add_module(f"norm{i}", LayerNorm2d(dims[i]))
        self.norm = nn.LayerNorm(
            dims[-1], eps=LN_EPS
        )  # the classifier's final norm: stored, unused

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for i in range(4):
            x = self.stages[i](self.downsample_layers[i](x))
            features.append(getattr(self, f"norm{i}")(x))
        return features


class Encoder(nn.Module):
    def __init__(self, size: DDColorSize) -> None:
        super().__init__()
        self.arch = ConvNeXt(size.depths, size.dims)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.arch(x)


# --- Pixel decoder ----------------------------------------------------------------------------


class PixelShuffleUp(nn.Module):
    """The official CustomPixelShuffle_ICNR with blur: conv, ReLU, pixel shuffle, replicate
    pad (left, top) and 2 x 2 average."""

    def __init__(self, cin: int, cout: int, scale: int, *, bn: bool) -> None:
        super().__init__()
        self.conv = conv_layer(cin, cout * scale * scale, 1, relu=False, bn=bn)
        self.shuf = nn.PixelShuffle(scale)
        self.pad = nn.ReplicationPad2d((1, 0, 1, 0))
        self.blur = nn.AvgPool2d(2, stride=1)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blur(self.pad(self.shuf(self.relu(self.conv(x)))))


class UnetBlockWide(nn.Module):
    def __init__(self, up_in: int, skip_in: int, out: int) -> None:
        super().__init__()
        self.shuf = PixelShuffleUp(up_in, out, 2, bn=True)
        self.bn = nn.BatchNorm2d(skip_in)
        self.conv = conv_layer(out + skip_in, out, 3, relu=True, bn=True)
        self.relu = nn.ReLU()

    def forward(self, up_in: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(self.relu(torch.cat([self.shuf(up_in), self.bn(skip)], dim=1)))


# --- Colour decoder ---------------------------------------------------------------------------


def sine_position(h: int, w: int, device: torch.device) -> torch.Tensor:
    """The official PositionEmbeddingSine(128, normalize=True) for an h x w map: (h w) x 256,
    y encodings then x encodings, each sin/cos interleaved."""
    feats = HIDDEN // 2
    y = torch.arange(1, h + 1, dtype=torch.float32, device=device)
    x = torch.arange(1, w + 1, dtype=torch.float32, device=device)
    y = y / (h + 1e-6) * 2 * math.pi
    x = x / (w + 1e-6) * 2 * math.pi
    dim_t = torch.arange(feats, dtype=torch.float32, device=device)
    dim_t = 10000 ** (2 * (dim_t // 2) / feats)

    def encode(v: torch.Tensor) -> torch.Tensor:
        p = v[:, None] / dim_t
        return torch.stack((p[:, 0::2].sin(), p[:, 1::2].cos()), dim=2).flatten(
            1
        )  # n x feats

    pos_y = encode(y)[:, None, :].expand(h, w, feats)
    pos_x = encode(x)[None, :, :].expand(h, w, feats)
    return torch.cat([pos_y, pos_x], dim=2).reshape(h * w, HIDDEN)


class SelfAttentionLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(HIDDEN, HEADS)
        self.norm = nn.LayerNorm(HIDDEN)

    def forward(self, tgt: torch.Tensor, query_pos: torch.Tensor) -> torch.Tensor:
        q = tgt + query_pos
        return self.norm(tgt + self.self_attn(q, q, value=tgt, need_weights=False)[0])


class CrossAttentionLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.multihead_attn = nn.MultiheadAttention(HIDDEN, HEADS)
        self.norm = nn.LayerNorm(HIDDEN)

    def forward(
        self,
        tgt: torch.Tensor,
        memory: torch.Tensor,
        pos: torch.Tensor,
        query_pos: torch.Tensor,
    ) -> torch.Tensor:
        out = self.multihead_attn(
            query=tgt + query_pos, key=memory + pos, value=memory, need_weights=False
        )[0]
        return self.norm(tgt + out)


class FFNLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear1 = nn.Linear(HIDDEN, FFN_DIM)
        self.linear2 = nn.Linear(FFN_DIM, HIDDEN)
        self.norm = nn.LayerNorm(HIDDEN)

    def forward(self, tgt: torch.Tensor) -> torch.Tensor:
        return self.norm(tgt + self.linear2(F.relu(self.linear1(tgt))))


class MLP(nn.Module):
    def __init__(self, layers: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(HIDDEN, HIDDEN) for _ in range(layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x) if i == len(self.layers) - 1 else F.relu(layer(x))
        return x


class MultiScaleColorDecoder(nn.Module):
    def __init__(self, in_channels: tuple[int, ...]) -> None:
        super().__init__()
        self.query_feat = nn.Embedding(NUM_QUERIES, HIDDEN)
        self.query_embed = nn.Embedding(NUM_QUERIES, HIDDEN)
        self.level_embed = nn.Embedding(NUM_SCALES, HIDDEN)
        self.input_proj = nn.ModuleList(
            nn.Conv2d(c, HIDDEN, kernel_size=1) for c in in_channels
        )
        self.transformer_self_attention_layers = nn.ModuleList(
            SelfAttentionLayer() for _ in range(DEC_LAYERS)
        )
        self.transformer_cross_attention_layers = nn.ModuleList(
            CrossAttentionLayer() for _ in range(DEC_LAYERS)
        )
        self.transformer_ffn_layers = nn.ModuleList(
            FFNLayer() for _ in range(DEC_LAYERS)
        )
        self.decoder_norm = nn.LayerNorm(HIDDEN)
        self.color_embed = MLP(3)

    def forward(
        self, scales: list[torch.Tensor], img_features: torch.Tensor
    ) -> torch.Tensor:
        src, pos = [], []
        for i, feature in enumerate(scales):
            _, _, h, w = feature.shape
            pos.append(
                sine_position(h, w, feature.device).to(feature.dtype)[:, None, :]
            )  # HW x 1 x C
            projected = (
                self.input_proj[i](feature).flatten(2)
                + self.level_embed.weight[i][None, :, None]
            )
            src.append(projected.permute(2, 0, 1))  # HW x B x C
        bs = src[0].shape[1]
        query_pos = self.query_embed.weight[:, None, :].expand(-1, bs, -1)
        output = self.query_feat.weight[:, None, :].expand(-1, bs, -1)
        for i in range(DEC_LAYERS):
            level = i % NUM_SCALES
            output = self.transformer_cross_attention_layers[i](
                output, src[level], pos[level].expand(-1, bs, -1), query_pos
            )
            output = self.transformer_self_attention_layers[i](output, query_pos)
            output = self.transformer_ffn_layers[i](output)
        color_embed = self.color_embed(
            self.decoder_norm(output).transpose(0, 1)
        )  # B x Q x C
        return torch.einsum("bqc,bchw->bqhw", color_embed, img_features)


class Decoder(nn.Module):
    def __init__(self, dims: tuple[int, ...]) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            UnetBlockWide(dims[3], dims[2], NF),
            UnetBlockWide(NF, dims[1], NF),
            UnetBlockWide(NF, dims[0], NF // 2),
        )
        self.last_shuf = PixelShuffleUp(NF // 2, NF // 2, 4, bn=False)
        self.color_decoder = MultiScaleColorDecoder((NF, NF, NF // 2))

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        out0 = self.layers[0](features[3], features[2])
        out1 = self.layers[1](out0, features[1])
        out2 = self.layers[2](out1, features[0])
        return self.color_decoder([out0, out1, out2], self.last_shuf(out2))


class DDColor(nn.Module):
    """B x 3 x H x W gray sRGB in [0, 1] (H, W multiples of 32) -> B x 2 x H x W a*b*, as
    the official network computes them (unclamped: see `clamp_ab`)."""

    def __init__(self, size: DDColorSize) -> None:
        super().__init__()
        self.size = size
        self.encoder = Encoder(size)
        self.decoder = Decoder(size.dims)
        self.refine_net = nn.Sequential(
            conv_layer(NUM_QUERIES + 3, 2, 1, relu=False, bn=False)
        )
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, rgb_b3hw: torch.Tensor) -> torch.Tensor:
        _, c, h, w = rgb_b3hw.shape
        if c != 3 or h % STRIDE or w % STRIDE:
            raise ValueError(
                f"DDColor takes B x 3 x H x W with H, W multiples of {STRIDE}, got {tuple(rgb_b3hw.shape)}"
            )
        x = (rgb_b3hw - self.mean) / self.std
        maps = self.decoder(self.encoder(x))
        return self.refine_net(torch.cat([maps, x], dim=1))


def clamp_ab(ab: torch.Tensor) -> torch.Tensor:
    return ab.clamp(AB_MIN, AB_MAX)


def gray_input(l_bhw: torch.Tensor) -> torch.Tensor:
    """L* 0..100 -> the official input: the gray sRGB image of that lightness, B x 3 x H x W."""
    return lightness_to_gray(l_bhw)[:, None].expand(-1, 3, -1, -1)


# --- Importing the released checkpoints --------------------------------------------------------


def extract_state(checkpoint: object, name: str) -> dict[str, torch.Tensor]:
    """The state dict of a released checkpoint: {'params': state_dict} or a plain state dict."""
    if not isinstance(checkpoint, Mapping):
        raise ModelError(
            f"not a {name} checkpoint: the file holds a {type(checkpoint).__name__}"
        )
    state = checkpoint.get("params", checkpoint)
    if not isinstance(state, Mapping) or not state:
        raise ModelError(
            f"not a {name} checkpoint: its 'params' entry is a {type(state).__name__}"
        )
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise ModelError(
                f"not a {name} checkpoint: entry {str(key)[:80]!r} is a {type(value).__name__}, not a tensor"
            )
    return {str(k): v for k, v in state.items()}


def make_spec(size: DDColorSize) -> ModelSpec:
    return ModelSpec(
        name=size.name,
        description=f"DDColor (ICCV 2023), {size.backbone}: automatic, dual decoders with colour queries, no hints",
        input_px=INPUT_PX,
        receptive_field_px=INPUT_PX,  # global: the colour queries attend to the whole input
        # Twice the input: each patch still holds a quarter of the scan (the context the colour
        # queries need), and a 24 MP scan takes 7 passes (docs/benchmarks.md).
        working_px=WORKING_PX,
        takes_hints=False,
        licence=LICENCE,
        weights_file=f"{size.name}.pt",
        batch_size=size.batch_size,
        imported=Imported(
            download=size.checkpoints,
            build=partial(DDColor, size),
            extract=partial(extract_state, name=size.name),
        ),
    )


SPECS: dict[str, ModelSpec] = {name: make_spec(size) for name, size in SIZES.items()}


class DDColorColorizer:
    """An imported DDColor checkpoint behind the Colorizer interface."""

    def __init__(self, spec: ModelSpec, size: DDColorSize) -> None:
        net = DDColor(size)
        self.spec = load_imported(spec, net)
        self.net, self.device = place(net)

    def colorize(
        self, l_bhw: np.ndarray, hint_ab_bhw2: np.ndarray, hint_mask_bhw: np.ndarray
    ) -> np.ndarray:
        check_batch(self.spec, l_bhw, hint_ab_bhw2, hint_mask_bhw)
        (l_t,) = batch_tensors(self.device, l_bhw)
        with torch.inference_mode():
            ab = clamp_ab(self.net(gray_input(l_t)))
        return ab_to_numpy(ab)


def _declare(size: DDColorSize) -> Callable[[], DDColorColorizer]:
    spec = SPECS[size.name]

    def create() -> DDColorColorizer:
        return DDColorColorizer(spec, size)

    create.__name__ = create.__qualname__ = f"create_{size.name.replace('-', '_')}"
    create.__doc__ = (
        f"The {size.name} model ({size.backbone}) with its imported weights."
    )
    return register(spec)(create)


FACTORIES: dict[str, Callable[[], DDColorColorizer]] = {
    name: _declare(size) for name, size in SIZES.items()
}
