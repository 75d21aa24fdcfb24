"""The detector interface for instance-aware colorization, and its one registry: filled by
`@register_detector` next to each backend, read through `create_detector`.

A detector finds people and objects in a gray scan so that each can be colorized on its
own (restore/instances.py). Backends: `maskrcnn_resnet50_fpn` (torchvision, weights
imported with `photochrom models import`) and `detectron2` (optional, installed from
source). Detectors are not colorizers: they live in their own registry, so none can be
picked as `--model`.

Array contract (written once here, checked in `check_input`):
- in: `l_hw`, the scan's CIE L*, H x W float32, 0..100, at the detection size the pipeline
  chose; each backend turns it into its own input.
- out: `Instance`s in that image's pixel grid, best score first.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from restore.models.base import ModelError


@dataclass(frozen=True, eq=False)
class Instance:
    """One detected person or object.

    `box`: (x0, y0, x1, y1) integer pixels of the image it was found in, x1 and y1
    exclusive (boxes are rounded outwards). `mask_hw`: (y1 - y0) x (x1 - x0) float32 in
    0..1 over the box, the probability that each pixel belongs to the object (soft, as
    Mask R-CNN predicts it; a backend with binary masks gives 0 and 1).
    """

    box: tuple[int, int, int, int]
    mask_hw: np.ndarray
    score: float
    label: str

    def __post_init__(self) -> None:
        x0, y0, x1, y1 = self.box
        if x1 <= x0 or y1 <= y0:
            raise ValueError(f"empty instance box {self.box}")
        if self.mask_hw.shape != (y1 - y0, x1 - x0) or self.mask_hw.dtype != np.float32:
            raise ValueError(f"instance mask must be {y1 - y0} x {x1 - x0} float32, got {self.mask_hw.shape} {self.mask_hw.dtype}")


def instance_from_full_mask(box_xyxy: tuple[float, float, float, float], mask_hw: np.ndarray, score: float, label: str) -> Instance | None:
    """An Instance from a float box and a mask over the whole image (as detectors give them):
    the box rounded outwards and clipped to the image, the mask cut to it; None if empty."""
    height, width = mask_hw.shape
    x0, y0 = max(0, int(np.floor(box_xyxy[0]))), max(0, int(np.floor(box_xyxy[1])))
    x1, y1 = min(width, int(np.ceil(box_xyxy[2]))), min(height, int(np.ceil(box_xyxy[3])))
    if x1 <= x0 or y1 <= y0:
        return None
    mask = np.ascontiguousarray(mask_hw[y0:y1, x0:x1], dtype=np.float32)
    return Instance((x0, y0, x1, y1), mask, float(score), label)


def instances_from(
    boxes_n4: np.ndarray, scores_n: np.ndarray, labels_n: np.ndarray, masks_nhw: np.ndarray, names: Sequence[str]
) -> list[Instance]:
    """A backend's raw output (boxes x0, y0, x1, y1; scores; class indices; masks over the whole
    image) as Instances, best score first; a class index without a name keeps its number."""
    instances = []
    for box, score, label, mask in zip(boxes_n4, scores_n, labels_n, masks_nhw):
        name = names[label] if 0 <= label < len(names) else str(int(label))
        instance = instance_from_full_mask(tuple(box), np.asarray(mask, np.float32), float(score), name)
        if instance is not None:
            instances.append(instance)
    return sorted(instances, key=lambda i: -i.score)


@dataclass(frozen=True)
class DetectorSpec:
    """What a detector is, declared next to its backend."""

    name: str
    description: str
    licence: str
    # Published weights the user downloads and imports (`photochrom models import`): where
    # to get them. weights_sha256 is that of the weights installed (or None).
    download: str | None = None
    weights_sha256: str | None = None
    labels: tuple[str, ...] = field(default=(), repr=False)  # class names by index, where fixed


@runtime_checkable
class Detector(Protocol):
    spec: DetectorSpec

    def detect(self, l_hw: np.ndarray, min_score: float) -> list[Instance]:
        """Instances scoring at least `min_score` in the L* image; see the module docstring."""
        ...


def check_input(name: str, l_hw: np.ndarray) -> None:
    if l_hw.ndim != 2 or l_hw.dtype != np.float32:
        raise ValueError(f"{name}: l_hw must be H x W float32, got {l_hw.shape} {l_hw.dtype}")


@dataclass(frozen=True)
class _Entry:
    spec: DetectorSpec
    factory: Callable[[], Detector]
    # Raises ModelError saying why the detector cannot be used here (weights missing,
    # package missing); cheap, without loading the network.
    check: Callable[[], None] | None
    # The SHA-256 of the weights the detector would load now (None when there are none).
    installed_sha256: Callable[[], str | None] | None


_DETECTORS: dict[str, _Entry] = {}


def register_detector(
    spec: DetectorSpec,
    *,
    check: Callable[[], None] | None = None,
    installed_sha256: Callable[[], str | None] | None = None,
) -> Callable[[Callable[[], Detector]], Callable[[], Detector]]:
    """Decorator: register a detector factory under spec.name. A spec with `download`
    gets the imported-weights check and SHA-256 unless the backend gives its own."""

    def add(factory: Callable[[], Detector]) -> Callable[[], Detector]:
        if spec.name in _DETECTORS and _DETECTORS[spec.name].factory is not factory:
            raise ModelError(f"detector name {spec.name!r} is registered twice")
        _DETECTORS[spec.name] = _Entry(spec, factory, check, installed_sha256)
        return factory

    return add


def _load_all() -> None:
    from restore.models.registry import model_specs

    model_specs()  # imports every module in restore/models and PHOTOCHROM_MODEL_MODULES


def detector_specs() -> list[DetectorSpec]:
    _load_all()
    return [get_detector_spec(name) for name in sorted(_DETECTORS)]


def _entry(name: str) -> _Entry:
    _load_all()
    if name not in _DETECTORS:
        known = ", ".join(sorted(_DETECTORS)) or "none"
        raise ModelError(f"unknown detector {name!r}; available: {known}")
    return _DETECTORS[name]


def is_detector(name: str) -> bool:
    _load_all()
    return name in _DETECTORS


def get_detector_spec(name: str) -> DetectorSpec:
    """The detector's spec, with the SHA-256 of the weights installed for it (or None)."""
    from dataclasses import replace

    entry = _entry(name)
    if entry.installed_sha256 is not None:
        return replace(entry.spec, weights_sha256=entry.installed_sha256())
    if entry.spec.download is not None:
        from restore.models.imported import installed_spec

        return installed_spec(entry.spec)
    return entry.spec


