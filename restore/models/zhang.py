"""`eccv16` and `siggraph17`: Zhang et al.'s two published colorization networks, our own
implementations, loading the official checkpoints tensor for tensor.

Source: github.com/richzhang/colorization (BSD-2-Clause), `colorizers/eccv16.py`,
`colorizers/siggraph17.py` and `colorizers/base_color.py`; the checkpoints are the ones
those files download. Module names (`model1` .. `model8`, `model_out`, ...) and the
positions of layers inside each `nn.Sequential` are the official ones, so the official
state dicts load strictly: every tensor present with its shape, none left over.

Normalisation (base_color.py, both networks): the network sees (L* - 50) / 100 and
a*b* / 110; its a*b* output is multiplied by 110.

- `eccv16` ("Colorful Image Colorization", ECCV 2016): automatic, takes no hints. A VGG-like
  encoder (conv1-conv4, a stride-2 convolution ending each of conv1-conv3), dilated
  conv5-conv6 (dilation 2), conv7, then a transposed convolution to 1/4 resolution and
  logits over 313 quantised a*b* bins. The official PyTorch port turns them into a*b* by a
  softmax (no annealing temperature) and a fixed 1x1 convolution without bias, `model_out`
  (2 x 313: the bins' centres / 110), then bilinear upsampling x4. The pipeline's hint
  step (restore/hold.py) still makes curator hints hold after it.
- `siggraph17` ("Real-Time User-Guided Image Colorization with Learned Deep Priors",
  SIGGRAPH 2017): takes hints. Its input is 4 channels: the L* above, the hints' a*b* / 110
  (0 where there is no hint) and the hint mask as it is, 1 where hinted and 0 elsewhere
  (not centred: the official forward concatenates `mask_B` unchanged, and without hints it
  passes zeros). The same encoder, but at full stride, subsampled by [::2] after conv1-conv3,
  whose outputs feed shortcut convolutions into a U-Net-like decoder (conv8-conv10) back to
  full resolution; a*b* come from a 1x1 convolution and tanh (`model_out`), times 110. The
  checkpoint also holds the classification branch `model_class` (529 a*b* classes from conv8),
  which the official forward does not use; it is kept so the weights load strictly.

Both run at 256 x 256. The weights were trained on ImageNet.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from restore.models.base import Imported, ModelSpec, check_batch
from restore.models.device import ab_to_numpy, channels_first, place
from restore.models.imported import load_imported, state_dict_in
from restore.models.registry import register

REPOSITORY = "https://github.com/richzhang/colorization"
ECCV16_URL = "https://colorizers.s3.us-east-2.amazonaws.com/colorization_release_v2-9b330a0b.pth"
SIGGRAPH17_URL = "https://colorizers.s3.us-east-2.amazonaws.com/siggraph17-df00044c.pth"

# base_color.py
L_CENT = 50.0
L_NORM = 100.0
AB_NORM = 110.0

ECCV16_BINS = 313  # in-gamut a*b* bins of the ECCV 2016 classification
SIGGRAPH17_CLASSES = 529  # 23 x 23 a*b* grid of the SIGGRAPH 2017 classification branch

LICENCE = (
    "BSD-2-Clause, code and weights (github.com/richzhang/colorization, (c) 2016 Richard Zhang, "
    "Phillip Isola, Alexei A. Efros); weights trained on ImageNet photos (ImageNet's terms: "
    "non-commercial research and education)"
)
# Receptive field at 256 px (the encoder alone): conv1-conv3 reach 37 px with stride 8,
# conv4 85, dilated conv5-conv6 277, conv7 325, and the decoder a little more: about 350 px,
# wider than the input, so every output pixel sees the whole 256 x 256 patch. The tile
# overlap is capped at a quarter of the input (64 px) anyway.
RECEPTIVE_FIELD_PX = 256

def conv_block(channels: list[int], *, stride: int = 1, dilation: int = 1, relu_first: bool = False, norm: bool = True) -> list[nn.Module]:
    """3x3 convolutions channels[0] -> channels[1] -> ..., each followed by a ReLU, the last
    one with `stride`, then BatchNorm: the official layer order, so a Sequential of these
    layers has the official indices (`model1.0` convolution, `model1.4` BatchNorm, ...).
    `relu_first`: a ReLU before the first convolution, as in the decoder blocks where it
    follows the sum of the upsampled and shortcut features."""
    layers: list[nn.Module] = [nn.ReLU(inplace=True)] if relu_first else []
    last = len(channels) - 2
    for i, (c_in, c_out) in enumerate(zip(channels, channels[1:])):
        conv = nn.Conv2d(c_in, c_out, 3, stride=stride if i == last else 1, padding=dilation, dilation=dilation)
        layers += [conv, nn.ReLU(inplace=True)]
    if norm:
        layers.append(nn.BatchNorm2d(channels[-1]))
    return layers


def _upsample(c_in: int, c_out: int) -> nn.Sequential:
    """A x2 transposed convolution (kernel 4, stride 2, padding 1)."""
    return nn.Sequential(nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1))


class ZhangNet(nn.Module):
    """What both networks share: base_color.py's normalisation and the encoder model1-model7
    (conv1-conv7). `strided`: conv1-conv3 end with a stride-2 convolution (eccv16); else they
    run at full stride and their outputs are subsampled by [::2] (siggraph17), which is the
    same computation but keeps the full-resolution features for the decoder's shortcuts."""

    def __init__(self, in_channels: int, *, strided: bool) -> None:
        super().__init__()
        self.step = 1 if strided else 2
        stride = 2 if strided else 1
        self.model1 = nn.Sequential(*conv_block([in_channels, 64, 64], stride=stride))
        self.model2 = nn.Sequential(*conv_block([64, 128, 128], stride=stride))
        self.model3 = nn.Sequential(*conv_block([128, 256, 256, 256], stride=stride))
        self.model4 = nn.Sequential(*conv_block([256, 512, 512, 512]))
        self.model5 = nn.Sequential(*conv_block([512, 512, 512, 512], dilation=2))
        self.model6 = nn.Sequential(*conv_block([512, 512, 512, 512], dilation=2))
        self.model7 = nn.Sequential(*conv_block([512, 512, 512, 512]))

    @staticmethod
    def normalize_l(l_b1hw: torch.Tensor) -> torch.Tensor:
        return (l_b1hw - L_CENT) / L_NORM

    @staticmethod
    def normalize_ab(ab_b2hw: torch.Tensor) -> torch.Tensor:
        return ab_b2hw / AB_NORM

    @staticmethod
    def unnormalize_ab(ab_b2hw: torch.Tensor) -> torch.Tensor:
        return ab_b2hw * AB_NORM

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """conv1_2, conv2_2, conv3_3 (before subsampling) and conv7_3."""
        s = self.step
        conv1 = self.model1(x)
        conv2 = self.model2(conv1[:, :, ::s, ::s])
        conv3 = self.model3(conv2[:, :, ::s, ::s])
        conv7 = self.model7(self.model6(self.model5(self.model4(conv3[:, :, ::s, ::s]))))
        return conv1, conv2, conv3, conv7


