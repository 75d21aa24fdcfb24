"""`maskrcnn_resnet50_fpn`: torchvision's Mask R-CNN (ResNet-50 FPN) as the instance detector,
always available (torchvision is a dependency); its weights are a file the user imports.

The architecture is built here without touching torchvision's weight download: a ResNet-50
FPN backbone with FrozenBatchNorm2d (as the published COCO checkpoint was saved: its
batch norms have no `num_batches_tracked`) and MaskRCNN's heads for COCO's 91 classes.
`photochrom models import maskrcnn_resnet50_fpn FILE` takes torchvision's published
`maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth`, or the state dict of any
`maskrcnn_resnet50_fpn(num_classes=91)` (a fine-tuned one; its BatchNorm counters are
dropped, they play no part in inference), loads it strictly and stores it with its SHA-256,
checked on every load. Nothing is downloaded at run time.

Input: the L* image at the detection size, / 100, replicated to three channels (as
InstColorization's detector saw gray photos: OpenCV's 8-bit L channel stacked three
times). torchvision's transform normalises it with ImageNet's mean and std; its own
resizing is turned off (min and max size set to the image's) so the detection size the
pipeline chose is the one used. The score threshold is the pipeline's minimum score, set
per call, so low thresholds (tests with random weights) still return detections.
"""

from __future__ import annotations

import numpy as np
import torch
from torchvision.models.detection import MaskRCNN, MaskRCNN_ResNet50_FPN_Weights
from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
from torchvision.ops.misc import FrozenBatchNorm2d

from restore.models.base import Imported
from restore.models.device import batch_tensors, place, to_numpy
from restore.models.detectors import DetectorSpec, Instance, check_input, instances_from, register_detector
from restore.models.imported import load_imported, state_dict_in

NAME = "maskrcnn_resnet50_fpn"
COCO_CLASSES = 91  # torchvision's COCO category ids, background and unused ids included
# The published weights' metadata ships inside torchvision; reading it downloads nothing.
_PUBLISHED = MaskRCNN_ResNet50_FPN_Weights.COCO_V1


def build() -> MaskRCNN:
    """A fresh Mask R-CNN of the published checkpoint's layout (random weights)."""
    backbone = resnet_fpn_backbone(backbone_name="resnet50", weights=None, norm_layer=FrozenBatchNorm2d, trainable_layers=3)
    return MaskRCNN(backbone, num_classes=COCO_CLASSES)


def state_dict_of(checkpoint: object) -> dict[str, torch.Tensor]:
    """The state dict in a checkpoint: the file itself (the published file is a plain state
    dict) or under "model" / "state_dict" (torchvision's reference training scripts save
    {"model": ...}); BatchNorm counters left out (FrozenBatchNorm2d has none)."""
    state = state_dict_in(checkpoint, ("model", "state_dict"))
    return {k: v for k, v in state.items() if not (isinstance(k, str) and k.endswith(".num_batches_tracked"))}


SPEC = DetectorSpec(
    name=NAME,
    description="torchvision Mask R-CNN, ResNet-50 FPN, COCO classes: people and objects with soft masks",
    licence=(
        "BSD-3-Clause (torchvision code); weights trained on COCO 2017 (annotations CC BY 4.0, "
        "images under their Flickr owners' terms)"
    ),
    imported=Imported(download=f"{_PUBLISHED.url} (torchvision's published COCO weights)", build=build, extract=state_dict_of),
    labels=tuple(_PUBLISHED.meta["categories"]),
)


@register_detector(SPEC)
class MaskRCNNDetector:
    def __init__(self) -> None:
        net = build()
        self.spec = load_imported(SPEC, net)
        self.net, self.device = place(net)

    def detect(self, l_hw: np.ndarray, min_score: float) -> list[Instance]:
        check_input(NAME, l_hw)
        height, width = l_hw.shape
        (l_t,) = batch_tensors(self.device, l_hw)
        image = (l_t / 100).expand(3, height, width)
        self.net.roi_heads.score_thresh = float(min_score)
        self.net.transform.min_size = (min(height, width),)
        self.net.transform.max_size = max(height, width)
        with torch.inference_mode():
            found = self.net([image])[0]
        masks = to_numpy(found["masks"][:, 0])  # N x H x W probabilities, pasted into the image
        labels = found["labels"].cpu().numpy()
        return instances_from(to_numpy(found["boxes"]), to_numpy(found["scores"]), labels, masks, self.spec.labels)