def detector_problem(name: str) -> str | None:
    """Why detector `name` cannot be used here, in one line, or None if it can.

    For imported weights this checks the manifest and the stored file's SHA-256 (so a job
    learns of a missing or damaged file once, before its scans run), without loading them.
    """
    try:
        entry = _entry(name)
        if entry.check is not None:
            entry.check()
        elif entry.spec.download is not None:
            from restore.models.imported import check_installed

            check_installed(entry.spec.name, entry.spec.download, "detector")
    except ModelError as exc:
        return str(exc)
    return None


def create_detector(name: str) -> Detector:
    entry = _entry(name)
    detector = entry.factory()
    if not isinstance(detector, Detector) or detector.spec.name != name:
        raise ModelError(f"detector {name!r} does not implement the Detector protocol with its registered spec")
    return detector


_SHARED: dict[str, Detector] = {}


def shared_detector(name: str) -> Detector:
    """One instance of each detector per process, loaded on first use and kept (a Dask
    worker loads the weights once, not once per scan)."""
    if name not in _SHARED:
        _SHARED[name] = create_detector(name)
    return _SHARED[name]


def env_path(variable: str) -> str | None:
    """A path named by an environment variable (which Dask workers inherit), or None."""
    value = os.environ.get(variable, "").strip()
    return value or None
