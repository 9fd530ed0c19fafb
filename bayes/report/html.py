"""Shared pieces of the HTML reports: the style sheet, embedded figures and the page frame.

Used by the run report (``cytofactory run``), the trial-design report (``cytofactory trial``)
and the translation report (``cytofactory translate``).
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

__all__ = ["STYLE", "image", "page"]

STYLE = """
body { font-family: -apple-system, Segoe UI, Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1100px; color: #222; line-height: 1.4; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0 1em; }
th, td { border: 1px solid #ddd; padding: 3px 7px; text-align: right; vertical-align: top; }
th { background: #f3f3f3; } td.text, th.text { text-align: left; }
.table { font-size: 12px; } .table td, .table th { padding: 2px 6px; }
.verdict { padding: 0.8em 1em; border-radius: 6px; font-weight: bold; font-size: 1.1em; }
.pass { background: #e3f5e1; border: 1px solid #7bc47f; }
.fail { background: #fde2e1; border: 1px solid #e06c66; }
.warn { color: #b00; font-weight: bold; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.4em 0; }
.small { font-size: 0.85em; color: #555; }
"""
"""Style sheet of every report: the union of the classes the reports use."""


def image(path: Path, caption: str) -> str:
    """Return a ``<figure>`` with the PNG at ``path`` embedded as base64 and a caption.

    Parameters
    ----------
    path : Path
        PNG file to embed.
    caption : str
        Plain text caption (escaped here).

    Returns
    -------
    str
        The HTML fragment.
    """
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (
        f"<figure><img alt='{html.escape(path.name)}' src='data:image/png;base64,{data}'>"
        f"<figcaption class='small'>{html.escape(caption)}</figcaption></figure>"
    )


def page(title: str, body: str) -> str:
    """Return a complete HTML page with the shared style sheet.

    Parameters
    ----------
    title : str
        Page title (plain text, escaped here).
    body : str
        HTML content of ``<body>``.

    Returns
    -------
    str
        The page.
    """
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
        f"</title><style>{STYLE}</style></head><body>{body}</body></html>"
    )
