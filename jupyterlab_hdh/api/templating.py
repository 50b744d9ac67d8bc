"""The Jinja2 templates of the control plane's web pages (``api/templates/``), autoescaped.

Owns the one template environment: every HTML page the control plane answers (the project
pages of ``routes/pages.py``, the airlock's pages of ``routes/egress_pages.py``) is rendered from a
template here, so every value is escaped where it is written.

Owns the one layout too (``base.html``): :func:`layout` is what every page passes to it — the
signed-in person's name and role, and the navigation links that role may follow
(:func:`navigation`): a researcher gets no "Review" link, a reviewer does, an administrator
also gets the administration pages. Public pages (the opt-out register of issue 14) are
listed in :data:`PUBLIC_PAGES` and shown to everyone, signed in or not.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).resolve().parent / "templates"),
    autoescape=select_autoescape(["html"]),
    enable_async=False,
)

PRODUCT = "Health Data Hub"

#: How each platform role (``users.role``) is named on the pages.
ROLE_LABELS = {
    "researcher": "researcher",
    "reviewer": "reviewer (output checker)",
    "committee": "committee member (output checker)",
    "data_controller": "data controller",
    "admin": "administrator",
}
#: The roles whose people review export requests (as ``egress.states.REVIEWER_ROLES``).
REVIEW_ROLES = frozenset({"reviewer", "committee"})


@dataclass(frozen=True)
class NavLink:
    key: str  # which page: the layout marks the current one (aria-current)
    label: str
    href: str


#: Pages anyone may open, signed in or not, as ``(key, label, path under the prefix)``:
#: none yet (issue 14 adds the public opt-out register here).
PUBLIC_PAGES: tuple[tuple[str, str, str], ...] = ()


def navigation(role: str | None, prefix: str, hub_prefix: str) -> list[NavLink]:
    """The links of the header for a person with ``role`` (None: not signed in, or not known
    to the store): only pages that role may open."""
    links = [NavLink(key, label, prefix + path) for key, label, path in PUBLIC_PAGES]
    if role is None:
        return links
    links.append(NavLink("projects", "Projects", f"{prefix}ui/"))
    if role in REVIEW_ROLES:
        links.append(NavLink("egress", "Review", f"{prefix}ui/egress/"))
    else:
        links.append(NavLink("egress", "Export requests", f"{prefix}ui/egress/"))
    if role == "admin":
        links.append(NavLink("hub-admin", "Hub administration", f"{hub_prefix}hub/admin"))
        links.append(NavLink("api-docs", "API reference", f"{prefix}api/docs"))
    return links


def layout(
    *, user: str, role: str | None, prefix: str, hub_prefix: str, current: str = ""
) -> dict[str, Any]:
    """What ``base.html`` needs: merge it into a page's namespace."""
    return {
        "product": PRODUCT,
        "user": user,
        "role": role,
        "role_label": ROLE_LABELS.get(role or "", role or ""),
        "nav": navigation(role if user else None, prefix, hub_prefix),
        "current": current,
        "prefix": prefix,
        "hub_prefix": hub_prefix,
    }
