"""The export's static website: an index of every scan (filter and search in plain JS over an
embedded JSON array) and a page per scan with a before/after slider, deep zoom and provenance.
It opens from disk (file://) or any web server; everything it needs is vendored in assets/."""

from __future__ import annotations

import json
from html import escape
from importlib.resources import files
from pathlib import Path

from restore.scanio.names import valid_document

AI_LABEL = "AI-colorized"
ASSETS = files("catalog") / "export_assets"

# In a <script> element, "</script" ends it and "<!--" or "<script" change how the rest is
# read (HTML's script data states), whatever the JSON means; U+2028 and U+2029 end a line
# in older JavaScript. JSON can escape each, and "<", ">" and "&" only occur in its strings.
_SCRIPT_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def copy_assets(site: Path) -> int:
    """Copy the vendored scripts, styles and OpenSeadragon into site/assets; return files written."""
    written = 0

    def walk(source, target: Path) -> None:  # noqa: ANN001 - an importlib Traversable
        nonlocal written
        for item in source.iterdir():
            if item.is_dir():
                walk(item, target / item.name)
            else:
                data = item.read_bytes()
                path = target / item.name
                if not (path.is_file() and path.read_bytes() == data):
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(data)
                    written += 1

    walk(ASSETS, site / "assets")
    return written


def _script_json(value: object) -> str:
    """`value` as JSON that can sit inside a <script> element whatever its strings hold."""
    return json.dumps(value, ensure_ascii=False).translate(_SCRIPT_SAFE)


def _page(title: str, body: str, root: str, scripts: tuple[str, ...] = ()) -> str:
    tags = "".join(f'<script src="{root}assets/{s}"></script>\n' for s in scripts)
    return (
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<link rel=\"stylesheet\" href=\"{root}assets/site.css\">\n</head>\n"
        f"<body>\n{body}\n{tags}</body>\n</html>\n"
    )


def index_page(records: list[dict]) -> str:
    # Names that are not UTF-8 become \\xNN text: the page must be valid UTF-8.
    records = valid_document(records)  # type: ignore[assignment]
    items = []
    for r in records:
        current = next((x for x in r["results"] if x["current"]), None)
        thumb = (current["derived"] if current else r["original"] or {}).get("thumbnail", "")
        items.append({
            "id": r["scan_id"], "name": r["name"], "folder": r["folder"], "status": r["status"],
            "date": (r["ingested_at"] or "")[:10], "notes": r["notes"], "page": r["page"], "thumbnail": thumb,
            "colorized": current is not None,
        })
    data = _script_json(items)
    body = f"""<h1>photochrom catalog</h1>
<p class="muted">{len(records)} scans. Images marked <span class="badge">{AI_LABEL}</span> were colorized by a
trained model: their colours are a machine's guess, not a record of the original scene.</p>
<header class="filters">
<input id="q" type="search" placeholder="Search name or note" aria-label="Search name or note">
<label>Folder <select id="folder"><option value="*">all</option></select></label>
<label>Status <select id="status"><option value="*">all</option></select></label>
<label>From <input id="from" type="date"></label> <label>to <input id="to" type="date"></label>
<span id="count" class="muted"></span>
</header>
<main id="grid" class="grid"></main>
<noscript><ul>{"".join(f'<li><a href="{escape(r["page"])}">{escape(r["name"])}</a></li>' for r in records)}</ul></noscript>
<script id="scans-data" type="application/json">{data}</script>"""
    return _page("photochrom catalog", body, "", ("index.js",))


def _row(label: str, value: object, code: bool = False) -> str:
    text = escape("" if value is None else str(value))
    return f"<tr><th>{escape(label)}</th><td>{f'<code>{text}</code>' if code and text else text}</td></tr>"


def _repair_section(repair: dict, root: str, name: str) -> str:
    """What --repair changed: the mask over the original, and its record."""
    table = ("<table>" + _row("Repaired pixels", f"{100 * float(repair.get('fraction', 0)):.3f}%")
             + _row("Damage segmenter", repair.get("segmenter")) + _row("Segmenter SHA-256", repair.get("weights_sha256"), True)
             + _row("Mask file (beside the result)", repair.get("mask")) + _row("Mask SHA-256", repair.get("mask_sha256"), True) + "</table>")
    overlay = repair.get("overlay")
    image = (f'<p><img src="{root}{escape(overlay)}" alt="Repair mask of {name} in red over the original" style="max-width:100%;height:auto"></p>'
             if overlay else "")
    return f"<h3>Repair: the mask over the original (red: pixels filled)</h3>{image}{table}"


