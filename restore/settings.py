"""Settings in one place: what decides a result's pixels (the restore settings and the instance
pass's, recorded with every job and result), every default the command line shows for them
and for a job's retries and ingest's pixel limit, and `build_restore_settings`, which makes
them from the flags the user passed. Light to import (`photochrom --help` reads the
defaults): the model registry is loaded only to check a model's or a detector's name."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import TypeVar

from restore.scanio.formats import DEFAULT_MAX_PIXELS, FORMAT_EXTENSIONS  # noqa: F401 - DEFAULT_MAX_PIXELS: every default in one place

DEFAULT_MODEL = "lite"
# The chroma gain in midtones (restore/recombine.py): a scan colorized without hints is boosted,
# one with a hint file is not (boosting the colours hints gave cost 0.6-0.8 dB with 1 to 100
# hints, docs/benchmarks.md "Saturation"). An explicit --saturation applies to both.
DEFAULT_SATURATION = 1.15
HINTED_SATURATION = 1.0
DEFAULT_DETECTOR = "maskrcnn_resnet50_fpn"
DEFAULT_SEGMENTER = "damage-lite"  # the damage segmenter --repair uses (restore/models/damage.py)
DEFAULT_RETRIES = 2  # a scan whose worker dies is tried 1 + this many times (jobs/run.py)
DEFAULT_SCHEDULER = "local"  # a Dask LocalCluster on this machine (jobs/scheduler.py)
DEFAULT_WORKERS = 0  # its worker processes; 0: one per core

# The other commands' defaults: their settings objects live with their code and take these.
DEFAULT_INGEST_WORKERS = 0  # threads hashing and probing; 0: one per core (catalog/ingest.py)
DEFAULT_EXPORT_RESULTS = "current"  # each scan's newest result (catalog/export.py)
DEFAULT_BASE_URL = "http://localhost:8000/"  # where an export is served: IIIF ids are absolute URLs
DEFAULT_EVALUATE_MODELS = (DEFAULT_MODEL, "propagate")  # jobs/evaluate.py
DEFAULT_EVALUATE_COUNTS = (0, 1, 10, 50, 100)  # hints per photo (iColoriT's protocol)
DEFAULT_EVALUATE_SEED = 2024
DEFAULT_EVALUATE_WORKERS = 1
DEFAULT_EVALUATE_OUT = "evaluation"


@dataclass(frozen=True)
class TrainDefaults:
    """`photochrom train`'s defaults (restore/models/training.py TrainSettings takes them)."""

    out: str = "train-out"
    epochs: int = 40
    batch_size: int = 32
    learning_rate: float = 6e-4
    warmup_steps: int = 300
    seed: int = 0
    device: str = "auto"
    pretrained: bool = True


TRAIN_DEFAULTS = TrainDefaults()


@dataclass(frozen=True)
class RepairTrainDefaults:
    """`photochrom train-repair`'s defaults (restore/models/damage_training.py DamageTrainSettings takes them)."""

    out: str = "train-out/damage-lite.pt"
    steps: int = 8000
    batch_size: int = 16
    learning_rate: float = 2e-3
    seed: int = 0
    crop_px: int = 160
    # The stride-16 context branch's channels (0: none) and its blocks' dilations.
    context_channels: int = 0
    context_dilations: tuple[int, ...] = (1, 2, 4)
    # Share of crops centred on the initial weights' false detections (hard negatives; 0: none).
    hard_share: float = 0.0


REPAIR_TRAIN_DEFAULTS = RepairTrainDefaults()

#: The output format names --format takes (any case), and the format each means.
OUTPUT_FORMAT_NAMES = {"tif": "TIFF", "tiff": "TIFF", "png": "PNG", "jpg": "JPEG", "jpeg": "JPEG"}


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
class RepairSettings:
    """Damage repair's settings (recorded with each result made with them): restore/repair/.

    Defaults, and why (docs/benchmarks.md, "Repair", has the measurements):
    - `threshold` 0.95: the damage probability above which a pixel is damaged; chosen on a
      held-out split of synthetic damage on train photos (never dev) to keep the pixels
      flagged on clean, textured photos near 0.1% (restore/models/weights/damage-lite.md);
      equal to damage-lite's declared default (a test holds them together).
    - `margin_px` 1: the detected mask is dilated by this many pixels before filling, so the
      soft edge of a scratch (its anti-aliased rim, which the detector leaves out) is filled
      too; a wider margin fills more undamaged pixels for nothing.
    - `method`: the fill (restore/repair/inpaint.py), the best measured on dev.
    """

    segmenter: str = DEFAULT_SEGMENTER
    threshold: float = 0.95
    margin_px: int = 1
    method: str = "directional"

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"repair threshold must be between 0 and 1 (exclusive), got {self.threshold}")
        if not 0 <= self.margin_px <= 16:
            raise ValueError(f"repair margin must be 0 to 16 pixels, got {self.margin_px}")


