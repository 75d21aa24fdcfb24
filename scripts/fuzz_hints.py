"""Fuzz hint files and the hint editor's HTTP API (issue 16): random and mutated hint
documents (byte flips, truncation, splicing, numbers swapped for NaN, 1e400 or 5000 digits,
deep nesting, thousands of points, lone surrogates, other encodings) go through
`load_hint_file` + `resolve`, and the same bytes, random queries and malformed headers go
to a live editor server. Usage:

    .venv/bin/python scripts/fuzz_hints.py [--iterations 5000] [--seed 1] [--max-seconds 5]

Prints the count of each outcome as JSON. Exits 1 on anything unexpected: an exception
other than HintError, a 5xx or a non-JSON error, a dropped connection, a traceback in the
server, or any one case taking longer than --max-seconds (a hang).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import socket
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from urllib.parse import quote

# As `photochrom hints edit` runs (cli.py): one OpenBLAS thread, set before numpy loads.
# With more, holding 1000 hints took over 5 s instead of 0.6 s whenever another process was
# busy on the same cores, and a timing limit would measure that instead of the server.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from hints.editor import TOKEN_HEADER, make_server  # noqa: E402
from hints.schema import HintError, load_hint_file, resolve  # noqa: E402
from restore.editing import ScanRenderer  # noqa: E402

WIDTH, HEIGHT = 160, 120
SEEDS = [
    {"schema": "photochrom.hints/1", "points": [{"x": 10, "y": 20, "color": "#7a9cc6", "radius": 4, "note": "sky"}]},
    {"schema": "photochrom.hints/1", "space": "normalized", "image": {"path": "scan.tif"},
     "points": [{"x": 0.25, "y": 0.5, "color": {"lab": [52.0, 18.5, -40.0]}}, {"x": 1, "y": 0, "color": {"rgb": [200, 10, 0]}}]},
    {"schema": "photochrom.hints/1", "space": "pixels", "points": [{"x": 159, "y": 119, "color": "#000000"}]},
    {"points": [{"x": 80, "y": 60, "color": "#ff0000", "radius": 2.5}]},  # an editor body: the other keys are filled in
    [{"x": 1, "y": 2, "color": {"rgb": [0, 255, 0]}, "note": "ü"}],  # an editor body: just the points
]
HOSTILE_NUMBERS = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1" + "0" * 400, "9" * 5000, "-1", "1e300", "0", "4e9",
                   "1E-400", "-0.0", "255.0000000000000000001", "1e-7"]
NUMBER = re.compile(rb"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")


def _random_value(rng: random.Random, depth: int = 0) -> object:
    kind = rng.randrange(9 if depth < 4 else 5)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([rng.randint(-(10**6), 10**6), rng.uniform(-1e6, 1e6), rng.random()])
    if kind == 3:
        return "".join(rng.choice("ab#0f\"\\[]{}é😀 \n") for _ in range(rng.randrange(8)))
    if kind == 4:
        return rng.choice(["#ff0000", "pixels", "normalized", "photochrom.hints/1"])
    if kind in (5, 6):
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(5))]
    keys = ["schema", "points", "space", "image", "x", "y", "color", "rgb", "lab", "radius", "note", "sha256", "path", "extra"]
    return {rng.choice(keys): _random_value(rng, depth + 1) for _ in range(rng.randrange(5))}


def _mutate(data: bytes, rng: random.Random) -> bytes:
    """One mutation of a document's bytes."""
    choice = rng.randrange(11)
    if choice == 0 and data:  # flip bytes
        buffer = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            buffer[rng.randrange(len(buffer))] ^= 1 << rng.randrange(8)
        return bytes(buffer)
    if choice == 1:  # truncate
        return data[: rng.randrange(len(data) + 1)]
    if choice == 2:  # splice with another document
        other = json.dumps(rng.choice(SEEDS)).encode()
        return data[: rng.randrange(len(data) + 1)] + other[rng.randrange(len(other) + 1) :]
    if choice in (3, 4):  # numbers swapped for hostile ones
        numbers = list(NUMBER.finditer(data))
        if numbers:
            m = rng.choice(numbers)
            return data[: m.start()] + rng.choice(HOSTILE_NUMBERS).encode() + data[m.end() :]
    if choice == 5:  # nesting, shallow or deep
        k = rng.choice([2, 31, 33, 1000, 100_000])
        return b"[" * k + data + b"]" * rng.choice([0, k])
    if choice == 6:  # thousands of points
        point = b'{"x": 1, "y": 1, "color": "#ff0000"}'
        return b'{"schema": "photochrom.hints/1", "points": [' + b", ".join([point] * rng.choice([999, 1001, 25_000])) + b"]}"
    if choice == 7:  # insert random bytes
        at = rng.randrange(len(data) + 1)
        return data[:at] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 8))) + data[at:]
    if choice == 8:  # strings: lone surrogates, control characters
        odd = rng.choice([b'"\\ud800"', b'"\\udfff x"', b'"\\u0000"', b'"a\\nb"'])
        return data.replace(b'"sky"', odd, 1) if b'"sky"' in data else data + odd
    if choice == 9:  # other encodings and a BOM
        text = data.decode("utf-8", "replace")
        return rng.choice([text.encode("utf-16"), text.encode("utf-32-le"), b"\xef\xbb\xbf" + data, text.encode("latin-1", "replace")])
    return data + rng.choice([b"", b"]", b"}", b",", b" NaN", b"\x00"])


