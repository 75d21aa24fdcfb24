"""Catalog export: a static before/after website, CSV and JSON Lines, IIIF manifests, and
optionally a BagIt bag, updated in place on a later export (only what changed is redone)."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import stat
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from html import unescape
from pathlib import Path, PurePosixPath

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from catalog.db import Catalog
from catalog.export_iiif import collection, manifest
from catalog.export_images import derive, display_size
from catalog.export_site import copy_assets, index_page, scan_page
from catalog.models import Job, JobEvent, Scan, Task, TaskStatus
from restore.scanio.files import file_sha256
from restore.scanio.names import valid_document
from restore.settings import DEFAULT_BASE_URL, DEFAULT_EXPORT_RESULTS
from restore.scanio.write import PHOTOCHROM_XMP_NS, write_atomically

AI_LABEL = "AI-colorized"
STATE_FILE = ".photochrom-export.json"
STATE_VERSION = 1

#: The columns of catalog.csv and the keys of catalog.jsonl, in order (documented in the README).
COLUMNS = (
    "scan_id", "scan_sha256", "name", "folder", "source_path", "format", "width", "height", "bit_depth",
    "colour_mode", "tone", "scan_status", "status", "ingested_at", "notes", "page", "original_image",
    "original_thumbnail", "iiif_manifest", "result_label", "result_current", "job_id", "task_id", "result_path",
    "result_sha256", "result_finished_at", "result_image", "result_thumbnail", "model", "weights_sha256",
    "settings", "hints_path", "hints_sha256", "repair_fraction", "repair_mask", "repair_mask_sha256",
    "reference_path", "reference_sha256", "reference_coverage",
)


class ExportError(Exception):
    """The export cannot start (catalog or output folder unusable); the message is one line."""


@dataclass(frozen=True)
class ExportSettings:
    results: str = DEFAULT_EXPORT_RESULTS  # current | all | job:<id>
    base_url: str = DEFAULT_BASE_URL  # IIIF ids must be absolute URLs: where the site will be served
    bag: bool = False
    zoom_over_px: int | None = None  # deep-zoom tiles for images longer than this (None: display size)

    def job_id(self) -> int | None:
        if self.results in ("current", "all"):
            return None
        match = re.fullmatch(r"job:(\d+)", self.results)
        if not match:
            raise ExportError(f"--results {self.results}: expected current, all or job:ID")
        return int(match.group(1))


@dataclass
class ExportSummary:
    out: str
    site: str  # where index.html is: OUT, or OUT/data in a bag
    scans: int = 0
    results: int = 0
    written: int = 0  # derivatives (re)made
    unchanged: int = 0  # derivatives whose source was still there with the same SHA-256
    failed: list[dict[str, str]] = field(default_factory=list)
    bag: bool = False

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def export(
    catalog: Catalog, out: Path, settings: ExportSettings = ExportSettings(), progress: Callable[[int, int], None] | None = None
) -> ExportSummary:
    """Export the catalog into `out`; see the README's "Export" section for what is written."""
    from catalog.export_images import DISPLAY_PX

    wanted_job = settings.job_id()
    out = out.resolve()
    site = out / "data" if (out / "bagit.txt").exists() else out
    _check_writable(site)
    state = _load_state(site)
    summary = ExportSummary(out=str(out), site=str(site), bag=settings.bag)
    zoom_over = settings.zoom_over_px or DISPLAY_PX
    base_url = settings.base_url if settings.base_url.endswith("/") else settings.base_url + "/"

    with catalog.read() as session:
        if wanted_job is not None and session.get(Job, wanted_job) is None:
            raise ExportError(f"--results job:{wanted_job}: no job with id {wanted_job}")
        scans = session.scalars(
            select(Scan).options(selectinload(Scan.locations), selectinload(Scan.events)).order_by(Scan.id)
        ).all()
        tasks_by_scan: dict[int, list[Task]] = {}
        for task in session.scalars(select(Task).options(selectinload(Task.job)).order_by(Task.id)):
            tasks_by_scan.setdefault(task.scan_id, []).append(task)
        job_events: dict[int, list[JobEvent]] = {}
        for event in session.scalars(select(JobEvent).where(JobEvent.task_id.is_not(None)).order_by(JobEvent.id)):
            job_events.setdefault(event.task_id, []).append(event)  # type: ignore[arg-type]

        records, rows = [], []
        for done, scan in enumerate(scans):
            tasks = tasks_by_scan.get(scan.id, [])
            record = _scan_record(scan, tasks, job_events)
            original = _derive_original(scan, record, site, state, summary, zoom_over)
            record["original"] = original
            results = []
            for task in _selected(tasks, settings.results, wanted_job):
                result = _derive_result(task, scan, site, state, summary, zoom_over, original)
                if result is not None:
                    results.append(result)
            newest = max((r["task_id"] for r in results), default=None)
            for result in results:
                result["current"] = result["task_id"] == newest
            record["results"] = results
            record["status"] = "colorized" if results else record["status"]
            record["iiif_manifest"] = f"iiif/{scan.id}.json"
            records.append(record)
            rows.extend(_rows(record))
            if progress is not None:
                progress(done + 1, len(scans))

    summary.scans, summary.results = len(records), sum(len(r["results"]) for r in records)
    _write_text_files(site, records, rows, base_url)
    _save_state(site, state)
    if settings.bag or site != out:  # once a bag, always a bag: its manifests must follow the payload
        _bag(out, site)
        summary.site = str(out / "data")
    return summary


