"""What decides a result's pixels: the restore settings and the instance pass's, with every
default in one place (the command line builds them from what the user passed). Recorded with
every job and result."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from restore.scanio.write import FORMAT_EXTENSIONS

DEFAULT_MODEL = "lite"
DEFAULT_SATURATION = 1.15
DEFAULT_DETECTOR = "maskrcnn_resnet50_fpn"


@dataclass(frozen=True)
class InstanceSettings:
    """The instance pass's settings (recorded with each result made with them).

    Defaults, and why:
    - `min_score` 0.7: InstColorization's detector threshold (inference_bbox.py); Mask R-CNN's
      false positives on old photos (stains, wallpaper) mostly score below it.
    - `min_area` 0.005 of the scan, counted on the mask (p >= 0.5): smaller objects are a few
      dozen working pixels, mostly feathered edge, and the patch pass already sees them whole.
    - `max_instances` 16, best scores first: InstColorization keeps 8 boxes, but archive group
      photos (classes, teams, crews) hold 10 to 30 people, and when only some figures get
      their own pass the others look different. Each costs one model input (a 3:2 scan's
      patch pass takes 9 at the default working scale), and they spread over Dask workers.
    - `detection_px` 800 on the long side: Mask R-CNN was trained with short sides of 640 to
      800 px, and a person in a 20-person group is still ~60 px tall; it costs a few seconds
      per scan on a CPU.
    - `feather_px` 2.0: the Gaussian's sigma at working resolution; the blend spans about
      +-2 sigma, wider than a detector's mask error at the object's edge, and the guided
      upsampling then snaps chroma to the scan's own edges (recombine.GUIDE_RADIUS_WORKING_PX).
    """

    detector: str = DEFAULT_DETECTOR
    min_score: float = 0.7
    min_area: float = 0.005
    max_instances: int = 16
    detection_px: int = 800
    feather_px: float = 2.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_score <= 1.0:
            raise ValueError(f"instance min_score must be between 0 and 1, got {self.min_score}")
        if not 0.0 <= self.min_area < 1.0:
            raise ValueError(f"instance min_area must be a fraction of the scan in [0, 1), got {self.min_area}")
        if self.max_instances < 1:
            raise ValueError(f"max_instances must be at least 1, got {self.max_instances}")
        if self.detection_px < 32:
            raise ValueError(f"detection_px must be at least 32, got {self.detection_px}")
        if self.feather_px < 0:
            raise ValueError(f"feather_px cannot be negative, got {self.feather_px}")


@dataclass(frozen=True)
class RestoreSettings:
    """Everything that decides a result's pixels (recorded with every job and result)."""

    model: str = DEFAULT_MODEL
    saturation: float = DEFAULT_SATURATION
    working_scale: float = 3.0  # working resolution's long side, in model inputs
    output_format: str | None = None  # "TIFF", "PNG", "JPEG"; None = the scan's own
    include_colour: bool = False  # also restore scans that are already in colour
    instances: InstanceSettings | None = None  # None: no instance pass

    def __post_init__(self) -> None:
        if not 0.0 <= self.saturation <= 4.0:
            raise ValueError(f"saturation must be between 0 and 4, got {self.saturation}")
        if self.working_scale < 1.0:
            raise ValueError(f"working_scale must be at least 1, got {self.working_scale}")
        if self.output_format not in (None, *FORMAT_EXTENSIONS):
            raise ValueError(f"output format must be one of {sorted(FORMAT_EXTENSIONS)}, got {self.output_format}")

    def to_dict(self) -> dict[str, object]:
        """The settings as recorded with a result. Without instances the key is left out, so
        results made before instances existed are still current (jobs/run.py result_key)."""
        document = asdict(self)
        if self.instances is None:
            del document["instances"]
        return document

    @classmethod
    def from_dict(cls, document: dict[str, object]) -> RestoreSettings:
        """The settings `to_dict` recorded (a job's JSON read back)."""
        instances = document.get("instances")
        return cls(**{**document, "instances": InstanceSettings(**instances) if isinstance(instances, dict) else None})