class ECCV16Net(ZhangNet):
    """L* (B x 1 x H x W, 0..100) -> a*b* (B x 2 x H x W); H, W multiples of 8."""

    def __init__(self) -> None:
        super().__init__(1, strided=True)
        self.model8 = nn.Sequential(
            nn.ConvTranspose2d(512, 256, 4, stride=2, padding=1),
            nn.ReLU(inplace=True),
            *conv_block([256, 256, 256], norm=False),
            nn.Conv2d(256, ECCV16_BINS, 1),
        )
        self.model_out = nn.Conv2d(ECCV16_BINS, 2, 1, bias=False)  # the bins' a*b* / 110

    def forward(self, l_b1hw: torch.Tensor) -> torch.Tensor:
        *_, conv7 = self.encode(self.normalize_l(l_b1hw))
        probabilities = torch.softmax(self.model8(conv7), dim=1)
        ab = F.interpolate(self.model_out(probabilities), scale_factor=4, mode="bilinear", align_corners=False)
        return self.unnormalize_ab(ab)


class SIGGRAPH17Net(ZhangNet):
    """L* (B x 1 x H x W, 0..100), hint a*b* (B x 2 x H x W, 0 where no hint) and hint mask
    (B x 1 x H x W, 1 where hinted) -> a*b* (B x 2 x H x W); H, W multiples of 8."""

    def __init__(self) -> None:
        super().__init__(4, strided=False)
        self.model8up = _upsample(512, 256)
        self.model3short8 = nn.Sequential(nn.Conv2d(256, 256, 3, padding=1))
        self.model8 = nn.Sequential(*conv_block([256, 256, 256], relu_first=True))
        self.model9up = _upsample(256, 128)
        self.model2short9 = nn.Sequential(nn.Conv2d(128, 128, 3, padding=1))
        self.model9 = nn.Sequential(*conv_block([128, 128], relu_first=True))
        self.model10up = _upsample(128, 128)
        self.model1short10 = nn.Sequential(nn.Conv2d(64, 128, 3, padding=1))
        self.model10 = nn.Sequential(nn.ReLU(inplace=True), nn.Conv2d(128, 128, 3, padding=1), nn.LeakyReLU(0.2))
        self.model_class = nn.Sequential(nn.Conv2d(256, SIGGRAPH17_CLASSES, 1))  # in the checkpoint; unused
        self.model_out = nn.Sequential(nn.Conv2d(128, 2, 1), nn.Tanh())

    def forward(self, l_b1hw: torch.Tensor, hint_ab_b2hw: torch.Tensor | None = None, hint_mask_b1hw: torch.Tensor | None = None) -> torch.Tensor:
        if hint_ab_b2hw is None or hint_mask_b1hw is None:
            hint_ab_b2hw = l_b1hw.new_zeros((l_b1hw.shape[0], 2, *l_b1hw.shape[2:]))
            hint_mask_b1hw = torch.zeros_like(l_b1hw)
        x = torch.cat([self.normalize_l(l_b1hw), self.normalize_ab(hint_ab_b2hw * hint_mask_b1hw), hint_mask_b1hw], dim=1)
        conv1, conv2, conv3, conv7 = self.encode(x)
        x = self.model8(self.model8up(conv7) + self.model3short8(conv3))
        x = self.model9(self.model9up(x) + self.model2short9(conv2))
        x = self.model10(self.model10up(x) + self.model1short10(conv1))
        return self.unnormalize_ab(self.model_out(x))