def _check_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".photochrom-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ExportError(f"{folder}: cannot write the export there ({exc.strerror or exc})") from exc


# --- what each scan is, and which results are exported ---------------------------------


def _scan_record(scan: Scan, tasks: list[Task], job_events: dict[int, list[JobEvent]]) -> dict:
    shown = scan.shown_location
    relpath = PurePosixPath(shown.relpath) if shown else PurePosixPath(f"scan-{scan.id}")
    history = [
        {"at": _iso(e.at), "what": e.kind, "outcome": e.outcome, "detail": e.detail or (e.path or "")} for e in scan.events
    ]
    for task in tasks:
        for e in job_events.get(task.id, []):
            history.append({"at": _iso(e.at), "what": f"job {task.job_id}: {e.kind}", "outcome": "", "detail": e.detail})
    history.sort(key=lambda h: h["at"] or "")
    failed = [t for t in tasks if t.status == TaskStatus.FAILED]
    status = "invalid" if scan.status == "invalid" else ("failed" if failed else "not colorized")
    return {
        "scan_id": scan.id,
        "scan_sha256": scan.sha256,
        "name": relpath.name,
        "folder": str(relpath.parent) if str(relpath.parent) != "." else "",
        "source_path": shown.path if shown else "",
        "source_exists": bool(shown) and Path(shown.path).is_file(),
        "format": scan.format,
        "width": scan.width,
        "height": scan.height,
        "bit_depth": scan.bit_depth,
        "colour_mode": scan.colour_mode,
        "tone": scan.tone,
        "scan_status": scan.status,
        "status": status,
        "ingested_at": _iso(scan.ingested_at),
        "notes": " | ".join(e.detail for e in scan.events if e.kind == "note" and e.detail),
        "page": f"scans/{scan.id}.html",
        "history": history,
    }


def _selected(tasks: list[Task], mode: str, job_id: int | None) -> list[Task]:
    done = [t for t in tasks if t.status == TaskStatus.DONE]
    if job_id is not None:
        return [t for t in done if t.job_id == job_id]
    if mode == "all":
        return done
    return done[-1:]  # tasks come in id order: the newest done result


# --- derivatives, redone only when their source's SHA-256 changed -----------------------


def _check_source(path: Path | None, expected_sha256: str | None, entry: dict | None) -> tuple[str | None, str, dict[str, int]]:
    """Whether a derivative's source file is still the one the catalog knows: (problem, its
    SHA-256, its size and modification time as the state file records them). `problem` is
    "missing", "changed" (its SHA-256 is not `expected_sha256`, the catalog's) or None.

    The file is hashed only when its size or modification time differ from those recorded
    with `entry` at the last export: an untouched archive is not read again, and a file
    deleted or rewritten since is noticed, not trusted to the recorded SHA-256."""
    try:
        info = path.stat() if path is not None else None
    except OSError:
        info = None
    if info is None or not stat.S_ISREG(info.st_mode):
        return "missing", "", {}
    signature = {"source_size": info.st_size, "source_mtime_ns": info.st_mtime_ns}
    unchanged = entry is not None and all(entry.get(k) == v for k, v in signature.items())
    digest = entry["source_sha256"] if unchanged else file_sha256(path)  # type: ignore[index]
    if expected_sha256 and digest != expected_sha256:
        return "changed", digest, signature
    return None, digest, signature


def _fresh(entry: dict | None, site: Path, source_sha256: str, zoom_over: int) -> bool:
    """Whether the derivatives recorded in `entry` are of this source and all still there."""
    if not entry or entry["source_sha256"] != source_sha256 or entry.get("zoom_over_px") != zoom_over:
        return False
    files = [entry["derived"]["image"], entry["derived"]["thumbnail"]] + ([entry["derived"]["dzi"]] if entry["derived"]["dzi"] else [])
    return all((site / f).is_file() for f in files)


