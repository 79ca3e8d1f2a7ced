"""The report's HTML pieces: one self-contained page (inline CSS, figures embedded as base64
PNG, no script, no external resource), its tables and its figures."""

from __future__ import annotations

import base64
import html
from typing import Iterable, Sequence

import pandas as pd

from . import layout as lay

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;
max-width:1250px;color:#222;line-height:1.4;padding:0 1em}
h1{font-size:1.6em}h2{margin-top:2em;border-bottom:1px solid #ccc;padding-bottom:.2em}
table{border-collapse:collapse;margin:.8em 0;font-size:.88em}
th,td{border:1px solid #bbb;padding:.25em .5em;text-align:right;vertical-align:top}
th{background:#eef}td:first-child,td:nth-child(2),th:first-child,th:nth-child(2){text-align:left}
caption{caption-side:top;text-align:left;font-weight:600;padding:.3em 0}
.notes{font-size:.85em;color:#444;margin:.2em 0 1em 1.2em}
.paper{background:#fff8e6}.paper caption{color:#8a5a00}
.banner{background:#fff3f3;border:1px solid #e0a0a0;padding:.6em 1em}
.missing{color:#b00000}
figure{margin:1em 0}figcaption{font-size:.9em;color:#444}
pre{background:#f6f6f6;padding:1em;overflow:auto;font-size:.85em}
"""


# --- HTML pieces ----------------------------------------------------------------------------------

def _cell_html(value) -> str:
    """Escape a cell; '**x**' (best marks) becomes bold and a newline a line break."""
    text = html.escape(str(value))
    parts = text.split("**")
    text = "".join(f"<b>{p}</b>" if i % 2 else p for i, p in enumerate(parts))
    if lay.MISSING in text:
        text = text.replace(lay.MISSING, f'<span class="missing">{lay.MISSING}</span>')
    return text.replace("\n", "<br>")


def html_table(df: pd.DataFrame, table_id: str, caption: str, notes: Sequence[str] = (),
               paper: bool = False) -> str:
    cls = ' class="paper"' if paper else ""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = "".join("<tr>" + "".join(f"<td>{_cell_html(x)}</td>" for x in row) + "</tr>\n"
                   for row in df.itertuples(index=False))
    out = (f'<table id="{html.escape(table_id)}"{cls}><caption>{html.escape(caption)}</caption>\n'
           f"<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody></table>\n")
    if notes:
        out += '<ul class="notes">' + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>\n"
    return out


def html_figure(png: bytes, figure_id: str, caption: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure id="{html.escape(figure_id)}"><img alt="{html.escape(caption)}" '
            f'src="data:image/png;base64,{data}" style="max-width:100%">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>\n")


def html_page(title: str, body: Iterable[str]) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            + "".join(body) + "</body>\n</html>\n")


