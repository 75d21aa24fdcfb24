"""The hint editor's preview latency: what one change costs, on a generated gray scan.

A 16-bit gray TIFF (24 megapixels by default, a scaled photograph plus grain, as
bench/restore.py makes them) is opened in the editor's server (in this process, as
`photochrom hints edit` runs it), and the page's requests are made over HTTP on
127.0.0.1 exactly as the page makes them:

1. opening: the session (scan read, SHA-256, model loaded and warmed), then the first
   GET /api/image (the overview) and a region at the page's largest size;
2. POST /api/preview after a change, with 1, 5 and 10 hints (each request moves one hint
   by a pixel, as a drag does): round trip until the JPEG is read, median, 90th
   percentile and worst of --runs;
3. beside it, in-process and on the same preview-sized scan and hints: the preview as
   the global pass alone (`colorize_preview`, what the server runs) and as the whole
   pipeline (`colorize`: global pass plus patch pass, what the first version ran);
4. POST /api/render: the full-resolution result through the whole pipeline, as JPEG;
5. with --browser (needs Chromium and Playwright): the page itself in headless Chromium,
   from a click that adds a hint to the new preview decoded on screen (`editor.lastPreviewMs`,
   measured by the page), for --clicks clicks.

The development machine's 2 cores are shared, and other processes can slow it many times
over for seconds at a time. So before and after every sample the bench times a fixed
workload (twenty 400 x 400 matrix products, `calibrate`), and reports each figure twice:
over all samples, and over the quiet ones (both neighbouring calibrations within 1.25x of
the fastest seen), with how many were quiet.

    .venv/bin/python bench/editor.py [--megapixels 24] [--model lite] [--runs 20] [--browser]
"""

from __future__ import annotations

import argparse
import http.client
import importlib.util
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

# As `photochrom hints edit` sets it (see there), before numpy loads; set it to compare.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hints.editor import TOKEN_HEADER, EditorServer, make_server  # noqa: E402
from restore.editing import ScanRenderer  # noqa: E402


