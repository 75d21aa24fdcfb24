"""`photochrom hints edit`: a local web editor for one scan's hint file.

A stdlib ThreadingHTTPServer bound to 127.0.0.1 on a free port, with a per-session random
token on every request (`?token=` on GET, header `X-Photochrom-Token` on any request; POSTs
need the header, which a cross-site form cannot send). Wrong or missing token: 403, nothing
changes. Hint documents are validated exactly as `hints validate` does (hints.schema), and a
save is written atomically (temp file + rename) only when the whole document is valid.

Endpoints: GET / (the page), GET /api/scan, GET /api/image (JPEG, long side <= 1600),
POST /api/preview (PNG colorized at long side ~512 with the posted hints), POST /api/save.
"""

from __future__ import annotations

import dataclasses
import io
import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import cv2
import numpy as np
from PIL import Image

from hints.schema import SCHEMA_ID, Hint, HintError, HintFile, load_hint_file, parse_hint_document, resolve
from restore.files import file_sha256
from restore.output import write_atomically
from restore.pixels import ScanPixels, read_scan

IMAGE_LONG_SIDE = 1600
PREVIEW_LONG_SIDE = 512
MAX_BODY_BYTES = 4 * 1024 * 1024
TOKEN_HEADER = "X-Photochrom-Token"
#: Called after a save with (scan sha256, the saved HintFile); returns whether it recorded it.
OnSave = Callable[[str, HintFile], bool]


class EditorError(Exception):
    """A request the editor refuses (HTTP 400); the message is one line."""


def default_hints_path(scan_path: Path) -> Path:
    """Where a scan's hint file goes when --hints is not given: `<scan folder>/hints/<stem>.json`."""
    return scan_path.parent / "hints" / f"{scan_path.stem}.json"


def _scaled(l_hw: np.ndarray, long_side: int) -> np.ndarray:
    height, width = l_hw.shape
    scale = min(1.0, long_side / max(height, width))
    if scale >= 1.0:
        return l_hw
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(l_hw, size, interpolation=cv2.INTER_AREA)