@dataclass(frozen=True)
class RestoreSettings:
    """Everything that decides a result's pixels (recorded with every job and result)."""

    model: str = DEFAULT_MODEL
    saturation: float | None = None  # None: DEFAULT_SATURATION, or HINTED_SATURATION with a hint file (saturation_for)
    working_scale: float = 3.0  # working resolution's long side, in model inputs
    output_format: str | None = None  # "TIFF", "PNG", "JPEG"; None = the scan's own
    include_colour: bool = False  # also restore scans that are already in colour
    instances: InstanceSettings | None = None  # None: no instance pass
    repair: RepairSettings | None = None  # None: damage is not repaired
    colorize: bool = True  # False: repair only, the result is the scan's repaired gray

    def __post_init__(self) -> None:
        if not self.colorize and self.repair is None:
            raise ValueError("a result that is not colorized must be repaired")
        if not self.colorize and self.instances is not None:
            raise ValueError("instances are colorized on their own: they need colorization")
        if self.saturation is not None and not 0.0 <= self.saturation <= 4.0:
            raise ValueError(f"saturation must be between 0 and 4, got {self.saturation}")
        if self.working_scale < 1.0:
            raise ValueError(f"working_scale must be at least 1, got {self.working_scale}")
        if self.output_format not in (None, *FORMAT_EXTENSIONS):
            raise ValueError(f"output format must be one of {sorted(FORMAT_EXTENSIONS)}, got {self.output_format}")

    def saturation_for(self, hinted: bool) -> float:
        """The chroma gain of a result: the one asked for, else by default DEFAULT_SATURATION,
        or HINTED_SATURATION when the scan is `hinted` (colorized with a hint file)."""
        if self.saturation is not None:
            return self.saturation
        return HINTED_SATURATION if hinted else DEFAULT_SATURATION

    def applied(self, hinted: bool) -> RestoreSettings:
        """These settings with the saturation a `hinted` (or unhinted) scan gets filled in: what
        made the pixels, as a result's key and its XMP record them."""
        return replace(self, saturation=self.saturation_for(hinted))

    def to_dict(self) -> dict[str, object]:
        """The settings as recorded with a result. Keys of features that are off (instances,
        repair, colorize's True) are left out, so results made before those features existed
        are still current (jobs/run.py result_key). A repair-only result names no model."""
        document = asdict(self)
        if self.instances is None:
            del document["instances"]
        if self.repair is None:
            del document["repair"]
        if self.colorize:
            del document["colorize"]
        else:
            del document["model"], document["saturation"], document["working_scale"]
        return document

    @classmethod
    def from_dict(cls, document: dict[str, object]) -> RestoreSettings:
        """The settings `to_dict` recorded (a job's JSON read back)."""
        instances, repair = document.get("instances"), document.get("repair")
        return cls(**{
            **document,
            "instances": InstanceSettings(**instances) if isinstance(instances, dict) else None,
            "repair": RepairSettings(**repair) if isinstance(repair, dict) else None,
        })


class SettingsError(ValueError):
    """Settings the user asked for that cannot be used; one line for people, naming the option."""


