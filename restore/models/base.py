"""The model interface: what a colorization model declares about itself and what it computes.

Array contract (checked once, in `check_batch`):
- `l_bhw`: CIE L*, B x S x S float32, 0..100, S = the model's `input_px`.
- `hint_ab_bhw2`: a*, b* of hints, B x S x S x 2 float32 (0 where there is no hint).
- `hint_mask_bhw`: B x S x S float32, 1 where a hint is given, 0 elsewhere.
- returns `ab_bhw2`: B x S x S x 2 float32 predicted a*, b*.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from restore.scanio.files import file_sha256


#: The environment variable naming the device the torch models run on (restore/models/device.py);
#: here, without torch, so that the command line can check it before any model loads.
DEVICE_VARIABLE = "PHOTOCHROM_DEVICE"

#: Where shipped weights live; files a user imports live under the user's model folder.
WEIGHTS_DIR = Path(__file__).with_name("weights")


class ModelError(Exception):
    """A model cannot be found or loaded; the message is one line for people."""


class NonFiniteOutput(ModelError):
    """A model returned NaN or infinite a*b*: its weights are most likely corrupt."""


@dataclass(frozen=True)
class Imported:
    """Published weights that users download and import themselves (`photochrom models
    import`, restore/models/imported.py): where to get them and how a checkpoint becomes our
    weights. Part of the spec, so a model's download is declared once, next to its adapter."""

    download: str  # where users get the file (and which file)
    build: Callable[[], Any]  # a fresh torch module of the architecture, for the strict check
    extract: Callable[[object], Mapping[str, Any]]  # checkpoint -> state dict of tensors
    safe_globals: tuple[type, ...] = ()  # classes allowed when unpickling, beyond tensors and containers


class Declaration(Protocol):
    """What every vocabulary's spec (a model's, a detector's, ...) declares about its weights:
    what restore/models/installed.py reads install state for. A registered spec never holds
    install state; only a loaded instance's spec records the weights it loaded."""

    kind: ClassVar[str]  # "model", "detector", ...: for messages
    name: str
    imported: Imported | None  # weights the user imports, or None
    weights_env: str | None  # an environment variable naming a weights file the user keeps, or None
    weights_sha256: str | None  # see ModelSpec


@dataclass(frozen=True)
class ModelSpec:
    """What a model is, declared next to its implementation."""

    kind: ClassVar[str] = "model"

    name: str
    description: str
    input_px: int  # square input side the model runs at
    receptive_field_px: int  # at input resolution; tile overlap is derived from it
    takes_hints: bool  # uses hint_ab/hint_mask (curator hints and global context)
    licence: str
    weights_file: str | None = None  # shipped: relative to restore/models/weights; imported: the stored file's name
    # Shipped weights' SHA-256, declared. None in the declaration of imported weights, which
    # are install state (restore/models/installed.py: `weights_sha256(spec)`); a loaded
    # model's own spec carries the SHA-256 of the weights it loaded, for provenance.
    weights_sha256: str | None = None
    batch_size: int = 8  # patches per call that fill the model well on a CPU
    needs_hints: bool = False  # colours only from hints (without them the result is gray)
    working_px: int | None = None  # the working resolution's long side, if the model needs its own
    imported: Imported | None = None  # published weights the user downloads and imports
    weights_env: str | None = None  # a weights file the user names in this environment variable

    @property
    def overlap_px(self) -> int:
        """Tile overlap at input resolution.

        Pixels within half a receptive field of a patch's border see only part of their
        context, so neighbouring patches overlap by that much and blend there. Capped at
        a quarter of the input: beyond it, each pixel would be computed four times or more.
        """
        return min((self.receptive_field_px + 1) // 2, self.input_px // 4)


@runtime_checkable
class Colorizer(Protocol):
    spec: ModelSpec

    def colorize(self, l_bhw: np.ndarray, hint_ab_bhw2: np.ndarray, hint_mask_bhw: np.ndarray) -> np.ndarray:
        """Predict a*b* for a batch of L* patches; see the module docstring for the arrays."""
        ...


def check_batch(spec: ModelSpec, l_bhw: np.ndarray, hint_ab_bhw2: np.ndarray, hint_mask_bhw: np.ndarray) -> None:
    """Raise ValueError unless the arrays meet the contract in the module docstring."""
    s = spec.input_px
    if l_bhw.ndim != 3 or l_bhw.shape[1:] != (s, s) or l_bhw.dtype != np.float32:
        raise ValueError(f"{spec.name}: l_bhw must be B x {s} x {s} float32, got {l_bhw.shape} {l_bhw.dtype}")
    if hint_ab_bhw2.shape != l_bhw.shape + (2,) or hint_mask_bhw.shape != l_bhw.shape:
        raise ValueError(f"{spec.name}: hint arrays {hint_ab_bhw2.shape}, {hint_mask_bhw.shape} do not match {l_bhw.shape}")


def check_output(spec: ModelSpec, ab: np.ndarray) -> np.ndarray:
    """`ab` (a model's a*b*), after checking every value is finite.

    Downstream, the recombination maps non-finite chroma to gray so that nothing can crash
    its compiled loop; without this check a NaN from corrupt weights would quietly become a
    gray result instead of a failure."""
    if not np.isfinite(ab).all():
        raise NonFiniteOutput(f"model {spec.name} produced non-finite colours (NaN/inf); its weights may be corrupt")
    return ab


def verified_weights(spec: ModelSpec, directory: Path = WEIGHTS_DIR) -> Path:
    """The path of `spec`'s weights file, after checking it exists and has its SHA-256."""
    if spec.weights_file is None:
        raise ModelError(f"model {spec.name!r} has no weights file")
    path = directory / spec.weights_file
    if not path.is_file():
        raise ModelError(f"{path}: weights file of model {spec.name!r} is missing")
    check_sha256(path, str(spec.weights_sha256), f"model {spec.name!r}'s")
    return path


def check_sha256(path: Path, expected: str, whose: str) -> str:
    """`path`'s SHA-256, after checking it is `expected` (else a ModelError saying `whose`
    checksum the file fails)."""
    actual = file_sha256(path)
    if actual != expected:
        raise ModelError(f"{path}: SHA-256 {actual[:16]}... is not {whose} {expected[:16]}...: the file is corrupted or replaced")
    return actual