def documents(rng: random.Random) -> bytes:
    """A random or mutated document."""
    if rng.random() < 0.25:
        return json.dumps(_random_value(rng)).encode()
    data = json.dumps(rng.choice(SEEDS)).encode()
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        data = _mutate(data, rng)
    return data


def queries(rng: random.Random) -> str:
    """A GET path with random, often hostile, parameters."""
    route = rng.choice(["/api/image", "/api/lightness", "/api/scan", "/api/image", "/nowhere"])
    values = ["0", "1", "-1", "15", "159", "160", "4096", "5000", "NaN", "1e3", "1_0", "１", "%ff", "", "9" * 30, "9" * 5000, " 7"]
    names = ["x", "y", "w", "h", "long", "zoom", "x"]
    chosen = rng.sample(names, rng.randrange(len(names)))
    return route + ("?" + "&".join(f"{n}={quote(rng.choice(values))}" for n in chosen) if chosen else "")


def head_mischief(rng: random.Random, host: str, token: str) -> bytes:
    """A POST whose Content-Length (or request line) is wrong."""
    body = b'{"points": []}'
    lengths = ("ten", "-5", "1_4", "9" * 5000, str(2**40), "100", "")
    lines = [rng.choice([f"Content-Length: {v}" for v in lengths] + ["Transfer-Encoding: chunked", ""])]
    start = rng.choice(
        ["POST /api/preview HTTP/1.1", "POST /api/save HTTP/1.1", "PUT /api/save HTTP/1.1", "GARBAGE", "POST /api/render HTTP/9.9"]
    )
    return "\r\n".join([start, f"Host: {host}", f"{TOKEN_HEADER}: {token}", *lines, "", ""]).encode() + body


