"""`damage-lite`: the damage segmenter of `photochrom restore --repair`, a small network that
gives every pixel of a scan's full-resolution lightness the probability that it is dust, a
scratch, a crack, a fold or a tear (trained on synthetic damage: restore/repair/synth.py,
restore/models/damage_training.py).

Architecture (`DamageNet`), fast enough for a 24 MP scan on two CPU cores:
- the L* image, as L*/100 - 0.5, is unshuffled 4 x 4 (PixelUnshuffle): 16 channels holding
  each 4 x 4 block's sub-pixels, so every convolution runs at a sixteenth of the pixels
  while the network still sees single-pixel detail;
- at stride 4, a 3 x 3 stem and residual 3 x 3 blocks (the fine detail: how thin, how
  sharp-edged, how bright against its surround); at stride 8, residual dilated 3 x 3 blocks
  for context (is this thin bright line a scratch across the picture, or an eyelash, a
  catch-light, a window frame?);
- back to stride 4 (transposed convolution, added to the stride-4 features), one more 3 x 3,
  then a 1 x 1 to 16 channels that PixelShuffle turns into full-resolution logits.
Trained with a batch norm after each convolution, folded into the weights when saved
(`folded`): a norm costs a pass over the activations at inference, and without them the
network trained several times slower. Its receptive field, `SPEC.receptive_field_px` (the
width of input a probability depends on), is what tiles must overlap by.

Runs in bfloat16 on CPUs that compute it natively (`inference_dtype`), else float32.

The weights file holds {"format", "config", "state_dict" (float16)}; it is loaded with
`torch.load(weights_only=True)`, so no pickled code runs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import ClassVar, Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from restore.models.base import Imported, ModelError, verified_weights
from restore.models.device import inference_device, resolve_device
from restore.models.registry import Registry
from restore.models.shipped import load_shipped, save_shipped
from restore.scanio.files import file_sha256

WEIGHTS_FORMAT = "photochrom-damage/1"


@dataclass(frozen=True)
class DamageSpec:
    """What a damage segmenter is, declared next to its implementation."""

    kind: ClassVar[str] = "segmenter"

    name: str
    description: str
    licence: str
    weights_file: str  # relative to restore/models/weights
    # The shipped weights' SHA-256, checked on every load; a segmenter loaded from another
    # file (`load_damage_segmenter(weights=...)`) carries that file's, for provenance.
    weights_sha256: str
    receptive_field_px: int  # full-resolution px a probability depends on, across: tile overlap
    default_threshold: float  # probability above which a pixel is damaged (see the card)
    # The network sees the image on a grid of this many px (DamageConfig.grid_px: unshuffled
    # 4 x 4, then one stride 2, two with the context branch): shifted by a multiple of it, its output shifts with it exactly, by anything else it
    # changes (within the threshold's rounding for most pixels, not all). Tiles whose origins
    # are multiples of it give exactly the whole image's probabilities.
    alignment_px: int = 8
    imported: Imported | None = None  # (the Declaration protocol: shipped weights, never imported)
    weights_env: str | None = None


SPEC = DamageSpec(
    name="damage-lite",
    description="dust, scratches, cracks, folds and tears on full-resolution L*; 24 MP in a few seconds on a CPU",
    licence="code MIT; weights trained on research-use photos with synthetic damage: see weights/damage-lite.md",
    weights_file="damage-lite.pt",
    weights_sha256="bd113ff1f83621602954f14ade0c9063998a7ff0250b5e046b3084eff9c24e98",
    receptive_field_px=344,  # receptive_field_px of the shipped network's config, checked by a test
    default_threshold=0.95,
    alignment_px=16,  # its config's grid_px (with the context branch), checked by a test
)


@dataclass(frozen=True)
class DamageConfig:
    """The architecture's shape; stored in the weights file."""

    stride4_channels: int = 48
    stride8_channels: int = 64
    stride4_blocks: int = 2  # residual 3 x 3 blocks at stride 4 before going down
    dilations: tuple[int, ...] = (1, 2, 1)  # of the stride-8 blocks
    # A context branch at stride 16 (0: none): its dilated residual blocks widen the receptive
    # field, so that a long scratch or fold is seen crossing the picture's own structure.
    context_channels: int = 0
    context_dilations: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @property
    def grid_px(self) -> int:
        """The network sees the image on this grid: inputs are padded to a multiple of it,
        and shifted by a multiple of it the output shifts with it exactly."""
        return UNSHUFFLE * (4 if self.context_channels else 2)

    @classmethod
    def from_dict(cls, config: dict[str, object]) -> DamageConfig:
        """The config a weights file stores (lists for tuples; older files lack the newer
        fields, which then keep their defaults)."""
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in config.items()})  # type: ignore[arg-type]


