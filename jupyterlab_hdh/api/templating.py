"""The Jinja2 templates of the control plane's web pages (``api/templates/``), autoescaped.

Owns the one template environment: every HTML page the control plane answers (the project
pages of ``routes/pages.py``, the airlock's pages of ``routes/egress_pages.py``) is rendered from a
template here, so every value is escaped where it is written.
"""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).resolve().parent / "templates"),
    autoescape=select_autoescape(["html"]),
    enable_async=False,
)