def official_state_dict(checkpoint: object) -> dict[str, torch.Tensor]:
    """The state dict in a checkpoint: the file itself (the official files are plain state
    dicts), or under "state_dict" or "model" (as training scripts and our own stored weights
    save it). A BatchNorm counter `num_batches_tracked` that a file saved before PyTorch 0.4.1
    lacks is filled in as PyTorch's own loading does (it plays no part in inference); every
    other tensor must be there."""
    state = dict(state_dict_in(checkpoint, ("state_dict", "model")))
    for key in [k for k in state if isinstance(k, str) and k.endswith(".running_mean")]:
        state.setdefault(key.removesuffix("running_mean") + "num_batches_tracked", torch.tensor(0, dtype=torch.long))
    return state


ECCV16_SPEC = ModelSpec(
    name="eccv16",
    description="Zhang et al. ECCV 2016, Colorful Image Colorization: automatic (313 a*b* classes), no hints",
    input_px=256,
    receptive_field_px=RECEPTIVE_FIELD_PX,
    takes_hints=False,
    licence=LICENCE,
    weights_file="eccv16.pt",
    batch_size=4,
    imported=Imported(download=f"{ECCV16_URL} (the official release, {REPOSITORY})", build=ECCV16Net, extract=official_state_dict),
)

SIGGRAPH17_SPEC = ModelSpec(
    name="siggraph17",
    description="Zhang et al. SIGGRAPH 2017, Real-Time User-Guided Image Colorization: takes hints",
    input_px=256,
    receptive_field_px=RECEPTIVE_FIELD_PX,
    takes_hints=True,
    licence=LICENCE,
    weights_file="siggraph17.pt",
    batch_size=4,
    imported=Imported(
        download=f"{SIGGRAPH17_URL} (the official release, {REPOSITORY})", build=SIGGRAPH17Net, extract=official_state_dict
    ),
)


class _ZhangColorizer:
    """The Colorizer around either network: installed weights loaded (SHA-256 checked),
    eval mode, numpy batches in and out."""

    def __init__(self, spec: ModelSpec, net: ZhangNet) -> None:
        self.spec = load_imported(spec, net)
        self.net, self.device = place(net)

    def colorize(self, l_bhw: np.ndarray, hint_ab_bhw2: np.ndarray, hint_mask_bhw: np.ndarray) -> np.ndarray:
        check_batch(self.spec, l_bhw, hint_ab_bhw2, hint_mask_bhw)
        with torch.inference_mode():
            ab = self._predict(*channels_first(self.device, l_bhw, hint_ab_bhw2, hint_mask_bhw))
        return ab_to_numpy(ab)

    def _predict(self, l_b1hw: torch.Tensor, hint_ab_b2hw: torch.Tensor, hint_mask_b1hw: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


@register(ECCV16_SPEC)
class ECCV16(_ZhangColorizer):
    def __init__(self) -> None:
        super().__init__(ECCV16_SPEC, ECCV16Net())

    def _predict(self, l_b1hw: torch.Tensor, hint_ab_b2hw: torch.Tensor, hint_mask_b1hw: torch.Tensor) -> torch.Tensor:
        return self.net(l_b1hw)  # takes no hints


@register(SIGGRAPH17_SPEC)
class SIGGRAPH17(_ZhangColorizer):
    def __init__(self) -> None:
        super().__init__(SIGGRAPH17_SPEC, SIGGRAPH17Net())

    def _predict(self, l_b1hw: torch.Tensor, hint_ab_b2hw: torch.Tensor, hint_mask_b1hw: torch.Tensor) -> torch.Tensor:
        return self.net(l_b1hw, hint_ab_b2hw, hint_mask_b1hw)