def make_scan(path: Path, height: int, width: int) -> None:
    """bench/restore.py's generated scan (loaded by path: its module name is the package's)."""
    spec = importlib.util.spec_from_file_location("bench_restore", REPO / "bench" / "restore.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    module.make_scan(path, height, width)


QUIET = 1.25  # a sample is quiet when the calibrations around it are within this of the fastest
_MATRIX = np.random.default_rng(0).random((400, 400))


def calibrate() -> float:
    """Seconds for a fixed workload: how much CPU this process is getting right now."""
    started = time.perf_counter()
    for _ in range(20):
        _MATRIX @ _MATRIX
    return time.perf_counter() - started


def summary(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(s * 1000 for s in seconds)
    return {
        "median_ms": round(statistics.median(ordered), 1),
        "p90_ms": round(ordered[math.ceil(0.9 * len(ordered)) - 1], 1),  # nearest rank
        "max_ms": round(ordered[-1], 1),
    }


class Samples:
    """Timings, each with the calibrations just before and after it."""

    def __init__(self) -> None:
        self.rows: list[tuple[float, float, float]] = []

    def time(self, call) -> object:  # noqa: ANN001 - call() -> (seconds, result)
        before = calibrate()
        seconds, result = call()
        self.rows.append((before, seconds, calibrate()))
        return result

    def report(self, fastest_calibration: float) -> dict[str, object]:
        quiet = [s for before, s, after in self.rows if max(before, after) <= QUIET * fastest_calibration]
        return {"all": summary([s for _, s, _ in self.rows]), "quiet": summary(quiet) if quiet else None,
                "quiet_samples": f"{len(quiet)} of {len(self.rows)}"}


def hints(count: int, width: int, height: int, shift: int = 0) -> list[dict[str, object]]:
    """`count` hints spread over the scan; the first moved right by `shift` pixels."""
    rng = np.random.default_rng(count)
    points = []
    for i, (fx, fy) in enumerate(rng.uniform(0.05, 0.95, (count, 2))):
        colour = "#{:02x}{:02x}{:02x}".format(*rng.integers(40, 220, 3))
        points.append({"x": int(fx * width) + (shift if i == 0 else 0), "y": int(fy * height), "color": colour})
    return points


class Client:
    """One keep-alive connection, as the browser keeps one."""

    def __init__(self, server: EditorServer) -> None:
        self.server = server
        self.conn = http.client.HTTPConnection(*server.server_address[:2], timeout=600)

    def request(self, method: str, path: str, body: object = None) -> tuple[float, bytes]:
        headers = {TOKEN_HEADER: self.server.token, "Content-Type": "application/json"}
        started = time.perf_counter()
        self.conn.request(method, path, body=None if body is None else json.dumps(body).encode(), headers=headers)
        response = self.conn.getresponse()
        data = response.read()
        seconds = time.perf_counter() - started
        if response.status != 200:
            raise RuntimeError(f"{method} {path}: {response.status} {data[:200]!r}")
        return seconds, data


def in_process(server: EditorServer, count: int, runs: int) -> dict[str, Samples]:
    """The preview's computation without HTTP: global pass alone against the whole pipeline."""
    from restore.preview import colorize, colorize_preview

    session, renderer = server.session, server.session.renderer
    resolved = session.check(session.document({"points": hints(count, session.width, session.height)}))[1].hints
    preview = renderer.preview_scan
    scaled = renderer.preview_hints(resolved)
    report: dict[str, Samples] = {}
    for name, function in (("global_pass_only", colorize_preview), ("whole_pipeline", colorize)):
        samples = report[name] = Samples()

        def call(function=function) -> tuple[float, None]:  # noqa: ANN001
            started = time.perf_counter()
            function(preview, renderer.colorizer, renderer.settings, hints=scaled)
            return time.perf_counter() - started, None

        for _ in range(runs):
            samples.time(call)
    return report


def browser(server: EditorServer, clicks: int) -> Samples:
    """From a click adding a hint to its preview decoded on the page, as the page measures it."""
    from playwright.sync_api import sync_playwright

    executable = os.environ.get("PHOTOCHROM_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    samples = Samples()
    phases: list[dict[str, float]] = []
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=executable, headless=True, args=["--no-sandbox"])
        try:
            page = chromium.new_page(viewport={"width": 1400, "height": 900})
            page.goto(server.url)
            page.wait_for_function("() => window.editor && editor.ready && editor.previewShown()", timeout=60_000)
            box = page.locator("#view").bounding_box()
            view = page.evaluate("() => editor.view")
            shown = (server.session.width * view["scale"], server.session.height * view["scale"])
            for i in range(clicks):
                # On a grid over the scan as shown, so that no click lands on an earlier hint's marker.
                fx, fy = 0.1 + 0.8 * (i % 5) / 4, 0.1 + 0.8 * ((i // 5) % 5) / 4 + 0.02 * (i // 25)
                at = (box["x"] + view["ox"] + fx * shown[0], box["y"] + view["oy"] + fy * shown[1])

                def click(i=i, at=at) -> tuple[float, None]:  # noqa: ANN001
                    page.mouse.click(*at)
                    page.wait_for_function(f"() => editor.points().length === {i + 1} && editor.previewShown()", timeout=60_000)
                    phases.append(page.evaluate("() => editor.lastPreviewPhases"))
                    return page.evaluate("() => editor.lastPreviewMs") / 1000, None

                samples.time(click)
        finally:
            chromium.close()
    # Where the time went, median of each phase (ms): before the request was sent, the
    # server's computation (its Server-Timing), the rest of the request, decoding.
    samples.phases = {name: statistics.median(p[name] for p in phases) for name in phases[0]}  # type: ignore[attr-defined]
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megapixels", type=float, default=24.0, help="scan size, at 3:2 (24: 6000 x 4000)")
    parser.add_argument("--model", default="lite")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--browser", action="store_true", help="also measure in headless Chromium")
    parser.add_argument("--clicks", type=int, default=10)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out")
    args = parser.parse_args()
    height = round((args.megapixels * 1e6 / 1.5) ** 0.5)
    width = round(height * 1.5)
    report: dict[str, object] = {"scan": f"{width}x{height} 16-bit gray TIFF", "model": args.model, "cpus": os.cpu_count(),
                                 "load_average_before": os.getloadavg()[0],
                                 "openblas_threads": os.environ["OPENBLAS_NUM_THREADS"]}
    with tempfile.TemporaryDirectory() as tmp:
        scan = Path(tmp) / "scan.tif"
        make_scan(scan, height, width)
        started = time.perf_counter()
        server = make_server(ScanRenderer(scan, args.model), Path(tmp) / "hints.json")
        report["open_s"] = round(time.perf_counter() - started, 2)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        client = Client(server)
        samples: dict[str, Samples] = {}
        report["overview_first_ms"] = round(client.request("GET", "/api/image")[0] * 1000, 1)
        region = f"/api/image?x=0&y=0&w={width // 2}&h={height // 2}&long=2048"
        samples["region_2048"] = Samples()
        for _ in range(5):
            samples["region_2048"].time(lambda: client.request("GET", region))
        for count in (1, 5, 10):
            samples[f"preview_{count}_hints"] = Samples()
            for run in range(args.runs):
                body = {"points": hints(count, width, height, run)}
                samples[f"preview_{count}_hints"].time(lambda body=body: client.request("POST", "/api/preview", body))
            print(f"preview with {count} hints: {summary([s for _, s, _ in samples[f'preview_{count}_hints'].rows])}", file=sys.stderr)
        for name, timed in in_process(server, 5, max(3, args.runs // 4)).items():
            samples[f"in_process_5_hints_{name}"] = timed
        samples["render_full_resolution"] = Samples()
        jpeg = samples["render_full_resolution"].time(lambda: client.request("POST", "/api/render", {"points": hints(5, width, height)}))
        report["render_jpeg_mb"] = round(len(jpeg) / 1e6, 1)  # type: ignore[arg-type]
        if args.browser:
            samples["browser_click_to_preview"] = browser(server, args.clicks)
            report["browser_phases_median_ms"] = samples["browser_click_to_preview"].phases  # type: ignore[attr-defined]
        server.shutdown()
        server.server_close()
    fastest = min(c for timed in samples.values() for row in timed.rows for c in (row[0], row[2]))
    report["calibration_fastest_ms"] = round(fastest * 1000, 1)
    report.update({name: timed.report(fastest) for name, timed in samples.items()})
    report["load_average_after"] = os.getloadavg()[0]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "editor.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
