"""Where the torch models run: the GPU when there is one, else the CPU.

PHOTOCHROM_DEVICE chooses: `auto` (the default: the first CUDA GPU torch sees, else the
CPU), `cpu`, `cuda` or `cuda:N`. `photochrom --device` sets it; Dask workers inherit it
with the rest of the environment. The device decides where arithmetic runs, not what
is computed: a GPU's a*b* differ from the CPU's by float rounding only (TF32 is off),
so results are keyed by model and settings, not by device.
"""

from __future__ import annotations

import os
import re

import numpy as np
import torch
from torch import nn

from restore.models.base import DEVICE_VARIABLE, ModelError

_NAME = re.compile(r"auto|cpu|cuda(:\d+)?")


def resolve_device(name: str) -> torch.device:
    """auto (the first CUDA GPU torch sees, else the CPU), cpu, cuda or cuda:N as a torch
    device; a ModelError if the name is unknown or names a GPU torch does not see."""
    name = name.strip().lower() or "auto"
    if not _NAME.fullmatch(name):
        raise ModelError(f"device {name!r}: expected auto, cpu, cuda or cuda:N")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        index = int(name.partition(":")[2] or 0)
        if not torch.cuda.is_available():
            raise ModelError(f"device {name}: torch sees no CUDA GPU (use auto or cpu)")
        if index >= torch.cuda.device_count():
            raise ModelError(f"device {name}: torch sees {torch.cuda.device_count()} CUDA GPU(s)")
    return torch.device(name)


def inference_device() -> torch.device:
    """The device PHOTOCHROM_DEVICE names (see the module docstring)."""
    try:
        return resolve_device(os.environ.get(DEVICE_VARIABLE, "auto"))
    except ModelError as exc:
        raise ModelError(f"{DEVICE_VARIABLE}: {exc}") from None


def place(net: nn.Module) -> tuple[nn.Module, torch.device]:
    """The network in eval mode on the inference device, and that device."""
    device = inference_device()
    if device.type == "cuda":
        # cuDNN's convolutions use TF32 by default (10-bit mantissas); in float32 proper a
        # GPU's result stays within rounding of the CPU's. The networks are small enough
        # for this not to matter to speed.
        torch.backends.cudnn.allow_tf32 = False
    return net.eval().to(device), device


def batch_tensors(device: torch.device, *arrays_bhw: np.ndarray) -> tuple[torch.Tensor, ...]:
    """numpy batches (the model contract's float32 arrays) as tensors on the device."""
    return tuple(torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(device) for a in arrays_bhw)


def channels_first(
    device: torch.device, l_bhw: np.ndarray, hint_ab_bhw2: np.ndarray, hint_mask_bhw: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The model contract's batch (restore/models/base.py) as the B x C x H x W tensors
    convolutional networks take: L* B x 1 x H x W, hint a*b* B x 2 x H x W, mask B x 1 x H x W."""
    l_t, hint_ab_t, hint_mask_t = batch_tensors(device, l_bhw, hint_ab_bhw2, hint_mask_bhw)
    return l_t[:, None], hint_ab_t.permute(0, 3, 1, 2), hint_mask_t[:, None]


def to_numpy(tensor: torch.Tensor) -> np.ndarray:
    """A result tensor as a C-contiguous float32 array in host memory."""
    return np.ascontiguousarray(tensor.detach().to("cpu", torch.float32).numpy())


def ab_to_numpy(ab_b2hw: torch.Tensor) -> np.ndarray:
    """A network's B x 2 x H x W a*b* as the contract's B x H x W x 2 float32 array."""
    return to_numpy(ab_b2hw.permute(0, 2, 3, 1))