UNSHUFFLE = 4


class DamageNet(nn.Module):
    """L* (B x 1 x H x W, 0..100, H and W multiples of config.grid_px) -> damage logits, same size.

    `batch_norm`: for training only, a batch norm after every convolution but the head (it
    trained several times faster); `folded` turns them into the convolutions' weights, and
    the shipped network has none."""

    def __init__(self, config: DamageConfig, *, batch_norm: bool = False) -> None:
        super().__init__()
        self.config = config
        c4, c8 = config.stride4_channels, config.stride8_channels
        self.unshuffle = nn.PixelUnshuffle(UNSHUFFLE)
        self.stem = _conv(nn.Conv2d(UNSHUFFLE**2, c4, 3, padding=1), batch_norm)
        self.blocks4 = nn.ModuleList(_conv(nn.Conv2d(c4, c4, 3, padding=1), batch_norm) for _ in range(config.stride4_blocks))
        self.down = _conv(nn.Conv2d(c4, c8, 2, stride=2), batch_norm)
        self.blocks8 = nn.ModuleList(_conv(nn.Conv2d(c8, c8, 3, padding=d, dilation=d), batch_norm) for d in config.dilations)
        if config.context_channels:
            cc = config.context_channels
            self.down16 = _conv(nn.Conv2d(c8, cc, 2, stride=2), batch_norm)
            self.blocks16 = nn.ModuleList(_conv(nn.Conv2d(cc, cc, 3, padding=d, dilation=d), batch_norm) for d in config.context_dilations)
            self.up16 = nn.ConvTranspose2d(cc, c8, 2, stride=2)
            nn.init.zeros_(self.up16.weight)  # starts as the network without it (see `extended`)
            nn.init.zeros_(self.up16.bias)
        self.up = _conv(nn.ConvTranspose2d(c8, c4, 2, stride=2), batch_norm)
        self.fuse = _conv(nn.Conv2d(c4, c4, 3, padding=1), batch_norm)
        self.head = nn.Conv2d(c4, UNSHUFFLE**2, 1)
        self.shuffle = nn.PixelShuffle(UNSHUFFLE)
        nn.init.constant_(self.head.bias, -4.0)  # damage is rare: start near "none"

    def forward(self, l_b1hw: torch.Tensor) -> torch.Tensor:
        # Normalised in the input's precision (float32), then in the weights' (see DamageSegmenter).
        x = self.unshuffle(l_b1hw / 100.0 - 0.5).to(self.head.weight.dtype)
        x4 = F.relu(self.stem(x), inplace=True)
        for block in self.blocks4:
            x4 = F.relu(x4 + block(x4), inplace=True)
        x8 = F.relu(self.down(x4), inplace=True)
        for block in self.blocks8:
            x8 = F.relu(x8 + block(x8), inplace=True)
        if self.config.context_channels:
            x16 = F.relu(self.down16(x8), inplace=True)
            for block in self.blocks16:
                x16 = F.relu(x16 + block(x16), inplace=True)
            x8 = F.relu(x8 + self.up16(x16), inplace=True)
        x4 = F.relu(x4 + self.up(x8), inplace=True)
        x4 = F.relu(self.fuse(x4), inplace=True)
        return self.shuffle(self.head(x4))


