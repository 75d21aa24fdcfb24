"""How a result's detections are recorded: boxes, scores and labels in the scan's pixels
(the result file's XMP), plus each mask as COCO run-length encoding (the catalog).

Masks are binarised at p >= 0.5 and encoded over the whole detection image as COCO's
uncompressed RLE ({"size": [h, w], "counts": [...]}: run lengths in column-major order,
starting with a run of zeros), so `pycocotools.mask.frPyObjects` reads them as they are
and a mask costs about two numbers per image column it crosses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from restore.models.detectors import Instance

RECORD_FORMAT = "photochrom.instances/1"


@dataclass(frozen=True, eq=False)
class Detections:
    """What the instance pass found and used in one scan; instances at detection size."""

    detector: str
    weights_sha256: str | None
    size_hw: tuple[int, int]  # the detection image's height and width
    instances: tuple[Instance, ...]  # the kept ones, best score first

    def summary(self, scan_hw: tuple[int, int]) -> dict[str, object]:
        """Detector, weights and each instance's label, score and box in scan pixels
        [x0, y0, x1, y1]: small enough for a result file's XMP."""
        return {
            "format": RECORD_FORMAT,
            "detector": self.detector,
            "weights_sha256": self.weights_sha256,
            "instances": [self._row(i, scan_hw) for i in self.instances],
        }

    def record(self, scan_hw: tuple[int, int]) -> dict[str, object]:
        """The summary plus each mask (COCO RLE at the detection size, given as `size`)."""
        document = self.summary(scan_hw)
        document["size"] = list(self.size_hw)
        for row, instance in zip(document["instances"], self.instances):  # type: ignore[call-overload]
            row["mask_rle"] = mask_rle(instance, self.size_hw)
        return document

    def _row(self, instance: Instance, scan_hw: tuple[int, int]) -> dict[str, object]:
        scale_y, scale_x = scan_hw[0] / self.size_hw[0], scan_hw[1] / self.size_hw[1]
        x0, y0, x1, y1 = instance.box
        box = [x0 * scale_x, y0 * scale_y, x1 * scale_x, y1 * scale_y]
        return {"label": instance.label, "score": round(instance.score, 4), "box": [round(v, 1) for v in box]}


def mask_rle(instance: Instance, size_hw: tuple[int, int]) -> dict[str, object]:
    """The instance's mask (p >= 0.5) over the whole image, as COCO uncompressed RLE."""
    binary = np.zeros(size_hw, bool)
    x0, y0, x1, y1 = instance.box
    binary[y0:y1, x0:x1] = instance.mask_hw >= 0.5
    flat = binary.ravel(order="F")
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    edges = np.concatenate([[0], changes, [flat.size]])
    counts = np.diff(edges).tolist()
    if flat.size and flat[0]:
        counts = [0, *counts]  # COCO's counts start with a run of zeros
    return {"size": list(size_hw), "counts": counts}


def decode_rle(rle: dict[str, object]) -> np.ndarray:
    """The H x W boolean mask of a COCO uncompressed RLE (the inverse of `mask_rle`)."""
    height, width = rle["size"]  # type: ignore[misc]
    values = np.zeros(len(rle["counts"]), bool)  # type: ignore[arg-type]
    values[1::2] = True
    flat = np.repeat(values, rle["counts"])  # type: ignore[arg-type]
    return flat.reshape((width, height)).T
