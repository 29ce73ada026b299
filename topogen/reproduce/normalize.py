"""Executed notebooks made independent of when, where and how fast they ran.

The runner writes every executed notebook through :func:`normalize_notebook`,
so a rerun that computes the same results writes the same bytes.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["normalize_notebook", "KERNEL"]

#: The kernel every executed notebook names (the one ``make lab`` installs).
KERNEL = "python3"
WIDGET = "application/vnd.jupyter.widget-view+json"


def normalize_notebook(path: Path, display_path: str) -> None:
    """Remove volatile metadata (timestamps, durations, temporary paths, widget ids, the random id of the injected
    parameters cell) and merge split stream outputs, in place."""
    nb = json.loads(Path(path).read_text())
    meta = nb.get("metadata", {})
    pm = meta.get("papermill")
    if isinstance(pm, dict):
        for key in ("start_time", "end_time", "duration", "exception", "environment_variables", "version"):
            pm.pop(key, None)
        pm["input_path"] = pm["output_path"] = display_path
    meta.get("kernelspec", {}).update({"name": KERNEL})
    meta.pop("widgets", None)  # widget state: random model ids, and nothing a reader without the kernel can use
    for cell in nb.get("cells", []):
        cmeta = cell.get("metadata", {})
        if "injected-parameters" in cmeta.get("tags", []):  # papermill names the cell it adds at random
            cell["id"] = "injected-parameters"
        cmeta.pop("papermill", None)
        cmeta.pop("execution", None)
        for out in cell.get("outputs", []):
            out.get("metadata", {}).pop("execution", None)
            data = out.get("data", {})
            if WIDGET in data and len(data) > 1:  # a live widget's id; its text/plain stays
                del data[WIDGET]
        if "outputs" in cell:
            cell["outputs"] = _merge_streams(cell["outputs"])
    Path(path).write_text(json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + "\n")


def _merge_streams(outputs: list) -> list:
    """Consecutive outputs of one stream (stdout, stderr) as one output, the text as lines.

    How printed text splits into outputs depends on when the kernel flushed
    it; merged, a notebook's outputs (and its diff) depend only on the text.
    """
    merged = []
    for out in outputs:
        prev = merged[-1] if merged else None
        if (out.get("output_type") == "stream" and prev is not None and prev.get("output_type") == "stream"
                and prev.get("name") == out.get("name")):
            prev["text"] = _text(prev["text"]) + _text(out["text"])
        else:
            merged.append(dict(out))
    for out in merged:
        if out.get("output_type") == "stream":
            out["text"] = _text(out["text"]).splitlines(keepends=True)
    return merged


def _text(text) -> str:
    return "".join(text) if isinstance(text, list) else str(text)