def _conv(conv: nn.Conv2d | nn.ConvTranspose2d, batch_norm: bool) -> nn.Module:
    return nn.Sequential(conv, nn.BatchNorm2d(conv.out_channels)) if batch_norm else conv


@torch.no_grad()
def folded(net: DamageNet) -> DamageNet:
    """The same function without batch norms: each folded into its convolution's weights and
    bias (exact in eval mode). A network without them is returned as it is."""
    plain = DamageNet(net.config)
    state = {}
    for name, module in net.named_modules():
        if isinstance(module, nn.Sequential) and isinstance(module[-1], nn.BatchNorm2d):
            conv, bn = module[0], module[1]
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            shape = (1, -1, 1, 1) if isinstance(conv, nn.ConvTranspose2d) else (-1, 1, 1, 1)  # out channels' axis
            state[f"{name}.weight"] = conv.weight * scale.reshape(shape)
            state[f"{name}.bias"] = (conv.bias - bn.running_mean) * scale + bn.bias
    wanted = plain.state_dict()
    state.update((name, value) for name, value in net.state_dict().items() if name in wanted and name not in state)
    plain.load_state_dict(state, strict=True)
    return plain.eval()


def receptive_field_px(config: DamageConfig) -> int:
    """The width of input (full-resolution px) one output pixel depends on, measured: the
    span of nonzero gradient of a central logit with respect to the input, maximised over the
    16 sub-pixel positions of a block (weights all positive, so no gradient cancels)."""
    net = DamageNet(config)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.full_like(p, 0.01))
    side = 1024 if config.context_channels else 256
    widest = 0
    for offset in range(UNSHUFFLE):
        x = torch.full((1, 1, side, side), 60.0, requires_grad=True)
        centre = side // 2 + offset
        net(x)[0, 0, centre, centre].backward()
        reached = np.flatnonzero(x.grad[0, 0].abs().sum(dim=0).numpy() > 0)
        widest = max(widest, int(reached.max() - reached.min() + 1))
    return widest


def save_damage_weights(net: DamageNet, path: Path) -> None:
    """The shipped form (restore/models/shipped.py): config plus the batch-norm-folded state
    dict in float16."""
    save_shipped(folded(net).state_dict(), net.config.to_dict(), WEIGHTS_FORMAT, path)


def load_damage_net(path: Path) -> DamageNet:
    """A DamageNet from a weights file, strictly (every tensor present, none left over)."""

    return load_shipped(path, WEIGHTS_FORMAT, lambda config: DamageNet(DamageConfig.from_dict(config)))


@torch.no_grad()
def extended(net: DamageNet, config: DamageConfig) -> DamageNet:
    """A network of `config` (which adds to `net`'s: a context branch) holding `net`'s trained
    weights, the added layers new with their output zero: it computes what `net` computes
    until trained further. A ValueError if one of `net`'s tensors has no place in it."""
    grown = DamageNet(config)
    target = grown.state_dict()
    for name, value in folded(net).state_dict().items():
        if name not in target or target[name].shape != value.shape:
            raise ValueError(f"{name} {tuple(value.shape)} has no place in the extended network")
        target[name] = value
    grown.load_state_dict(target, strict=True)
    return grown


def inference_dtype(device: torch.device) -> torch.dtype:
    """bfloat16 on a CPU that computes it natively (AVX-512 BF16, AMX: oneDNN's bfloat16
    convolutions ran the network 2-3x faster than float32 on this machine's cores), else
    float32 (a GPU: float32, fast enough). The input is normalised in float32 first. On 24
    dev photos with synthetic damage the probabilities differed from float32's by at most
    0.05 (0.02 the median image's largest difference), and 0.5% of the pixels flagged at the
    default threshold changed sides: the mask depends on the CPU that far."""
    if device.type == "cpu" and torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return torch.bfloat16
    return torch.float32


