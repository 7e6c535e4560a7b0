"""Tables as small standalone HTML pages: the Snakemake report shows an HTML result inline
(a CSV is only offered for download), so the sweep's and the summary's tables are written
beside their CSV files in this form and marked as report items (workflow/rules)."""
from __future__ import annotations

import html
import math
from pathlib import Path

import pandas as pd

__all__ = ["write_html_tables", "sweep_frame"]

_STYLE = """body{font-family:system-ui,sans-serif;font-size:14px;margin:12px;color:#222}
h2{font-size:16px;margin:18px 0 6px}p{max-width:60em}
table{border-collapse:collapse;margin-bottom:12px}th,td{padding:3px 9px;border-bottom:1px solid #ddd;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}tr.mark td{font-weight:bold;background:#fff6d5}"""


def _cell(x) -> str:
    if isinstance(x, bool) or x is None:
        return "" if x is None else ("yes" if x else "no")
    if isinstance(x, float):
        if not math.isfinite(x):
            return "n/a"
        return f"{x:.4g}"
    return html.escape(str(x))


def write_html_tables(path, title: str, tables: list[tuple[str, pd.DataFrame]], note: str = "",
                      mark: str | None = None) -> None:
    """One HTML page: ``title``, ``note``, then each (heading, table); rows whose column ``mark``
    is true are highlighted (that column is not shown).  Written atomically."""
    from .io import atomic_path

    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{_STYLE}</style></head><body><h1 style='font-size:18px'>{html.escape(title)}</h1>"]
    if note:
        parts.append(f"<p>{html.escape(note)}</p>")
    for heading, df in tables:
        cols = [c for c in df.columns if c != mark]
        parts.append(f"<h2>{html.escape(heading)}</h2><table><tr>" + "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
                     + "</tr>")
        for _, row in df.iterrows():
            cls = " class='mark'" if mark is not None and bool(row[mark]) else ""
            parts.append(f"<tr{cls}>" + "".join(f"<td>{_cell(row[c])}</td>" for c in cols) + "</tr>")
        parts.append("</table>")
    parts.append("</body></html>\n")
    with atomic_path(path) as tmp:
        Path(tmp).write_text("".join(parts))


def sweep_frame(summary: dict) -> pd.DataFrame:
    """One row per re-trained layer and per baseline of a target's ``summary.json``: test nMSE
    (mean, 95% interval over seeds, std), CC and spec_err means, seeds; ``best`` marks the best layer."""
    rows = []
    for kind, entries in (("layer", summary.get("layers", {})), ("baseline", summary.get("baselines", {}))):
        for key, v in entries.items():
            rows.append({"re-trained": f"layer {key}" if kind == "layer" else key, "nMSE mean": v.get("mean"),
                         "95% low": v.get("ci95_low"), "95% high": v.get("ci95_high"), "std": v.get("std"),
                         "CC mean": v.get("cc_mean"), "spec_err mean": v.get("spec_err_mean"), "seeds": v.get("n"),
                         "best": kind == "layer" and str(key) == str(summary.get("best_layer"))})
    return pd.DataFrame(rows)