def _derive_original(scan: Scan, record: dict, site: Path, state: dict, summary: ExportSummary, zoom_over: int) -> dict | None:
    key = f"images/{scan.id}/original"
    source = Path(record["source_path"]) if record["source_path"] else None
    entry = state["derived"].get(key)
    problem, digest, signature = _check_source(source, scan.sha256, entry)
    if problem is not None:
        what = "original file missing" if problem == "missing" else "original file changed since ingest"
        summary.failed.append({"path": record["source_path"], "reason": f"scan {scan.id}: {what}; no image exported"})
        return None
    if _fresh(entry, site, digest, zoom_over):
        entry.update(signature)  # type: ignore[union-attr]
        summary.unchanged += 1
    else:
        try:
            derived = derive(source, site, key, zoom_over_px=zoom_over)  # type: ignore[arg-type]
        except Exception as exc:  # any decoder error is this one scan's failure
            summary.failed.append({"path": record["source_path"], "reason": f"scan {scan.id}: {exc}"})
            return None
        entry = {"source_sha256": digest, "zoom_over_px": zoom_over, "derived": asdict(derived), **signature}
        state["derived"][key] = entry
        summary.written += 1
    return dict(entry["derived"])


def _derive_result(
    task: Task, scan: Scan, site: Path, state: dict, summary: ExportSummary, zoom_over: int, original: dict | None
) -> dict | None:
    key = f"images/{scan.id}/result-{task.id}"
    path = Path(task.output_path)
    entry = state["derived"].get(key)
    problem, digest, signature = _check_source(path, task.output_sha256, entry)
    if problem is not None:
        what = "result file missing" if problem == "missing" else "result file changed since restore"
        summary.failed.append({"path": str(path), "reason": f"scan {scan.id}, job {task.job_id}: {what}; skipped"})
        return None
    if _fresh(entry, site, digest, zoom_over):
        entry.update(signature)  # type: ignore[union-attr]
        summary.unchanged += 1
    else:
        size = (original["width"], original["height"]) if original else display_size(scan.width or 1, scan.height or 1)
        try:
            derived = derive(path, site, key, size=size, zoom_over_px=zoom_over)
        except Exception as exc:  # a corrupt result fails alone
            summary.failed.append({"path": str(path), "reason": f"scan {scan.id}, job {task.job_id}: {exc}"})
            return None
        entry = {"source_sha256": digest, "zoom_over_px": zoom_over, "derived": asdict(derived), "xmp": read_provenance(path), **signature}
        state["derived"][key] = entry
        summary.written += 1
    settings = json.loads(task.job.settings).get("restore", {})
    xmp = entry.get("xmp", {})
    repair = json.loads(task.repair) if task.repair else None
    if repair is not None:
        repair = repair | {"overlay": _derive_mask_overlay(task, scan, repair, site, state, summary, original)}
    return {
        "label": AI_LABEL,
        "job_id": task.job_id,
        "task_id": task.id,
        "result_path": task.output_path,
        "result_sha256": task.output_sha256,
        "finished_at": _iso(task.finished_at),
        "model": xmp.get("Model") or settings.get("model", ""),
        "weights_sha256": xmp.get("WeightsSHA256", ""),
        "tool": xmp.get("Tool", ""),
        "settings": settings,
        "hints_path": task.hints_path or "",
        "hints_sha256": task.hints_sha256 or "",
        "derived": dict(entry["derived"]),
        "repair": repair,
        "reference": task.reference_record(),
    }


def _derive_mask_overlay(task: Task, scan: Scan, repair: dict, site: Path, state: dict, summary: ExportSummary, original: dict | None) -> str | None:
    """The original's display image with the result's repair mask over it (a site path), or
    None without an original; a mask missing or changed since the restore is a failure."""
    from catalog.export_images import write_mask_overlay

    if original is None:
        return None
    key = f"images/{scan.id}/repair-{task.id}"
    mask = Path(task.output_path).with_name(str(repair.get("mask", "")))
    entry = state["derived"].get(key)
    problem, digest, signature = _check_source(mask, str(repair.get("mask_sha256") or ""), entry)
    if problem is not None:
        what = "repair mask missing" if problem == "missing" else "repair mask changed since restore"
        summary.failed.append({"path": str(mask), "reason": f"scan {scan.id}, job {task.job_id}: {what}; not shown"})
        return None
    image = f"{key}.jpg"
    if entry and entry["source_sha256"] == digest and entry.get("original") == original["image"] and (site / image).is_file():
        entry.update(signature)
        summary.unchanged += 1
        return image
    write_mask_overlay(mask, site / original["image"], site / image)
    state["derived"][key] = {"source_sha256": digest, "original": original["image"], **signature}
    summary.written += 1
    return image


