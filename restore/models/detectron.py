"""`detectron2`: any detectron2 instance-segmentation model as the detector (optional).

detectron2 is not on PyPI; it is installed from source against the installed torch
(README, "Instance-aware colorization"). The user names the model's config file and its
weights file in PHOTOCHROM_DETECTRON2_CONFIG and PHOTOCHROM_DETECTRON2_WEIGHTS (which Dask
workers inherit). The config's own MODEL.WEIGHTS (often a URL) is replaced by that local
file, so nothing is downloaded at run time; the weights' SHA-256 is recorded with every
result, and a result made with other weights is not current.

Input: the L* image at the detection size as an 8-bit gray image in all three channels
(L* x 2.55, as InstColorization ran detectron2 on OpenCV's L channel). detectron2's own
resizing is set to the image's size and its score threshold to the pipeline's minimum
score. Its masks are binary (it pastes them at 0.5); the pipeline's feathering softens them.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from restore.models.base import ModelError
from restore.models.detectors import DetectorSpec, Instance, check_input, instances_from, register_detector
from restore.models.installed import env_path, weights_sha256

CONFIG_ENV = "PHOTOCHROM_DETECTRON2_CONFIG"
WEIGHTS_ENV = "PHOTOCHROM_DETECTRON2_WEIGHTS"
INSTALL = "pip install --no-build-isolation 'git+https://github.com/facebookresearch/detectron2.git'"

SPEC = DetectorSpec(
    name="detectron2",
    description=f"a detectron2 instance-segmentation model: its config in ${CONFIG_ENV}, its weights in ${WEIGHTS_ENV}",
    licence="Apache-2.0 (detectron2); the weights' own terms (the model zoo's are trained on COCO)",
    weights_env=WEIGHTS_ENV,
)


def _files() -> tuple[Path, Path]:
    """The config and weights files, after checking that detectron2 and both files are there."""
    try:
        import detectron2  # noqa: F401
    except ImportError:
        raise ModelError(f"detector 'detectron2' needs the detectron2 package, which is not installed: {INSTALL} (see the README)") from None
    config, weights = env_path(CONFIG_ENV), env_path(WEIGHTS_ENV)
    if config is None or weights is None:
        raise ModelError(f"detector 'detectron2' needs ${CONFIG_ENV} (a config .yaml) and ${WEIGHTS_ENV} (its weights file) set")
    for path in (config, weights):
        if not Path(path).is_file():
            raise ModelError(f"{path}: no such file (detector 'detectron2')")
    return Path(config), Path(weights)


def check() -> None:
    """The package and both files there (the default check would look at the weights only)."""
    _files()


@register_detector(SPEC, check=check)
class Detectron2Detector:
    def __init__(self) -> None:
        config, weights = _files()
        import torch
        from detectron2.config import get_cfg
        from detectron2.data import MetadataCatalog
        from detectron2.engine import DefaultPredictor

        cfg = get_cfg()
        cfg.merge_from_file(str(config))
        cfg.MODEL.WEIGHTS = str(weights)  # a local file: never the config's URL
        cfg.MODEL.DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
        self.predictor = DefaultPredictor(cfg)
        datasets = cfg.DATASETS.TEST
        classes = MetadataCatalog.get(datasets[0]).get("thing_classes", None) if datasets else None
        self.spec = replace(SPEC, weights_sha256=weights_sha256(SPEC), labels=tuple(classes or ()))

    def detect(self, l_hw: np.ndarray, min_score: float) -> list[Instance]:
        from detectron2.data import transforms as T

        check_input(SPEC.name, l_hw)
        height, width = l_hw.shape
        gray = np.clip(np.rint(l_hw * 2.55), 0, 255).astype(np.uint8)
        self.predictor.aug = T.ResizeShortestEdge([min(height, width)] * 2, max(height, width))
        self.predictor.model.roi_heads.box_predictor.test_score_thresh = float(min_score)
        found = self.predictor(np.repeat(gray[..., None], 3, axis=2))["instances"].to("cpu")
        return instances_from(
            found.pred_boxes.tensor.numpy(), found.scores.numpy(), found.pred_classes.numpy(), found.pred_masks.numpy(), self.spec.labels
        )