def _lightness_to_rgb_u8(l_hw: np.ndarray) -> np.ndarray:
    from skimage.color import lab2rgb

    lab = np.zeros((*l_hw.shape, 3), np.float64)
    lab[..., 0] = l_hw
    return (np.clip(lab2rgb(lab), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


class EditorSession:
    """One scan, its hint file, and the model that makes previews. Thread-safe."""

    def __init__(
        self, scan_path: Path, hints_path: Path | None = None, on_save: OnSave | None = None, model: str = "lite"
    ) -> None:
        from restore.models.registry import create_model
        from restore.pipeline import RestoreSettings

        self.scan_path = Path(scan_path)
        self.hints_path = Path(hints_path) if hints_path else default_hints_path(self.scan_path)
        self.on_save = on_save  # e.g. record the saved file in the catalog (restore does not import catalog)
        self.sha256 = file_sha256(self.scan_path)
        self.scan: ScanPixels = read_scan(self.scan_path)
        self.width, self.height = self.scan.width, self.scan.height
        self.settings = RestoreSettings(model=model)
        self.model = create_model(model)
        l_preview = _scaled(self.scan.l_hw, PREVIEW_LONG_SIDE)
        self.preview_scan = dataclasses.replace(self.scan, l_hw=np.ascontiguousarray(l_preview), alpha=None, bit_depth=8)
        self._image_jpeg: bytes | None = None
        self._lock = threading.Lock()
        self.current: dict[str, object] | None = None
        if self.hints_path.is_file():  # an existing file must be valid for this scan to be edited
            hint_file = load_hint_file(self.hints_path)
            resolve(hint_file, self.width, self.height, self.sha256)
            self.current = json.loads(self.hints_path.read_bytes())

    # -- documents ---------------------------------------------------------------------

    def document(self, body: object) -> dict[str, object]:
        """A request body as a full hint document: the document itself (it has "schema"), an
        object of its other keys (e.g. {"points": [...], "space": ...}), or a list of points."""
        if isinstance(body, list):
            body = {"points": body}
        if not isinstance(body, dict):
            raise EditorError("expected a hint document, an object with \"points\", or a list of points")
        if "schema" in body:
            document = dict(body)
        else:
            document = {"schema": SCHEMA_ID, "image": {"sha256": self.sha256, "path": self.scan_path.name}, **body}
        if "image" not in document:
            document["image"] = {"sha256": self.sha256, "path": self.scan_path.name}
        return document

    def check(self, document: dict[str, object]) -> tuple[bytes, HintFile, list[Hint]]:
        """The document's file bytes, validated as `hints validate` would against this scan."""
        data = (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode()
        hint_file = parse_hint_document(data, self.hints_path)
        hints = resolve(hint_file, self.width, self.height, self.sha256)
        return data, hint_file, hints

    # -- endpoints ---------------------------------------------------------------------

    def info(self) -> dict[str, object]:
        return {
            "name": self.scan_path.name, "width": self.width, "height": self.height, "sha256": self.sha256,
            "hints_path": str(self.hints_path), "hints": self.current,
        }

    def image_jpeg(self) -> bytes:
        with self._lock:
            if self._image_jpeg is None:
                rgb = _lightness_to_rgb_u8(_scaled(self.scan.l_hw, IMAGE_LONG_SIDE))
                out = io.BytesIO()
                Image.fromarray(rgb).save(out, "JPEG", quality=90)
                self._image_jpeg = out.getvalue()
            return self._image_jpeg

    def preview_png(self, body: object) -> bytes:
        """The scan colorized at preview resolution with the body's hints, as PNG."""
        from restore.pipeline import colorize

        _, _, hints = self.check(self.document(body))
        preview = self.preview_scan
        sy, sx = preview.height / self.height, preview.width / self.width
        scaled = [
            Hint((h.x_px + 0.5) * sx - 0.5, (h.y_px + 0.5) * sy - 0.5, h.ab, max(0.5, h.radius_px * min(sx, sy)), h.note)
            for h in hints
        ]
        with self._lock:  # one model, one preview at a time
            rgb = colorize(preview, self.model, self.settings, hints=scaled)
        out = io.BytesIO()
        Image.fromarray(rgb.astype(np.uint8)).save(out, "PNG", compress_level=1)
        return out.getvalue()

    def save(self, body: object) -> dict[str, object]:
        """Validate and write the hint file atomically; record it in the catalog with --db."""
        document = self.document(body)
        data, _, _ = self.check(document)
        target = self.hints_path
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(target, lambda temporary: temporary.write_bytes(data), durable=True)
        hint_file = load_hint_file(target)
        with self._lock:
            self.current = document
        recorded = bool(self.on_save(self.sha256, hint_file)) if self.on_save else False
        return {"ok": True, "path": str(target), "sha256": hint_file.sha256, "points": len(hint_file.points), "recorded": recorded}


class EditorServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, session: EditorSession, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.session = session
        self.token = secrets.token_urlsafe(32)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/?token={self.token}"


def make_server(
    scan_path: Path, hints_path: Path | None = None, on_save: OnSave | None = None, model: str = "lite", port: int = 0
) -> EditorServer:
    """The editor for one scan, bound to 127.0.0.1 (port 0: a free one); call serve_forever().
    Raises ScanError, HintError (an existing invalid hint file), ModelError."""
    return EditorServer(EditorSession(scan_path, hints_path, on_save, model), port)


class _Handler(BaseHTTPRequestHandler):
    server: EditorServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet: the token is in URLs
        pass

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, document: object) -> None:
        self._send(status, json.dumps(document).encode(), "application/json")

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": message.replace("\n", " ")})

    def _authorised(self, *, allow_query: bool) -> bool:
        supplied = self.headers.get(TOKEN_HEADER, "")
        if not supplied and allow_query:
            supplied = (parse_qs(urlsplit(self.path).query).get("token") or [""])[0]
        if supplied and secrets.compare_digest(supplied.encode(), self.server.token.encode()):
            return True
        self._error(403, "missing or wrong token")
        return False

    def do_GET(self) -> None:  # noqa: N802
        if not self._authorised(allow_query=True):
            return
        route = urlsplit(self.path).path
        session = self.server.session
        if route == "/":
            self._send(200, PAGE.replace("__TOKEN__", self.server.token).encode(), "text/html; charset=utf-8")
        elif route == "/api/scan":
            self._json(200, session.info())
        elif route == "/api/image":
            self._send(200, session.image_jpeg(), "image/jpeg")
        else:
            self._error(404, f"no such page: {route}")

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            self._error(413, f"request body over {MAX_BODY_BYTES} bytes")
            return
        raw = self.rfile.read(length) if length > 0 else b""
        if not self._authorised(allow_query=False):
            return
        route = urlsplit(self.path).path
        if route not in ("/api/preview", "/api/save"):
            self._error(404, f"no such endpoint: {route}")
            return
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            self._error(400, f"not valid JSON: {exc}")
            return
        session = self.server.session
        try:
            if route == "/api/preview":
                self._send(200, session.preview_png(body), "image/png")
            else:
                self._json(200, session.save(body))
        except (HintError, EditorError) as exc:
            self._error(400, str(exc))
        except Exception as exc:  # noqa: BLE001 - the page shows it; the server keeps running
            self._error(500, f"{type(exc).__name__}: {exc}")


PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>photochrom hints</title>
<style>
body{font-family:sans-serif;margin:1em} .row{display:flex;gap:1em;align-items:flex-start}
.pane{position:relative} .pane img{max-width:45vw;max-height:80vh;display:block}
#marks{position:absolute;left:0;top:0;pointer-events:none}
#error{color:#b00} li{margin:.2em 0} .sw{display:inline-block;width:1em;height:1em;vertical-align:middle;border:1px solid #444}
</style></head><body>
<h3 id="title">photochrom hints</h3>
<div>colour <input type="color" id="colour" value="#7a9cc6"> <button id="save">Save</button> <span id="status"></span></div>
<div id="error"></div>
<div class="row">
  <div class="pane"><img id="scan" alt="scan"><svg id="marks"></svg></div>
  <div class="pane"><img id="preview" alt="preview"></div>
  <ol id="points"></ol>
</div>
<script>
const TOKEN = "__TOKEN__";
const H = {"X-Photochrom-Token": TOKEN, "Content-Type": "application/json"};
let info = null, points = [], space = "pixels";
const $ = (id) => document.getElementById(id);
function hex(c){ return typeof c === "string" ? c : "#888888"; }
function draw(){
  const img = $("scan"), svg = $("marks"), sx = img.clientWidth / info.width, sy = img.clientHeight / info.height;
  svg.setAttribute("width", img.clientWidth); svg.setAttribute("height", img.clientHeight);
  svg.innerHTML = points.map((p) => {
    const x = space === "normalized" ? p.x * (info.width - 1) : p.x, y = space === "normalized" ? p.y * (info.height - 1) : p.y;
    return `<circle cx="${(x + .5) * sx}" cy="${(y + .5) * sy}" r="5" fill="${hex(p.color)}" stroke="white"/>`; }).join("");
  $("points").innerHTML = "";
  points.forEach((p, i) => {
    const li = document.createElement("li");
    li.innerHTML = `<span class="sw" style="background:${hex(p.color)}"></span> (${p.x}, ${p.y}) `;
    const del = document.createElement("button"); del.textContent = "delete";
    del.onclick = () => { points.splice(i, 1); changed(); }; li.appendChild(del); $("points").appendChild(li);
  });
}
let pending = null;
async function preview(){
  const r = await fetch("/api/preview", {method: "POST", headers: H, body: JSON.stringify({space, points})});
  if (!r.ok) { $("error").textContent = (await r.json()).error; return; }
  $("error").textContent = ""; const old = $("preview").src;
  $("preview").src = URL.createObjectURL(await r.blob()); if (old.startsWith("blob:")) URL.revokeObjectURL(old);
}
function changed(){ draw(); clearTimeout(pending); pending = setTimeout(preview, 150); $("status").textContent = "unsaved"; }
$("scan").onclick = (e) => {
  const img = $("scan"), x = Math.min(info.width - 1, Math.floor(e.offsetX * info.width / img.clientWidth));
  const y = Math.min(info.height - 1, Math.floor(e.offsetY * info.height / img.clientHeight));
  points.push(space === "normalized" ? {x: x / (info.width - 1), y: y / (info.height - 1), color: $("colour").value}
                                     : {x, y, color: $("colour").value});
  changed();
};
$("save").onclick = async () => {
  const doc = Object.assign({}, info.hints || {}, {schema: "photochrom.hints/1", space, points});
  if (!doc.image) doc.image = {sha256: info.sha256, path: info.name};
  const r = await fetch("/api/save", {method: "POST", headers: H, body: JSON.stringify(doc)});
  const j = await r.json();
  if (r.ok) { $("status").textContent = "saved " + j.path; $("error").textContent = ""; info.hints = doc; }
  else $("error").textContent = j.error;
};
(async () => {
  info = await (await fetch("/api/scan", {headers: H})).json();
  $("title").textContent = `${info.name} (${info.width}x${info.height}) -> ${info.hints_path}`;
  if (info.hints) { points = info.hints.points.slice(); space = info.hints.space || "pixels"; }
  $("scan").onload = () => { draw(); preview(); };
  $("scan").src = "/api/image?token=" + encodeURIComponent(TOKEN);
})();
</script></body></html>
"""
