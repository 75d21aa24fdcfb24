"""`photochrom hints edit`'s server: a local web editor for one scan's hint file.

A stdlib ThreadingHTTPServer bound to 127.0.0.1 on a free port, with a per-session random
token on every request (`?token=` on GET, header `X-Photochrom-Token` on any request; POSTs
need the header, which a cross-site form cannot send). Wrong or missing token: 403, nothing
changes. The Host header must name the server itself (`127.0.0.1:PORT` or `localhost:PORT`),
else 403: a page from another site whose domain is re-pointed at 127.0.0.1 (DNS rebinding)
sends its own host name. Hint documents are checked by hints.validate, as `hints validate`
checks files, and a save is written atomically (temp file + rename) only when the whole
document is valid. Every refused request is answered with a one-line JSON error.

The scan and the model are a `Renderer`'s (hints/editor/renderer.py): this module reads no
image and runs no model, and imports nothing of restore.

Endpoints: GET / (the page, hints/editor/page.html), GET /api/scan, GET /api/image (the
scan's lightness as JPEG, long side <= 1600; with x, y, w, h and long: that region, long
side <= `long`, for zooming into large scans), GET /api/lightness?x=&y= (L* at a pixel, for
the colour picker), GET /api/reference (with `--reference`: where the series reference
matched, as JPEG at the preview's size; 400 without one), POST /api/reference (the bytes of
an image file picked in the page, at most 64 MiB, its name in the X-Photochrom-Name header;
an empty body clears it: previews and renders use it from then on), POST /api/preview (JPEG at long side 512: the global pass only, fast
enough to follow each change), POST /api/render (JPEG of the full-resolution result
through the whole pipeline; nothing is written), POST /api/save.

Requests are hostile-input proof: bodies are decoded as hint files are (hints/untrusted.py:
size, nesting, finite numbers), a POST needs a plain Content-Length of at most
MAX_BODY_BYTES, query numbers are plain decimal integers, and the stdlib's own refusals
(a malformed request line, an unknown method) are answered in JSON too. A refused body is
answered before it is read, then the connection is closed after draining what the client is
still sending (closing on unread bytes resets the connection, which can destroy the answer).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from hints.editor.renderer import OVERVIEW_LONG_SIDE, Renderer
from hints.schema import SCHEMA_ID, HintError, HintFile, default_radius
from hints.untrusted import MAX_FILE_BYTES, MAX_INTEGER_DIGITS, decode_json, read_regular_file, short
from hints.validate import CheckedHintFile, ScanIdentity, validate_hint_file

#: The largest side of a region the page may ask for (a 4K screen's width).
MAX_REGION_SIDE = 4096
MIN_REGION_SIDE = 16
#: A request body is at most what a hint file may be; a reference image picked in the page
#: (POST /api/reference) at most MAX_REFERENCE_BYTES.
MAX_BODY_BYTES = MAX_FILE_BYTES
MAX_REFERENCE_BYTES = 64 * 1024 * 1024
REFERENCE_NAME_HEADER = "X-Photochrom-Name"
#: Seconds a connection may stall (a body that never arrives) before it is answered 408 and closed.
SOCKET_TIMEOUT_S = 30.0
#: Seconds spent draining a refused body before closing the connection.
LINGER_S = 2.0
TOKEN_HEADER = "X-Photochrom-Token"
PAGE_FILE = "page.html"
#: Called after a save with (scan sha256, the saved HintFile); returns whether it recorded it.
OnSave = Callable[[str, HintFile], bool]


class EditorError(Exception):
    """A request the editor refuses (HTTP 400); the message is one line."""


def default_hints_path(scan_path: Path) -> Path:
    """Where a scan's hint file goes when --hints is not given: `<scan folder>/hints/<stem>.json`."""
    return scan_path.parent / "hints" / f"{scan_path.stem}.json"


