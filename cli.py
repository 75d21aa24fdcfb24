"""The `photochrom` command line: each command builds settings, calls one library function,
prints, and exits (0 success, 1 some items failed, 2 usage or input error).

Heavy modules are imported inside the commands so that `photochrom --help` is instant.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

app = typer.Typer(
    name="photochrom",
    help="Batch colorization of black-and-white photo archives.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
scans_app = typer.Typer(help="What the catalog holds: each scan, its locations, status and history.")
app.add_typer(scans_app, name="scans")

DbOption = Annotated[Path, typer.Option("--db", help="The catalog file.", dir_okay=False)]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
DEFAULT_DB = Path("archive.db")


def _stderr():  # noqa: ANN202 - rich is imported lazily
    from rich.console import Console

    return Console(stderr=True)


def _fail(message: str, code: int = 2) -> NoReturn:
    _stderr().print(f"[bold red]photochrom: error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _print_json(document: object) -> None:
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


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
    ] = 1_000_000_000,
    verify: Annotated[bool, typer.Option("--verify", help="Decode every image whole, not only its header.")] = False,
    workers: Annotated[int, typer.Option("--workers", min=0, help="Threads hashing files; 0 = one per core.")] = 0,
    as_json: JsonOption = False,
) -> None:
    """Add scans to the catalog; idempotent by SHA-256. Originals are never modified."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from catalog.ingest import IngestSettings, SourceError
    from catalog.ingest import ingest as run_ingest

    settings = IngestSettings(max_pixels=max_pixels, verify=verify, workers=workers)
    columns = (TextColumn("ingest"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), TextColumn("{task.description}"))
    with _open(db, create=True) as catalog, Progress(*columns, console=_stderr(), transient=True) as bar:
        task = bar.add_task("", total=None)

        def progress(done: int, total: int, path: Path) -> None:
            bar.update(task, completed=done, total=total, description=path.name)

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
            f"{len(summary.failed)} failed, {summary.skipped} non-image files skipped  ->  {db}",
            highlight=False,
            soft_wrap=True,
        )
        for note in summary.notes:
            console.print(f"note: {note.path}: {note.reason}", highlight=False, soft_wrap=True)
        for failure in summary.failed:
            console.print(f"[red]failed:[/] {failure.path}: {failure.reason}", highlight=False, soft_wrap=True)
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
    from rich.console import Console
    from rich.table import Column, Table

    fixed = [Column(name, no_wrap=True) for name in ("id", "sha256", "status", "format", "size", "depth", "mode", "tone")]
    table = Table(*fixed, Column("path", overflow="fold"), box=None)
    for row in rows:
        size = f"{row['width']}x{row['height']}" if row["width"] else "-"
        depth = f"{row['bit_depth']}-bit" if row["bit_depth"] else "-"
        table.add_row(
            str(row["id"]), str(row["sha256"])[:12], str(row["status"]), str(row["format"] or "-"), size, depth,
            str(row["colour_mode"] or "-"), str(row["tone"] or "-"), str(row["path"]),
        )
    # Piped output keeps whole paths on one line; a terminal folds them to its width.
    Console(width=None if sys.stdout.isatty() else 10_000).print(table)


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
            console.print(f"[bold]{key:>17}[/]  {value}")
    console.print("[bold]        locations[/]")
    for loc in detail["locations"]:  # type: ignore[attr-defined]
        superseded = f"  (superseded {loc['superseded_at']})" if loc["superseded_at"] else ""
        console.print(f"  {loc['path']}  first seen {loc['first_seen']}{superseded}")
    console.print("[bold]          history[/]")
    for event in detail["events"]:  # type: ignore[attr-defined]
        console.print(f"  {event['at']}  {event['kind']:<18} {event['outcome']:<7} {event['detail']}")


if __name__ == "__main__":
    app()
