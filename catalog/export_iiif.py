"""IIIF Presentation 3 for the export: a manifest per scan whose one canvas is painted with a
Choice of the original and its AI-colorized results, and a collection of them all."""

from __future__ import annotations

CONTEXT = "http://iiif.io/api/presentation/3/context.json"
AI_LABEL = "AI-colorized"


def _text(value: str, lang: str = "en") -> dict[str, list[str]]:
    return {lang: [value]}


def _entry(label: str, value: object) -> dict[str, object]:
    return {"label": _text(label), "value": _text("" if value is None else str(value), "none")}


def _image(base_url: str, derived: dict, label: str) -> dict[str, object]:
    return {
        "id": base_url + derived["image"],
        "type": "Image",
        "format": "image/jpeg",
        "width": derived["width"],
        "height": derived["height"],
        "label": _text(label),
    }


def manifest(record: dict, base_url: str) -> dict[str, object]:
    """The manifest of one exported scan (`record` as built by catalog.export)."""
    scan_id = record["scan_id"]
    manifest_id = f"{base_url}iiif/{scan_id}.json"
    canvas_id = f"{base_url}iiif/{scan_id}/canvas/1"
    original, results = record["original"], record["results"]
    width = (original or {}).get("width") or record["width"] or 1
    height = (original or {}).get("height") or record["height"] or 1
    bodies = [_image(base_url, original, "Original scan")] if original else []
    bodies += [
        _image(base_url, r["derived"], f"{AI_LABEL} (model {r['model']}, job {r['job_id']})") for r in results
    ]
    metadata = [
        _entry("Scan SHA-256", record["scan_sha256"]),
        _entry("Folder", record["folder"]),
        _entry("Ingested", record["ingested_at"]),
        _entry("Status", record["status"]),
    ]
    for r in results:
        metadata += [
            {"label": _text(f"{AI_LABEL} result (job {r['job_id']})"),
             "value": _text(f"{AI_LABEL} by model {r['model']}, weights SHA-256 {r['weights_sha256'] or 'none'}, "
                            f"finished {r['finished_at']}; not a record of the original colours")},
        ]
    doc: dict[str, object] = {
        "@context": CONTEXT,
        "id": manifest_id,
        "type": "Manifest",
        "label": _text(record["name"], "none"),
        "metadata": metadata,
        "items": [],
    }
    if results:
        doc["summary"] = _text(f"The original scan and {len(results)} {AI_LABEL} version(s): choose one to view.")
    thumb = (results[-1]["derived"] if results else original or {}).get("thumbnail")
    if thumb:
        doc["thumbnail"] = [{"id": base_url + thumb, "type": "Image", "format": "image/jpeg"}]
    if bodies:
        body = bodies[0] if len(bodies) == 1 else {"type": "Choice", "items": bodies}
        doc["items"] = [{
            "id": canvas_id,
            "type": "Canvas",
            "label": _text(record["name"], "none"),
            "width": width,
            "height": height,
            "items": [{
                "id": f"{canvas_id}/page/1",
                "type": "AnnotationPage",
                "items": [{
                    "id": f"{canvas_id}/page/1/annotation/1",
                    "type": "Annotation",
                    "motivation": "painting",
                    "body": body,
                    "target": canvas_id,
                }],
            }],
        }]
    return doc


def collection(records: list[dict], base_url: str) -> dict[str, object]:
    return {
        "@context": CONTEXT,
        "id": f"{base_url}iiif/collection.json",
        "type": "Collection",
        "label": _text("photochrom export"),
        "items": [
            {"id": f"{base_url}iiif/{r['scan_id']}.json", "type": "Manifest", "label": _text(r["name"], "none")}
            for r in records
        ],
    }