def build_restore_settings(
    *,
    model: str | None = None,
    saturation: float | None = None,
    output_format: str | None = None,
    include_colour: bool | None = None,
    instances: bool | None = None,
    detector: str | None = None,
    instance_min_score: float | None = None,
    max_instances: int | None = None,
    repair: bool | None = None,
    repair_only: bool | None = None,
    repair_threshold: float | None = None,
    repair_margin: int | None = None,
) -> RestoreSettings:
    """The settings of a `restore` or `colorize` run, built once from the options the user passed.

    Precedence, lowest first: the defaults (RestoreSettings' and InstanceSettings' fields);
    the command-line flags. There is no configuration file. Each argument is named after its
    flag (`output_format`: --format) and is None when the user did not pass the flag, so a
    flag passed with its default value still counts as passed: --detector,
    --instance-min-score and --max-instances without --instances are refused whatever their
    values. Without --instances there is no instance pass. The same holds for
    --repair-threshold and --repair-margin without --repair or --repair-only; --repair-only
    (repair, do not colorize) takes none of the colour flags (--model, --saturation,
    --instances).

    Raises SettingsError, checking in this order: the colour flags do not come with
    --repair-only; the model is a colorization model that can run here (`check_model`); the
    instance flags come with --instances; the detector is one photochrom knows; the repair
    flags come with a repair and are in range, and the segmenter's weights are intact; the
    format is one of OUTPUT_FORMAT_NAMES.
    """
    if repair_only:
        colour_flags = [flag for flag, value in (("--model", model), ("--saturation", saturation), ("--instances", instances)) if value not in (None, False)]
        if colour_flags:
            raise SettingsError(f"{', '.join(colour_flags)}: --repair-only does not colorize")
    else:
        check_model(DEFAULT_MODEL if model is None else model)
    instance_flags = _given(detector=detector, min_score=instance_min_score, max_instances=max_instances)
    instance_settings = None
    if instances:
        instance_settings = _with_flags(InstanceSettings(), instance_flags)
        check_detector(instance_settings.detector)
    elif instance_flags:
        raise SettingsError("--detector, --instance-min-score and --max-instances apply only with --instances")
    repair_flags = _given(threshold=repair_threshold, margin_px=repair_margin)
    repair_settings = None
    if repair or repair_only:
        repair_settings = _with_flags(RepairSettings(), repair_flags)
        check_segmenter(repair_settings.segmenter)
    elif repair_flags:
        raise SettingsError("--repair-threshold and --repair-margin apply only with --repair or --repair-only")
    if output_format is not None and output_format.lower() not in OUTPUT_FORMAT_NAMES:
        raise SettingsError(f"--format {output_format}: expected tiff, png or jpeg")
    flags = _given(
        model=model,
        saturation=saturation,
        output_format=None if output_format is None else OUTPUT_FORMAT_NAMES[output_format.lower()],
        include_colour=include_colour,
    )
    return _with_flags(RestoreSettings(instances=instance_settings, repair=repair_settings, colorize=not repair_only), flags)


def check_model(name: str) -> None:
    """SettingsError unless `name` is a colorization model whose weights are here and intact:
    a model that cannot load is a usage error, not a failure of every scan."""
    from restore.models.detectors import is_detector
    from restore.models.registry import ModelError, usable_spec

    try:
        usable_spec(name)
    except ModelError as exc:
        if is_detector(name):
            raise SettingsError(
                f"{name!r} is a detector, not a colorization model: use it with --instances --detector {name}"
            ) from exc
        raise SettingsError(str(exc)) from exc


def check_detector(name: str) -> None:
    """SettingsError unless photochrom knows the detector `name`. A known one that cannot run
    here (no weights) is the job's to report: it goes on without instances."""
    from restore.models.base import ModelError
    from restore.models.detectors import get_detector_spec

    try:
        get_detector_spec(name)
    except ModelError as exc:
        raise SettingsError(f"--detector: {exc}") from exc


def check_segmenter(name: str) -> None:
    """SettingsError unless the damage segmenter's shipped weights are here and intact."""
    from restore.models.base import ModelError
    from restore.models.damage import check_damage_weights

    try:
        check_damage_weights(name)
    except ModelError as exc:
        raise SettingsError(f"--repair: {exc}") from exc


_Settings = TypeVar("_Settings", InstanceSettings, RestoreSettings, RepairSettings)


def _given(**flags: object) -> dict[str, object]:
    """The flags the user passed (None: not passed)."""
    return {name: value for name, value in flags.items() if value is not None}


def _with_flags(defaults: _Settings, flags: dict[str, object]) -> _Settings:
    """`defaults` with the user's flags laid over them; a value out of range is a SettingsError."""
    try:
        return replace(defaults, **flags)
    except ValueError as exc:
        raise SettingsError(str(exc)) from exc