class DamageSegmenter:
    """A loaded damage segmenter: `probability` of damage for every pixel."""

    def __init__(self, net: DamageNet, spec: DamageSpec, device: torch.device, dtype: torch.dtype | None = None) -> None:
        self.spec = spec
        self.device = device
        self.dtype = inference_dtype(device) if dtype is None else dtype
        # Channels-last convolutions ran about 1.5x faster on this 2-core CPU (bench/damage_speed.py).
        self.net = net.eval().to(device, self.dtype, memory_format=torch.channels_last)

    def logits(self, l_bhw: np.ndarray) -> np.ndarray:
        """B x H x W float32 L* (0..100), any H, W -> B x H x W float32 damage logits."""
        with torch.inference_mode():
            return self._logits(l_bhw).float().cpu().numpy()

    def probability(self, l_bhw: np.ndarray) -> np.ndarray:
        """B x H x W float32 L* (0..100), any H, W -> B x H x W float32 damage probability 0..1."""
        with torch.inference_mode():
            return torch.sigmoid(self._logits(l_bhw).float()).cpu().numpy()

    def _logits(self, l_bhw: np.ndarray) -> torch.Tensor:
        if l_bhw.ndim != 3 or l_bhw.dtype != np.float32:
            raise ValueError(f"{self.spec.name}: l_bhw must be B x H x W float32, got {l_bhw.shape} {l_bhw.dtype}")
        _, height, width = l_bhw.shape
        multiple = self.net.config.grid_px
        pad_h, pad_w = -height % multiple, -width % multiple
        x = torch.from_numpy(np.ascontiguousarray(l_bhw))[:, None].to(self.device)
        if pad_h or pad_w:
            # Edge pixels repeated: a reflected border could mirror a scratch into a new one.
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        logits = self.net(x.contiguous(memory_format=torch.channels_last))
        return logits[:, 0, :height, :width]


def load_damage_segmenter(device: str = "cpu", weights: Path | None = None) -> DamageSegmenter:
    """The shipped `damage-lite` (its SHA-256 checked against SPEC: a ModelError if it is not
    the declared file), or the network in `weights` (a training run's output; its own SHA-256
    recorded in the segmenter's spec). `device`: auto, cpu, cuda or cuda:N."""
    if weights is None:
        path, spec = verified_weights(SPEC), SPEC
    else:
        path = Path(weights)
        if not path.is_file():
            raise ModelError(f"{path}: no such damage segmenter weights file")
        spec = replace(SPEC, weights_sha256=file_sha256(path))
    return DamageSegmenter(load_damage_net(path), spec, resolve_device(device))


@runtime_checkable
class Segmenter(Protocol):
    spec: DamageSpec

    def probability(self, l_bhw: np.ndarray) -> np.ndarray: ...


segmenters: Registry[DamageSpec, Segmenter] = Registry(DamageSpec.kind, Segmenter)


def _check_shipped() -> None:
    verified_weights(SPEC)


@segmenters.register(SPEC, check=_check_shipped)
def _shipped() -> DamageSegmenter:
    """damage-lite for the pipeline, on the device PHOTOCHROM_DEVICE names (restore/models/device.py)."""
    return load_damage_segmenter(str(inference_device()))

# The segmenters, as the rest of the code asks for them.
shared_segmenter = segmenters.shared
damage_segmenter_specs = segmenters.specs


def check_damage_weights(name: str) -> None:
    """ModelError, one line, unless segmenter `name` is known and its weights here and intact."""
    segmenters.check(name)


def segmenter_sha256(name: str) -> str:
    """The SHA-256 of segmenter `name`'s weights: what result keys record."""
    return segmenters.get(name).weights_sha256