def _write_atomically(path: Path, data: bytes) -> None:
    """Write `path` so that a reader finds the old file or the whole new one: a hidden
    temporary file beside it, flushed to disk, renamed over it, and the folder flushed (a lost
    save costs a person's work). The temporary file is removed if anything fails."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        with open(temporary, "xb") as stream:  # created as any new file is: the umask applies
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


# Plain decimal only: int() would also take " 12", "1_0" and other scripts' digits, and
# fail with a ValueError past 4300 digits.
_INTEGER = re.compile(r"-?[0-9]+")


def _integer(query: dict[str, str], name: str) -> int:
    value = query[name]
    if not _INTEGER.fullmatch(value):
        raise EditorError(f"{name} must be an integer, got {short(repr(value))}")
    if len(value.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise EditorError(f"{name} is out of range: more than {MAX_INTEGER_DIGITS} digits")
    return int(value)


class EditorSession:
    """One scan's renderer and its hint file: requests checked, hint documents validated and
    saved. Thread-safe."""

    def __init__(self, renderer: Renderer, hints_path: Path, on_save: OnSave | None = None) -> None:
        self.renderer = renderer
        self.scan = ScanIdentity(renderer.sha256, renderer.width, renderer.height)
        self.hints_path = Path(hints_path)
        self.on_save = on_save  # e.g. record the saved file in the catalog (hints does not import catalog)
        self._overview_jpeg: bytes | None = None
        self._lock = threading.Lock()
        self.current: dict[str, object] | None = None
        if self.hints_path.exists():  # an existing file must be valid for this scan to be edited
            data = read_regular_file(self.hints_path)
            validate_hint_file(self.hints_path, self.scan, data=data)
            self.current = decode_json(data, self.hints_path)  # type: ignore[assignment]

    @property
    def width(self) -> int:
        return self.scan.width

    @property
    def height(self) -> int:
        return self.scan.height

    # -- documents ---------------------------------------------------------------------

    def document(self, body: object) -> dict[str, object]:
        """A request body as a full hint document: the document itself (it has "schema"), an
        object of its other keys (e.g. {"points": [...], "space": ...}), or a list of points."""
        if isinstance(body, list):
            body = {"points": body}
        if not isinstance(body, dict):
            raise EditorError("expected a hint document, an object with \"points\", or a list of points")
        image = {"sha256": self.scan.sha256, "path": self.renderer.name}
        document = dict(body) if "schema" in body else {"schema": SCHEMA_ID, "image": image, **body}
        if "image" not in document:
            document["image"] = image
        return document

    def check(self, document: dict[str, object]) -> tuple[bytes, CheckedHintFile]:
        """The document's file bytes, validated against this scan as `hints validate` checks a file."""
        data = (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode()
        return data, validate_hint_file(self.hints_path, self.scan, data=data)

    # -- endpoints ---------------------------------------------------------------------

    def info(self) -> dict[str, object]:
        renderer = self.renderer
        return {
            "name": renderer.name, "width": self.width, "height": self.height, "sha256": self.scan.sha256,
            "hints_path": str(self.hints_path), "hints": self.current, "model": renderer.model,
            "default_radius": default_radius(self.width, self.height),
            "overview": {"width": renderer.overview_size[0], "height": renderer.overview_size[1]},
            "preview": {"width": renderer.preview_size[0], "height": renderer.preview_size[1]},
            "reference": getattr(renderer, "reference", None),
        }

    def image_jpeg(self) -> bytes:
        """The whole scan's lightness, long side <= OVERVIEW_LONG_SIDE (made once)."""
        with self._lock:
            if self._overview_jpeg is None:
                self._overview_jpeg = self.renderer.overview_jpeg()
            return self._overview_jpeg

    def region_jpeg(self, query: dict[str, str]) -> bytes:
        """A region (x, y, w, h in scan pixels) of the scan's lightness, long side <= `long`."""
        missing = [name for name in ("x", "y", "w", "h") if name not in query]
        if missing:
            raise EditorError(f"missing parameter {missing[0]!r} (a region needs x, y, w and h)")
        x, y, w, h = (_integer(query, name) for name in ("x", "y", "w", "h"))
        long_side = _integer(query, "long") if "long" in query else OVERVIEW_LONG_SIDE
        if not MIN_REGION_SIDE <= long_side <= MAX_REGION_SIDE:
            raise EditorError(f"long must be between {MIN_REGION_SIDE} and {MAX_REGION_SIDE}, got {long_side}")
        if w < 1 or h < 1 or x < 0 or y < 0 or x + w > self.width or y + h > self.height:
            raise EditorError(f"region x={x} y={y} w={w} h={h} is not inside the image ({self.width}x{self.height} pixels)")
        return self.renderer.region_jpeg(x, y, w, h, long_side)

    def reference_jpeg(self) -> bytes:
        """Where the series reference matched the scan (preview size)."""
        if getattr(self.renderer, "reference", None) is None:
            raise EditorError("no reference: start the editor with --reference IMAGE")
        return self.renderer.reference_jpeg()

    def use_reference(self, data: bytes, name: str) -> dict[str, object]:
        """A series reference picked in the page (the image file's bytes; empty: none): the
        previews and renders use it from now on. Returns what matched (or no reference)."""
        name = short(name.strip() or "picked reference")
        try:
            reference = self.renderer.use_reference(data or None, name)
        except ValueError as exc:  # not an image, no colour, too large: one line
            raise EditorError(str(exc)) from None
        return {"reference": reference}

    def lightness(self, query: dict[str, str]) -> dict[str, object]:
        """L* at a pixel: the colour picker offers the a*b* that exist at that lightness."""
        missing = [name for name in ("x", "y") if name not in query]
        if missing:
            raise EditorError(f"missing parameter {missing[0]!r}")
        x, y = _integer(query, "x"), _integer(query, "y")
        if not (0 <= x < self.width and 0 <= y < self.height):
            raise EditorError(f"({x}, {y}) is outside the image ({self.width}x{self.height} pixels)")
        return {"x": x, "y": y, "l": round(float(self.renderer.lightness(x, y)), 2)}

    def preview_jpeg(self, body: object) -> bytes:
        """The scan colorized at preview resolution with the body's hints (global pass only)."""
        return self.renderer.preview_jpeg(self.check(self.document(body))[1].hints)

    def render_jpeg(self, body: object) -> bytes:
        """The full-resolution result with the body's hints, as `restore` would make it, as
        JPEG; nothing is written to disk or the catalog."""
        return self.renderer.render_jpeg(self.check(self.document(body))[1].hints)

    def save(self, body: object) -> dict[str, object]:
        """Validate and write the hint file atomically; record it in the catalog with --db."""
        document = self.document(body)
        data, checked = self.check(document)  # parsed from these very bytes, named as the file
        hint_file = checked.file
        _write_atomically(self.hints_path, data)
        with self._lock:
            self.current = document
        recorded = bool(self.on_save(self.scan.sha256, hint_file)) if self.on_save else False
        return {"ok": True, "path": str(self.hints_path), "sha256": hint_file.sha256, "points": len(hint_file.points), "recorded": recorded}


class EditorServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, session: EditorSession, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.session = session
        self.token = secrets.token_urlsafe(32)
        self._page: str | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/?token={self.token}"

    @property
    def hosts(self) -> frozenset[str]:
        """The Host headers a request may carry: this server's own names."""
        port = self.server_address[1]
        return frozenset({f"127.0.0.1:{port}", f"localhost:{port}"})

    def page(self) -> bytes:
        if self._page is None:
            self._page = files("hints.editor").joinpath(PAGE_FILE).read_text(encoding="utf-8")
        return self._page.replace("__TOKEN__", self.token).encode()


def make_server(renderer: Renderer, hints_path: Path, on_save: OnSave | None = None, port: int = 0) -> EditorServer:
    """The editor for one scan's hint file at `hints_path` (`default_hints_path` when the
    user names none), bound to 127.0.0.1 (port 0: a free one); call serve_forever(). Raises
    HintError for an existing hint file that is not valid for the scan."""
    return EditorServer(EditorSession(renderer, hints_path, on_save), port)


# Only this page's own script and its images run: nothing may be fetched from elsewhere.
PAGE_POLICY = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' blob: data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
GET_PARAMETERS = {
    "/": set(), "/api/scan": set(), "/api/image": {"x", "y", "w", "h", "long"}, "/api/lightness": {"x", "y"},
    "/api/reference": {"t"},  # t: a cache-buster the page adds when the reference changes
}
POST_ROUTES = ("/api/preview", "/api/render", "/api/save", "/api/reference")


class _Handler(BaseHTTPRequestHandler):
    server: EditorServer
    protocol_version = "HTTP/1.1"
    timeout = SOCKET_TIMEOUT_S

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet: the token is in URLs
        pass

    def _send(self, status: int, body: bytes, content_type: str, *headers: tuple[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")  # the token is in the page's URL
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, document: object) -> None:
        self._send(status, json.dumps(document).encode(), "application/json")

    def _error(self, status: int, message: str, *headers: tuple[str, str]) -> None:
        self._send(status, json.dumps({"error": " ".join(message.split())}).encode(), "application/json", *headers)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The stdlib's own refusals (malformed request line, headers too long, unknown
        method) as this server's one-line JSON errors; the connection is closed, as the
        stdlib does. An unknown method is the client's error (405), not the stdlib's 501."""
        if code == HTTPStatus.NOT_IMPLEMENTED:
            code, message = HTTPStatus.METHOD_NOT_ALLOWED, f"method {short(repr(self.command))} not allowed: GET and POST only"
        self.close_connection = True
        if self.request_version == "HTTP/0.9":  # no version parsed: the stdlib would send the body alone
            self.request_version = "HTTP/1.0"
        phrase = message or HTTPStatus(code).phrase
        self._error(code, short(phrase, 200), ("Connection", "close"), *((("Allow", "GET, POST"),) if code == 405 else ()))

    def _refuse_body(self, status: int, message: str) -> None:
        """Answer without reading the body, then close the connection: what follows the
        headers cannot be trusted as the next request."""
        self.close_connection = True
        self._error(status, message, ("Connection", "close"))
        try:
            self.connection.shutdown(socket.SHUT_WR)  # the answer is complete
            self.connection.settimeout(LINGER_S)
            deadline = time.monotonic() + LINGER_S
            while time.monotonic() < deadline and self.connection.recv(65536):
                pass
        except OSError:
            pass

    def _body(self, limit: int = MAX_BODY_BYTES) -> bytes | None:
        """The request body (at most `limit` bytes), or None once the request has been answered with why not."""
        lengths = self.headers.get_all("Content-Length") or []
        if not lengths or self.headers.get("Transfer-Encoding"):
            self._refuse_body(411, "a POST needs a Content-Length (a chunked body is not accepted)")
            return None
        if len(lengths) > 1:
            self._refuse_body(400, "Content-Length given more than once")
            return None
        text = lengths[0].strip()
        if not (text.isascii() and text.isdigit()):
            self._refuse_body(400, f"Content-Length must be a number of bytes, got {short(repr(text))}")
            return None
        if len(text.lstrip("0")) > len(str(limit)) or int(text) > limit:
            self._refuse_body(413, f"request body over {limit} bytes")
            return None
        try:
            raw = self.rfile.read(int(text))
        except TimeoutError:
            self._refuse_body(408, f"request body not received within {self.timeout:g} s")
            return None
        if len(raw) < int(text):
            self._refuse_body(400, f"request body ended after {len(raw)} of its {int(text)} bytes")
            return None
        return raw

    def _authorised(self, query: dict[str, list[str]] | None) -> bool:
        """The Host header is this server's, and the token is right (query: GET may pass it there)."""
        host = (self.headers.get("Host") or "").lower()
        if host not in self.server.hosts:
            self._error(403, f"wrong Host header {short(repr(host))}: open the editor at {self.server.url.split('?')[0]}")
            return False
        supplied = self.headers.get(TOKEN_HEADER, "")
        if not supplied and query is not None:
            supplied = (query.get("token") or [""])[0]
        if supplied and secrets.compare_digest(supplied.encode(), self.server.token.encode()):
            return True
        self._error(403, "missing or wrong token")
        return False

    def do_GET(self) -> None:  # noqa: N802
        parts = urlsplit(self.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        if not self._authorised(query):
            return
        route, session = parts.path, self.server.session
        if route not in GET_PARAMETERS:
            self._error(404, f"no such page: {short(route)}")
            return
        try:
            unknown = sorted(set(query) - GET_PARAMETERS[route] - {"token"})
            if unknown:
                raise EditorError(f"unknown parameter {short(repr(unknown[0]))}")
            if any(len(values) > 1 for values in query.values()):
                raise EditorError("a parameter is given more than once")
            single = {name: values[0] for name, values in query.items() if name != "token"}
            if route == "/":
                self._send(200, self.server.page(), "text/html; charset=utf-8", ("Content-Security-Policy", PAGE_POLICY))
            elif route == "/api/scan":
                self._json(200, session.info())
            elif route == "/api/image":
                self._send(200, session.region_jpeg(single) if single else session.image_jpeg(), "image/jpeg")
            elif route == "/api/reference":
                self._send(200, session.reference_jpeg(), "image/jpeg")
            else:
                self._json(200, session.lightness(single))
        except EditorError as exc:
            self._error(400, str(exc))

    def do_POST(self) -> None:  # noqa: N802
        route = urlsplit(self.path).path
        raw = self._body(MAX_REFERENCE_BYTES if route == "/api/reference" else MAX_BODY_BYTES)  # read first: the connection stays usable
        if raw is None or not self._authorised(None):
            return
        if route not in POST_ROUTES:
            self._error(404, f"no such endpoint: {short(route)}")
            return
        session = self.server.session
        if route == "/api/reference":  # an image's bytes, not JSON
            try:
                name = unquote(self.headers.get(REFERENCE_NAME_HEADER, ""), errors="replace")  # the page sends it URI-encoded
                self._json(200, session.use_reference(raw, name))
            except EditorError as exc:
                self._error(400, str(exc))
            return
        try:
            body = decode_json(raw, "request body")
            if route == "/api/preview":
                started = time.perf_counter()
                jpeg = session.preview_jpeg(body)
                # How long the server took, for the page's own latency figures (bench/editor.py).
                self._send(200, jpeg, "image/jpeg", ("Server-Timing", f"preview;dur={(time.perf_counter() - started) * 1000:.1f}"))
            elif route == "/api/render":
                self._send(200, session.render_jpeg(body), "image/jpeg")
            else:
                self._json(200, session.save(body))
        except (HintError, EditorError) as exc:
            self._error(400, str(exc))
        except Exception as exc:  # noqa: BLE001 - the page shows it; the server keeps running
            self._error(500, f"{type(exc).__name__}: {exc}")