class Fuzzer:
    def __init__(self, folder: Path, max_seconds: float) -> None:
        self.folder, self.max_seconds = folder, max_seconds
        self.counts: Counter[str] = Counter()
        self.unexpected: list[str] = []
        self.slowest = (0.0, "")
        scan = folder / "scan.png"
        ramp = np.linspace(30, 220, WIDTH)[None, :] + np.linspace(0, 30, HEIGHT)[:, None]
        Image.fromarray(ramp.astype(np.uint8), "L").save(scan)
        self.server = make_server(ScanRenderer(scan, "ramp"), folder / "hints" / "scan.json")
        self.server.handle_error = self._server_traceback  # type: ignore[method-assign]
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.pool = ThreadPoolExecutor(1)

    def _server_traceback(self, request: object, address: object) -> None:
        self.unexpected.append("server traceback: " + traceback.format_exc().strip().splitlines()[-1])

    def _timed(self, what: str, function, *args: object) -> object:  # noqa: ANN001
        """function(*args) with a watchdog: a case over max_seconds is a hang."""
        started = time.perf_counter()
        try:
            result = self.pool.submit(function, *args).result(timeout=self.max_seconds)
        except FutureTimeout:
            self.unexpected.append(f"{what}: no answer after {self.max_seconds} s")
            self.report()
            os._exit(1)  # the stuck thread cannot be stopped
        seconds = time.perf_counter() - started
        if seconds > self.max_seconds:
            self.unexpected.append(f"{what}: took {seconds:.1f} s")
        self.slowest = max(self.slowest, (seconds, what))
        return result

    def load(self, data: bytes, index: int) -> None:
        path = self.folder / "files" / f"{index % 50}.json"
        path.write_bytes(data)

        def run() -> str:
            try:
                resolve(load_hint_file(path), WIDTH, HEIGHT)
            except HintError as exc:
                return "file refused" if "\n" not in str(exc) else "file refused on two lines"
            except Exception as exc:  # noqa: BLE001 - exactly what the fuzzer looks for
                return f"file {type(exc).__name__}: {str(exc)[:200]}"
            return "file valid"

        self.count(self._timed(f"load ({len(data)} bytes: {data[:60]!r})", run), ("file valid", "file refused"))

    def special(self) -> None:
        fifo = self.folder / "files" / "fifo.json"
        fifo.unlink(missing_ok=True)
        os.mkfifo(fifo)
        try:
            self._timed("FIFO", load_hint_file, fifo)
            self.count("FIFO read", ())
        except HintError:
            self.count("FIFO refused", ("FIFO refused",))
        except Exception as exc:  # noqa: BLE001 - exactly what the fuzzer looks for
            self.count(f"FIFO {type(exc).__name__}: {str(exc)[:200]}", ())

    def request(self, method: str, path: str, body: bytes | None = None) -> None:
        def run() -> str:
            conn = http.client.HTTPConnection("127.0.0.1", self.server.server_address[1], timeout=self.max_seconds)
            try:
                conn.request(method, path, body=body, headers={TOKEN_HEADER: self.server.token, "Content-Type": "application/json"})
                response = conn.getresponse()
                return _classify(response.status, response.read())
            except (OSError, http.client.HTTPException) as exc:
                return f"http dropped: {type(exc).__name__}"
            finally:
                conn.close()

        what = f"{method} {path[:60]}" + (f" ({len(body)} bytes: {body[:60]!r})" if body is not None else "")
        self.count(self._timed(what, run), ("http 200", "http 400"))

    def raw(self, request: bytes) -> None:
        def run() -> str:
            try:
                with socket.create_connection(("127.0.0.1", self.server.server_address[1]), timeout=self.max_seconds) as conn:
                    conn.sendall(request)
                    # A body shorter than its Content-Length ends here; one that stalls is
                    # answered after 30 s (tests/hints/test_editor.py times that).
                    conn.shutdown(socket.SHUT_WR)
                    reader = conn.makefile("rb")
                    status = int(reader.readline().split()[1])
                    headers = {}
                    while line := reader.readline().decode("latin-1").strip():
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                    return _classify(status, reader.read(int(headers.get("content-length", "0"))))
            except (OSError, ValueError, IndexError) as exc:
                return f"http dropped: {type(exc).__name__}"

        self.count(self._timed("raw request", run), ("http 400", "http 405", "http 411", "http 413", "http 408", "http 505"))

    def count(self, outcome: str, expected: tuple[str, ...]) -> None:
        """Count an outcome; one not expected (any plain "http 4xx" is) is kept for the report."""
        self.counts[outcome] += 1
        if outcome not in expected and not re.fullmatch(r"http 4\d\d", outcome):
            self.unexpected.append(outcome)

    def report(self) -> None:
        print(json.dumps({
            "outcomes": dict(sorted(self.counts.items())),
            "slowest_case": {"seconds": round(self.slowest[0], 2), "what": self.slowest[1][:100]},
            "unexpected": self.unexpected[:20], "unexpected_count": len(self.unexpected),
        }, indent=2, ensure_ascii=False))


def _classify(status: int, data: bytes) -> str:
    if status >= 400:
        try:
            error = json.loads(data)["error"]
        except (ValueError, KeyError, TypeError):
            return f"http {status} without a JSON error"
        if not isinstance(error, str) or "\n" in error:
            return f"http {status} with a bad error"
    return f"http {status}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-seconds", type=float, default=5.0, help="longest any one case may take")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fuzz-hints-") as folder:
        (Path(folder) / "files").mkdir()
        fuzzer = Fuzzer(Path(folder), args.max_seconds)
        try:
            for i in range(args.iterations):
                data = documents(rng)
                fuzzer.load(data, i)
                fuzzer.request("POST", rng.choice(["/api/preview", "/api/render", "/api/save"]), data)
                fuzzer.request("GET", queries(rng))
                if i % 10 == 0:
                    fuzzer.raw(head_mischief(rng, fuzzer.host, fuzzer.server.token))
                if i % 100 == 0 and hasattr(os, "mkfifo"):
                    fuzzer.special()
        finally:
            fuzzer.server.shutdown()
            fuzzer.server.server_close()
        print(f"{args.iterations} iterations (seed {args.seed}) in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        fuzzer.report()
    return 1 if fuzzer.unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