_XMP_ATTRIBUTE = re.compile(rb"photochrom:(\w+)=(?:\"([^\"]*)\"|'([^']*)')")


def read_provenance(path: Path) -> dict[str, str]:
    """The `photochrom:` provenance fields of a result's XMP (empty when it has none)."""
    data = path.read_bytes()
    start = data.find(PHOTOCHROM_XMP_NS.encode())
    if start < 0:
        return {}
    end = data.find(b"</x:xmpmeta>", start)
    packet = data[start : end if end > 0 else start + 65536]
    return {m.group(1).decode(): unescape((m.group(2) or m.group(3) or b"").decode("utf-8")) for m in _XMP_ATTRIBUTE.finditer(packet)}


# --- CSV, JSON Lines, pages, IIIF: rewritten only when their bytes change ---------------


def _rows(record: dict) -> list[dict[str, object]]:
    original = record["original"] or {}
    base = {k: record[k] for k in COLUMNS if k in record}
    base.update(original_image=original.get("image", ""), original_thumbnail=original.get("thumbnail", ""))
    empty = {k: "" for k in COLUMNS if k not in base}
    if not record["results"]:
        return [{k: {**empty, **base}[k] for k in COLUMNS}]
    rows = []
    for r in record["results"]:
        row = {**empty, **base}
        row.update(
            result_label=r["label"], result_current=r["current"], job_id=r["job_id"], task_id=r["task_id"],
            result_path=r["result_path"], result_sha256=r["result_sha256"], result_finished_at=r["finished_at"],
            result_image=r["derived"]["image"], result_thumbnail=r["derived"]["thumbnail"], model=r["model"],
            weights_sha256=r["weights_sha256"], settings=json.dumps(r["settings"], sort_keys=True),
            hints_path=r["hints_path"], hints_sha256=r["hints_sha256"],
        )
        if r["repair"]:
            row.update(repair_fraction=r["repair"]["fraction"], repair_mask=r["repair"]["mask"], repair_mask_sha256=r["repair"]["mask_sha256"])
        if r.get("reference"):
            reference = r["reference"]
            row.update(reference_path=reference["path"], reference_sha256=reference["sha256"], reference_coverage=reference.get("coverage", ""))
        rows.append({k: row[k] for k in COLUMNS})
    return rows


def _write_text_files(site: Path, records: list[dict], rows: list[dict], base_url: str) -> int:
    """Write every catalog, page and manifest file whose bytes changed; return how many.
    A file name's bytes that are not UTF-8 are written as `\\xNN` (restore.scanio.names)."""
    records, rows = valid_document(records), valid_document(rows)  # type: ignore[assignment]
    files: dict[str, str] = {}
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in rows)
    files["catalog.csv"] = buffer.getvalue()
    files["catalog.jsonl"] = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    files["index.html"] = index_page(records)
    for record in records:
        files[record["page"]] = scan_page(record)
        files[record["iiif_manifest"]] = json.dumps(manifest(record, base_url), indent=1, ensure_ascii=False) + "\n"
    files["iiif/collection.json"] = json.dumps(collection(records, base_url), indent=1, ensure_ascii=False) + "\n"
    written = copy_assets(site)
    for relpath, text in files.items():
        written += _write_if_changed(site / relpath, text.encode("utf-8"))
    return written


def _write_if_changed(path: Path, data: bytes) -> int:
    if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, lambda temporary: temporary.write_bytes(data))
    return 1


def _load_state(site: Path) -> dict:
    try:
        state = json.loads((site / STATE_FILE).read_text())
        if state.get("version") == STATE_VERSION:
            return state
    except (OSError, ValueError):
        pass
    return {"version": STATE_VERSION, "derived": {}}


def _save_state(site: Path, state: dict) -> None:
    _write_if_changed(site / STATE_FILE, json.dumps(state, indent=1, sort_keys=True).encode())


def _bag(out: Path, site: Path) -> None:
    """Make OUT a BagIt bag (RFC 8493, SHA-256 manifests), or refresh its manifests."""
    import bagit

    if site == out:
        bagit.make_bag(str(out), {"Source-Organization": "photochrom export"}, checksums=["sha256"])
    else:
        bagit.Bag(str(out)).save(manifests=True)


def _iso(value: object) -> str | None:
    return None if value is None else value.isoformat(timespec="seconds")  # type: ignore[attr-defined]