def scan_page(record: dict) -> str:
    record = valid_document(record)  # type: ignore[assignment]
    root = "../"
    original, results = record["original"], record["results"]
    current = next((r for r in results if r["current"]), None)
    name = escape(record["name"])
    parts = [f'<p><a href="{root}index.html">← all scans</a></p>', f"<h1>{name}</h1>",
             f'<p class="muted">{escape(record["folder"] or "(top level)")} · {escape(record["status"])} · ingested {escape(record["ingested_at"] or "")}</p>']
    if original and current:
        o, c = original, current["derived"]
        parts.append(f"""<h2>Before / after</h2>
<div class="compare" data-scan="{record['scan_id']}">
<img class="before" src="{root}{escape(o['image'])}" width="{o['width']}" height="{o['height']}" alt="Original scan of {name}">
<img class="after" src="{root}{escape(c['image'])}" width="{c['width']}" height="{c['height']}" alt="{AI_LABEL} version of {name}" draggable="false">
<div class="divider"></div><span class="tag left">Original</span><span class="tag right">{AI_LABEL}</span>
</div>
<p><input class="compare-range" type="range" min="0" max="100" value="50" aria-label="Divider position"></p>""")
    elif original:
        parts.append(f'<h2>Original</h2><img src="{root}{escape(original["image"])}" width="{original["width"]}" height="{original["height"]}" alt="Original scan of {name}" style="max-width:100%;height:auto">')
    elif current:
        parts.append(f'<h2>{AI_LABEL}</h2><span class="badge">{AI_LABEL}</span><br><img src="{root}{escape(current["derived"]["image"])}" alt="{AI_LABEL} version of {name}" style="max-width:100%;height:auto">')
    sources = [root + d["dzi"] for d in ([original] if original else []) + ([current["derived"]] if current else []) if d and d.get("dzi")]
    if sources:
        toggle = f'<button id="zoom-{record["scan_id"]}-toggle">Show original</button> <span class="badge">{AI_LABEL}</span> shown on top' if len(sources) > 1 else ""
        parts.append(f"""<h2>Full resolution</h2><p>{toggle}</p>
<div class="zoom" id="zoom-{record['scan_id']}" data-prefix="{root}assets/openseadragon/images/" data-sources="{escape(json.dumps(sources))}"></div>""")
    for r in reversed(results):
        label = f"{AI_LABEL} result, job {r['job_id']}" + (" (shown above)" if r is current else "")
        parts.append(f'<h2>{escape(label)}</h2><p><span class="badge">{AI_LABEL}</span> '
                     f'<a href="{root}{escape(r["derived"]["image"])}">image</a></p><table>'
                     + _row("Label", AI_LABEL) + _row("Model", r["model"]) + _row("Weights SHA-256", r["weights_sha256"] or "none", True)
                     + _row("Settings", json.dumps(r["settings"], sort_keys=True), True)
                     + _row("Hint file", r["hints_path"] or "none") + _row("Hint file SHA-256", r["hints_sha256"] or "none", True)
                     + (_row("Series reference", f"{r['reference']['path']} ({100 * float(r['reference'].get('coverage', 0)):.0f}% of the scan matched)")
                        + _row("Reference SHA-256", r["reference"]["sha256"], True) if r.get("reference") else "")
                     + _row("Job / task", f"{r['job_id']} / {r['task_id']}") + _row("Finished", r["finished_at"])
                     + _row("Result SHA-256", r["result_sha256"], True) + _row("Tool", r["tool"]) + "</table>")
        if r.get("repair"):
            parts.append(_repair_section(r["repair"], root, name))
    parts.append("<h2>Scan</h2><table>" + _row("SHA-256", record["scan_sha256"], True) + _row("Source", record["source_path"])
                 + _row("Format", f"{record['format']}, {record['bit_depth']}-bit {record['colour_mode']}, {record['width']}×{record['height']}")
                 + _row("Tone", record["tone"]) + _row("Notes", record["notes"])
                 + f'<tr><th>IIIF</th><td><a href="{root}{escape(record["iiif_manifest"])}">manifest</a></td></tr></table>')
    history = "".join(f"<tr><td>{escape(h['at'] or '')}</td><td>{escape(h['what'])}</td><td>{escape(h['outcome'])}</td><td>{escape(h['detail'])}</td></tr>" for h in record["history"])
    parts.append(f"<h2>History</h2><table><tr><th>When</th><th>What</th><th>Outcome</th><th>Detail</th></tr>{history}</table>")
    return _page(f"{record['name']} · photochrom", "\n".join(parts), root, ("openseadragon/openseadragon.min.js", "compare.js"))
