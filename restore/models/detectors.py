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

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Protocol, runtime_checkable

import numpy as np

from restore.models.base import Imported
from restore.models.registry import Registry


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

    kind: ClassVar[str] = "detector"

    name: str
    description: str
    licence: str
    imported: Imported | None = None  # published weights the user downloads and imports
    # None in a declaration: the weights' SHA-256 is install state (restore/models/installed.py);
    # a loaded detector's own spec carries that of the weights it loaded, for provenance.
    weights_sha256: str | None = None
    weights_env: str | None = None  # a weights file the user names in this environment variable
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


detectors: Registry[DetectorSpec, Detector] = Registry(DetectorSpec.kind, Detector)

# The detectors, as the rest of the code asks for them.
register_detector = detectors.register
detector_specs = detectors.specs
get_detector_spec = detectors.get
detector_problem = detectors.problem
create_detector = detectors.create
shared_detector = detectors.shared


def is_detector(name: str) -> bool:
    return name in detectors
