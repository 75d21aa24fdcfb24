"""`deoldify-artistic` and `deoldify-stable`: Jason Antic's DeOldify generators, our own
implementation in plain torch, loading the released checkpoints tensor for tensor.

Source: github.com/jantic/DeOldify (MIT), `deoldify/unet.py` (DynamicUnetDeep,
DynamicUnetWide), `deoldify/layers.py` (custom_conv_layer), `deoldify/generators.py`
(gen_learner_deep / gen_learner_wide), `deoldify/filters.py` (pre- and post-processing),
and the pieces of fastai v1 (1.0.x, vendored in that repository) they build on:
`fastai/layers.py` (conv_layer, PixelShuffle_ICNR, SelfAttention, res_block, MergeLayer,
SigmoidRange, batchnorm_2d), `fastai/vision/learner.py` (create_body: a torchvision ResNet
without its pooling and classifier) and `fastai/callbacks/hooks.py` (the encoder outputs the
decoder reads: wherever the activation size changes).

The released generators (both built with blur=True, self_attention=True,
norm_type=NormType.Spectral, y_range=(-3, 3), last_cross=True, bottle=False):

- `deoldify-artistic` (ColorizeArtistic_gen.pth): ResNet-34 encoder, the "deep" decoder
  (UnetBlockDeep: two 3x3 convolutions per block), nf_factor 1.5.
- `deoldify-stable` (ColorizeStable_gen.pth): ResNet-101 encoder, the "wide" decoder
  (UnetBlockWide: one 3x3 convolution per block, 512 x nf_factor = 1024 features), nf_factor 2.

The module tree and the names of its tensors are the official ones (`layers.0` the encoder,
`layers.1` BatchNorm, `layers.3` the middle convolutions, `layers.4`..`layers.7` the decoder
blocks, `layers.8` the final PixelShuffle_ICNR, `layers.10` the residual block, `layers.11`
the output convolution), so the official state dicts load strictly. Spectral norm is stored
as torch.nn.utils.spectral_norm stores it (`weight_orig`, `weight_u`, `weight_v`) and, as in
eval mode there, applied without power iteration: W / (u . W v). The last PixelShuffle_ICNR
uses weight norm (`weight_g`, `weight_v`), fastai's default for it.

Quirks of the official code kept here: the blur after every pixel shuffle (replication pad
by one pixel on the top and left, then a 2 x 2 average) is applied whatever `blur` says,
since the code tests the truthiness of the AvgPool2d module; the self-attention block is the
second decoder block (at 1/8 resolution).

Pre-processing (filters.py, ColorizerFilter): the image is stretched to a square of
render_factor x 16 pixels (default render factor 35: 560 px), made gray (R = G = B), scaled
to 0..1 and normalised with ImageNet's mean and std. The network's output (sigmoid to
-3..3) is denormalised with the same statistics and clamped to 0..1: an sRGB image. DeOldify
then keeps the scan's own luminance and takes only the chroma (YUV's U and V) of that image;
here its chroma is taken as CIE a*b* (the pipeline keeps the scan's L*), in float rather than
after DeOldify's rounding to 8 bits.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from restore.models.base import Imported, ModelSpec, check_batch
from restore.models.device import ab_to_numpy, channels_first, place
from restore.models.imported import load_imported, state_dict_in
from restore.models.registry import register
from restore.models.torch_colour import lightness_to_gray, rgb_to_lab

REPOSITORY = "https://github.com/jantic/DeOldify"
ARTISTIC_URL = "https://data.deepai.org/deoldify/ColorizeArtistic_gen.pth"
STABLE_URL = "https://www.dropbox.com/s/usf7uifrctqw9rl/ColorizeStable_gen.pth?dl=0"

RENDER_BASE = 16  # filters.py: ColorizerFilter.render_base
DEFAULT_RENDER_FACTOR = 35  # visualize.py: the image colorizer's default render factor
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
Y_RANGE = (-3.0, 3.0)

LICENCE = (
    "MIT, code and weights (github.com/jantic/DeOldify, (c) 2018 Jason Antic); "
    "weights trained on ImageNet photos (ImageNet's terms: non-commercial research and education)"
)


class SpectralConv(nn.Module):
    """A convolution under torch.nn.utils.spectral_norm, as stored (bias, weight_orig,
    weight_u, weight_v) and as applied in eval mode: weight_orig / (u . W v)."""

    def __init__(self, c_in: int, c_out: int, ks: int, *, bias: bool, one_d: bool = False) -> None:
        super().__init__()
        self.one_d = one_d
        self.padding = (ks - 1) // 2
        if bias:
            self.bias = nn.Parameter(torch.zeros(c_out))
        else:
            self.register_parameter("bias", None)
        shape = (c_out, c_in, ks) if one_d else (c_out, c_in, ks, ks)
        self.weight_orig = nn.Parameter(torch.empty(shape))
        nn.init.kaiming_normal_(self.weight_orig)
        self.register_buffer("weight_u", F.normalize(torch.randn(c_out), dim=0))
        self.register_buffer("weight_v", F.normalize(torch.randn(c_in * ks ** (1 if one_d else 2)), dim=0))

    def weight(self) -> torch.Tensor:
        matrix = self.weight_orig.reshape(self.weight_orig.shape[0], -1)
        sigma = torch.dot(self.weight_u, torch.mv(matrix, self.weight_v))
        return self.weight_orig / sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = F.conv1d if self.one_d else F.conv2d
        return conv(x, self.weight(), self.bias, padding=self.padding)


class WeightNormConv(nn.Module):
    """A convolution under torch.nn.utils.weight_norm (dim 0), as stored: bias, weight_g,
    weight_v; the weight is g * v / |v| per output channel."""

    def __init__(self, c_in: int, c_out: int, ks: int) -> None:
        super().__init__()
        self.padding = (ks - 1) // 2
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.weight_g = nn.Parameter(torch.ones(c_out, 1, 1, 1))
        self.weight_v = nn.Parameter(torch.randn(c_out, c_in, ks, ks) * 0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norm = self.weight_v.flatten(1).norm(dim=1).reshape(-1, 1, 1, 1)
        return F.conv2d(x, self.weight_g * self.weight_v / norm, self.bias, padding=self.padding)


class SelfAttention(nn.Module):
    """fastai v1's SelfAttention (SAGAN): spectral 1x1 Conv1d query (C/8), key (C/8) and
    value (C), no bias; out = gamma * value . softmax_over_queries(query^T key) + x."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.query = SpectralConv(channels, channels // 8, 1, bias=False, one_d=True)
        self.key = SpectralConv(channels, channels // 8, 1, bias=False, one_d=True)
        self.value = SpectralConv(channels, channels, 1, bias=False, one_d=True)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape
        x = x.reshape(*size[:2], -1)
        f, g, h = self.query(x), self.key(x), self.value(x)
        beta = torch.softmax(torch.bmm(f.permute(0, 2, 1), g), dim=1)
        return (self.gamma * torch.bmm(h, beta) + x).reshape(size)


def conv_layer(c_in: int, c_out: int, ks: int = 3, *, activ: bool = True, bn: bool = True, attention: bool = False) -> nn.Sequential:
    """deoldify/layers.py custom_conv_layer with NormType.Spectral: a spectral convolution
    (with a bias only when no BatchNorm follows), ReLU if `activ`, BatchNorm if `bn`
    (extra_bn), self-attention if `attention`; the official Sequential indices."""
    layers: list[nn.Module] = [SpectralConv(c_in, c_out, ks, bias=not bn)]
    if activ:
        layers.append(nn.ReLU())
    if bn:
        layers.append(nn.BatchNorm2d(c_out))
    if attention:
        layers.append(SelfAttention(c_out))
    return nn.Sequential(*layers)


def blur_after_shuffle(x: torch.Tensor) -> torch.Tensor:
    """PixelShuffle_ICNR's blur: replication pad (left 1, top 1), then a 2x2 average, stride 1."""
    return F.avg_pool2d(F.pad(x, (1, 0, 1, 0), mode="replicate"), 2, stride=1)


class CustomPixelShuffle(nn.Module):
    """unet.py CustomPixelShuffle_ICNR (x2): spectral 1x1 conv + BatchNorm, ReLU, shuffle, blur."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = conv_layer(c_in, c_out * 4, 1, activ=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return blur_after_shuffle(F.pixel_shuffle(F.relu(self.conv(x)), 2))


class PixelShuffleICNR(nn.Module):
    """fastai v1 PixelShuffle_ICNR(ni) (x2, nf = ni): weight-norm 1x1 conv with bias, ReLU, shuffle, blur."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(WeightNormConv(channels, channels * 4, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return blur_after_shuffle(F.pixel_shuffle(F.relu(self.conv(x)), 2))


class UnetBlock(nn.Module):
    """UnetBlockDeep (`deep`: conv1 then conv2) or UnetBlockWide (one `conv`): upsample the
    decoder's features, concatenate the BatchNorm'd encoder features, ReLU, convolve."""

    def __init__(self, up_in: int, skip_in: int, *, up_out: int, out: int, deep: bool, attention: bool) -> None:
        super().__init__()
        self.deep = deep
        self.shuf = CustomPixelShuffle(up_in, up_out)
        self.bn = nn.BatchNorm2d(skip_in)
        if deep:
            self.conv1 = conv_layer(up_out + skip_in, out)
            self.conv2 = conv_layer(out, out, attention=attention)
        else:
            self.conv = conv_layer(up_out + skip_in, out, attention=attention)

    def forward(self, up_in: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        up = self.shuf(up_in)
        if up.shape[-2:] != skip.shape[-2:]:
            up = F.interpolate(up, skip.shape[-2:], mode="nearest")
        x = F.relu(torch.cat([up, self.bn(skip)], dim=1))
        return self.conv2(self.conv1(x)) if self.deep else self.conv(x)


class ResBlock(nn.Module):
    """fastai v1 res_block(nf, norm_type=Spectral): x + relu(conv(relu(conv(x)))), convs with bias."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList([conv_layer(channels, channels, bn=False), conv_layer(channels, channels, bn=False)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.layers[1](self.layers[0](x))


class _NoParameters(nn.Module):
    """Placeholders at the official indices of modules without tensors (ReLU, MergeLayer,
    SigmoidRange); the forward pass applies them itself."""


# The encoder outputs the decoder reads (unet.py _get_sfs_idxs at 256 px: where the
# activation size changes): layer3, layer2, layer1, the stem's ReLU; deepest first.
SKIP_INDICES = (6, 5, 4, 2)


class DeOldifyNet(nn.Module):
    """ImageNet-normalised gray RGB (B x 3 x H x W, H and W multiples of 32) -> the
    generator's output (B x 3 x H x W, -3..3, ImageNet-normalised RGB)."""

    def __init__(self, arch: str, *, deep: bool, nf_factor: float) -> None:
        super().__init__()
        resnet = getattr(torchvision.models, arch)(weights=None)
        encoder = nn.Sequential(*list(resnet.children())[:-2])
        channels = {2: 64, 4: _out_channels(resnet.layer1), 5: _out_channels(resnet.layer2), 6: _out_channels(resnet.layer3)}
        ni = _out_channels(resnet.layer4)
        middle = nn.Sequential(conv_layer(ni, ni * 2), conv_layer(ni * 2, ni))
        layers: list[nn.Module] = [encoder, nn.BatchNorm2d(ni), _NoParameters(), middle]
        x_channels = ni
        for i, index in enumerate(SKIP_INDICES):
            not_final = i != len(SKIP_INDICES) - 1
            attention = i == len(SKIP_INDICES) - 3
            skip_in = channels[index]
            if deep:
                up_out = x_channels // 2
                c = up_out + skip_in
                out = int((c if not_final else c // 2) * nf_factor)
            else:
                n_out = int(512 * nf_factor) if not_final else int(512 * nf_factor) // 2
                up_out = out = n_out // 2
            layers.append(UnetBlock(x_channels, skip_in, up_out=up_out, out=out, deep=deep, attention=attention))
            x_channels = out
        layers.append(PixelShuffleICNR(x_channels))
        layers.append(_NoParameters())  # MergeLayer(dense=True): concatenate the input
        x_channels += 3
        layers.append(ResBlock(x_channels))
        layers.append(conv_layer(x_channels, 3, 1, activ=False, bn=False))
        layers.append(_NoParameters())  # SigmoidRange(-3, 3)
        self.layers = nn.ModuleList(layers)

    def forward(self, x_in: torch.Tensor) -> torch.Tensor:
        encoder = self.layers[0]
        skips: dict[int, torch.Tensor] = {}
        x = x_in
        for index, module in enumerate(encoder):
            x = module(x)
            if index in SKIP_INDICES:
                skips[index] = x
        x = self.layers[3](F.relu(self.layers[1](x)))
        for block, index in zip(self.layers[4:8], SKIP_INDICES):
            x = block(x, skips[index])
        x = self.layers[8](x)
        x = torch.cat([x, x_in], dim=1)
        x = self.layers[11](self.layers[10](x))
        low, high = Y_RANGE
        return torch.sigmoid(x) * (high - low) + low


def _out_channels(layer: nn.Sequential) -> int:
    last = layer[-1]
    return (last.bn3 if hasattr(last, "bn3") else last.bn2).num_features


def artistic_net() -> DeOldifyNet:
    return DeOldifyNet("resnet34", deep=True, nf_factor=1.5)


def stable_net() -> DeOldifyNet:
    return DeOldifyNet("resnet101", deep=False, nf_factor=2)


def normalise_gray(l_b1hw: torch.Tensor) -> torch.Tensor:
    """L* (B x 1 x H x W) -> the network's input: the gray level (R = G = B) with that
    lightness, 0..1, ImageNet-normalised (filters.py: x / 255, then the data's norm)."""
    gray = lightness_to_gray(l_b1hw[:, 0])[:, None].expand(-1, 3, -1, -1)
    mean = torch.tensor(IMAGENET_MEAN, device=gray.device)[None, :, None, None]
    std = torch.tensor(IMAGENET_STD, device=gray.device)[None, :, None, None]
    return (gray - mean) / std


def output_rgb(raw_b3hw: torch.Tensor) -> torch.Tensor:
    """The generator's output -> sRGB 0..1 (pred_batch: denormalise, then clamp)."""
    mean = torch.tensor(IMAGENET_MEAN, device=raw_b3hw.device)[None, :, None, None]
    std = torch.tensor(IMAGENET_STD, device=raw_b3hw.device)[None, :, None, None]
    return (raw_b3hw * std + mean).clamp(0.0, 1.0)


def colorize_ab(net: DeOldifyNet, l_b1hw: torch.Tensor) -> torch.Tensor:
    """L* -> a*b* (B x 2 x H x W): the chroma of DeOldify's RGB; the scan keeps its L*."""
    return rgb_to_lab(output_rgb(net(normalise_gray(l_b1hw))))[:, 1:]


def official_state_dict(checkpoint: object) -> Mapping[object, object]:
    """The state dict in a checkpoint: fastai v1's Learner.save writes it plain, or as
    {"model": ..., "opt": ...} when saving the optimiser too."""
    return state_dict_in(checkpoint, ("model", "state_dict"))


# Every output pixel sees the whole input: ResNet's receptive field at layer4 (899 px for
# ResNet-34, more for ResNet-101) exceeds the input, and the self-attention block at 1/8
# resolution mixes all positions.
#: Twice the input: global models need each patch to hold a good part of the scan.
WORKING_PX = 2 * DEFAULT_RENDER_FACTOR * RENDER_BASE

ARTISTIC_SPEC = ModelSpec(
    name="deoldify-artistic",
    description="DeOldify artistic (Antic): ResNet-34 U-Net, self-attention; automatic, no hints",
    input_px=DEFAULT_RENDER_FACTOR * RENDER_BASE,
    receptive_field_px=DEFAULT_RENDER_FACTOR * RENDER_BASE,
    working_px=WORKING_PX,  # as DDColor's: each patch a quarter of the scan, 7 passes at 24 MP
    takes_hints=False,
    licence=LICENCE,
    weights_file="deoldify-artistic.pt",
    batch_size=1,
    imported=Imported(download=f"{ARTISTIC_URL} (ColorizeArtistic_gen.pth, {REPOSITORY})", build=artistic_net, extract=official_state_dict),
)

STABLE_SPEC = ModelSpec(
    name="deoldify-stable",
    description="DeOldify stable (Antic): ResNet-101 wide U-Net, self-attention; automatic, no hints",
    input_px=DEFAULT_RENDER_FACTOR * RENDER_BASE,
    receptive_field_px=DEFAULT_RENDER_FACTOR * RENDER_BASE,
    working_px=WORKING_PX,  # as DDColor's: each patch a quarter of the scan, 7 passes at 24 MP
    takes_hints=False,
    licence=LICENCE,
    weights_file="deoldify-stable.pt",
    batch_size=1,
    imported=Imported(download=f"{STABLE_URL} (ColorizeStable_gen.pth, {REPOSITORY})", build=stable_net, extract=official_state_dict),
)


class _DeOldifyColorizer:
    def __init__(self, spec: ModelSpec, net: DeOldifyNet) -> None:
        self.spec = load_imported(spec, net)
        self.net, self.device = place(net)

    def colorize(self, l_bhw: np.ndarray, hint_ab_bhw2: np.ndarray, hint_mask_bhw: np.ndarray) -> np.ndarray:
        check_batch(self.spec, l_bhw, hint_ab_bhw2, hint_mask_bhw)
        with torch.inference_mode():
            l_t, _, _ = channels_first(self.device, l_bhw, hint_ab_bhw2, hint_mask_bhw)
            ab = colorize_ab(self.net, l_t)  # takes no hints
        return ab_to_numpy(ab)


@register(ARTISTIC_SPEC)
class DeOldifyArtistic(_DeOldifyColorizer):
    def __init__(self) -> None:
        super().__init__(ARTISTIC_SPEC, artistic_net())


@register(STABLE_SPEC)
class DeOldifyStable(_DeOldifyColorizer):
    def __init__(self) -> None:
        super().__init__(STABLE_SPEC, stable_net())
