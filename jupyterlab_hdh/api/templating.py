"""The Jinja2 templates of the control plane's web pages (``api/templates/``), autoescaped.

Owns the one template environment: every HTML page the control plane answers (the project
pages of ``routes/pages.py``, the airlock's pages of ``routes/egress_pages.py``, the access
desk's of ``routes/application_pages.py``) is rendered from a template here, so every value
is escaped where it is written.

Owns the one layout too (``base.html``): :func:`layout` is what every page passes to it — the
signed-in person's name and role, and the navigation links that role may follow
(:func:`navigation`): everyone signed in gets the projects and the access applications, a
researcher gets no "Review" link, a reviewer does, an administrator also gets the
administration pages. Public pages (the register of projects and the right to object, issue
14) are listed in :data:`PUBLIC_PAGES` and shown to everyone, signed in or not.

And the pages' languages (issue 12, item 4): English (the msgids, and the fallback) and French,
whose message catalogue is the checked-in ``locale/fr.po`` (standard gettext PO, read by
:func:`read_po` when first needed: no compile step). Templates mark their strings with
``{% trans %}``/``_()`` (``jinja2.ext.i18n``, one environment per language:
:func:`templates`); Python code marks them with ``_()``/``N_()`` and translates through
:func:`translator`. The language is the person's choice (the ``hdh-lang`` cookie the header's
FR | EN switch sets), else the browser's ``Accept-Language``, else English
(:func:`negotiate`). Dates are written for the language by the ``when`` filter.
"""

from __future__ import annotations

import ast
import gettext
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache, partial
from http import HTTPStatus
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

HERE = Path(__file__).resolve().parent
LOCALE_DIR = HERE / "locale"
#: The pages' languages, the first the fallback (and the language of the msgids).
LANGUAGES = ("en", "fr")
DEFAULT_LANGUAGE = "en"
#: The cookie remembering a person's explicit choice (the header's switch).
LANG_COOKIE = "hdh-lang"
LANG_COOKIE_MAX_AGE = 365 * 24 * 3600


def N_(message: str) -> str:  # noqa: N802  (the gettext convention)
    """Mark ``message`` for the catalogue, translated later (where the language is known)."""
    return message


# --- the catalogue ---------------------------------------------------------------------------


def _unquote(text: str) -> str:
    value = ast.literal_eval(text)
    if not isinstance(value, str):
        raise ValueError(f"not a PO string: {text!r}")
    return value


def read_po(path: Path) -> dict[str, str]:
    """The translated, non-fuzzy messages of a PO file (``msgid`` -> ``msgstr``).

    The subset of the format this project writes: ``#`` comments (``#, fuzzy`` skips an
    entry), ``msgid``/``msgstr`` with continuation lines; the header entry is left out."""
    out: dict[str, str] = {}
    entry: dict[str, str] = {}
    key = ""
    fuzzy = False

    def flush() -> None:
        nonlocal entry, key, fuzzy
        msgid, msgstr = entry.get("msgid"), entry.get("msgstr")
        if msgid and msgstr and not fuzzy:
            out[msgid] = msgstr
        entry, key, fuzzy = {}, "", False

    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line:
            flush()
        elif line.startswith("#"):
            if "msgid" in entry:
                flush()
            if line.startswith("#,") and "fuzzy" in line:
                fuzzy = True
        elif line.startswith('"'):
            entry[key] += _unquote(line)
        else:
            word, _, rest = line.partition(" ")
            if word == "msgid" and "msgid" in entry:
                flush()
            key = word
            entry[key] = _unquote(rest.strip())
    flush()
    return out


class Catalogue(gettext.NullTranslations):
    """gettext translations from a ``msgid -> msgstr`` mapping (English: an empty one)."""

    def __init__(self, messages: Mapping[str, str]) -> None:
        super().__init__()
        self.messages = dict(messages)

    def gettext(self, message: str) -> str:
        return self.messages.get(message, message)

    def ngettext(self, msgid1: str, msgid2: str, n: int) -> str:
        return self.gettext(msgid1 if n == 1 else msgid2)


@cache
def translations(lang: str) -> Catalogue:
    """The catalogue of ``lang`` (English, or an unknown language: the msgids themselves)."""
    if lang == DEFAULT_LANGUAGE or lang not in LANGUAGES:
        return Catalogue({})
    return Catalogue(read_po(LOCALE_DIR / f"{lang}.po"))


def translator(lang: str) -> Callable[[str], str]:
    """``_`` for Python code: ``_("Project %(slug)s") % {"slug": slug}``."""
    return translations(lang).gettext


# --- which language --------------------------------------------------------------------------


def supported(lang: str | None) -> str | None:
    """``lang`` (``fr``, ``fr-FR``, ``EN``) as one of :data:`LANGUAGES`, or None."""
    base = (lang or "").strip().lower().replace("_", "-").split("-")[0]
    return base if base in LANGUAGES else None


def negotiate(cookie: str | None, accept_language: str | None) -> str:
    """The page's language: the person's choice (cookie), else the best of the browser's
    ``Accept-Language`` that the pages have, else English."""
    chosen = supported(cookie)
    if chosen:
        return chosen
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate((accept_language or "").split(",")[:20]):
        tag, *params = part.strip().split(";")
        q = 1.0
        for param in params:
            name, _, value = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        lang = supported(tag)
        if lang and q > 0:
            ranked.append((-q, i, lang))
    return min(ranked)[2] if ranked else DEFAULT_LANGUAGE


# --- dates -----------------------------------------------------------------------------------

MONTHS = (
    N_("January"), N_("February"), N_("March"), N_("April"), N_("May"), N_("June"),
    N_("July"), N_("August"), N_("September"), N_("October"), N_("November"), N_("December"),
)  # fmt: skip


def format_when(value: Any, lang: str = DEFAULT_LANGUAGE) -> str:
    """A time (a datetime or an ISO 8601 string) written for ``lang``, in UTC:
    ``4 December 2026, 21:58 UTC`` / ``4 décembre 2026, 21:58 UTC``."""
    if not value:
        return ""
    try:
        when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if when.tzinfo is not None:
        when = when.astimezone(UTC)
    _ = translator(lang)
    month = _(MONTHS[when.month - 1])
    if lang == "fr":
        month = month.lower()
    return f"{when.day} {month} {when.year}, {when:%H:%M} UTC"


# --- the environments ------------------------------------------------------------------------


def _environment(lang: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"]),
        enable_async=False,
        extensions=["jinja2.ext.i18n"],
    )
    env.policies["ext.i18n.trimmed"] = True  # a {% trans %} block's msgid is on one line
    env.install_gettext_translations(translations(lang), newstyle=True)  # type: ignore[attr-defined]
    env.filters["when"] = partial(format_when, lang=lang)
    return env


@cache
def templates(lang: str) -> Environment:
    """The template environment of ``lang`` (English for an unknown one), made when first
    needed (reading the language's catalogue)."""
    return _environment(lang if lang in LANGUAGES else DEFAULT_LANGUAGE)


#: The English environment (the fallback).
TEMPLATES = templates(DEFAULT_LANGUAGE)

PRODUCT = "Health Data Hub"

#: How each platform role (``users.role``) is named on the pages (in English: the msgids).
ROLE_LABELS = {
    "researcher": N_("researcher"),
    "reviewer": N_("reviewer (output checker)"),
    "committee": N_("committee member (output checker)"),
    "data_controller": N_("data controller"),
    "admin": N_("administrator"),
}
#: The roles whose people review export requests (as ``egress.states.REVIEWER_ROLES``).
REVIEW_ROLES = frozenset({"reviewer", "committee"})


@dataclass(frozen=True)
class NavLink:
    key: str  # which page: the layout marks the current one (aria-current)
    label: str
    href: str


#: Pages anyone may open, signed in or not, as ``(key, label, path under the prefix)``: the
#: public register of projects and the right to object (``routes/register.py``).
PUBLIC_PAGES: tuple[tuple[str, str, str], ...] = (
    ("register", N_("Public register"), "ui/register/"),
    ("opt-out", N_("Your right to object"), "ui/register/opt-out"),
)


def navigation(
    role: str | None, prefix: str, hub_prefix: str, lang: str = DEFAULT_LANGUAGE
) -> list[NavLink]:
    """The links of the header for a person with ``role`` (None: not signed in, or not known
    to the store): only pages that role may open, labelled in ``lang``."""
    _ = translator(lang)
    public = [NavLink(key, _(label), prefix + path) for key, label, path in PUBLIC_PAGES]
    if role is None:
        return public
    links = [NavLink("projects", _("Projects"), f"{prefix}ui/")]
    links.append(NavLink("applications", _("Applications"), f"{prefix}ui/applications"))
    if role in REVIEW_ROLES:
        links.append(NavLink("egress", _("Review"), f"{prefix}ui/egress/"))
    else:
        links.append(NavLink("egress", _("Export requests"), f"{prefix}ui/egress/"))
    if role == "admin":
        links.append(NavLink("hub-admin", _("Hub administration"), f"{hub_prefix}hub/admin"))
        links.append(NavLink("api-docs", _("API reference"), f"{prefix}api/docs"))
    return links + public


def layout(
    *,
    user: str,
    role: str | None,
    prefix: str,
    hub_prefix: str,
    current: str = "",
    lang: str = DEFAULT_LANGUAGE,
    here: str = "",
) -> dict[str, Any]:
    """What ``base.html`` needs: merge it into a page's namespace. ``lang`` is the page's
    language, ``here`` the page's path (where the language switch comes back to)."""
    lang = lang if lang in LANGUAGES else DEFAULT_LANGUAGE
    label = ROLE_LABELS.get(role or "")
    return {
        "product": PRODUCT,
        "user": user,
        "role": role,
        "role_label": translator(lang)(label) if label else (role or ""),
        "nav": navigation(role if user else None, prefix, hub_prefix, lang),
        "current": current,
        "prefix": prefix,
        "hub_prefix": hub_prefix,
        "lang": lang,
        "languages": LANGUAGES,
        "here": here or f"{prefix}ui/",
    }


#: The HTTP statuses a page may answer with, named as the pages name them (others: Python's).
STATUS_PHRASES = {
    400: N_("Bad Request"),
    403: N_("Forbidden"),
    404: N_("Not Found"),
    409: N_("Conflict"),
    413: N_("Content Too Large"),
    415: N_("Unsupported Media Type"),
    422: N_("Unprocessable Content"),
    502: N_("Bad Gateway"),
    503: N_("Service Unavailable"),
}


def status_phrase(status: int, lang: str = DEFAULT_LANGUAGE) -> str:
    """``status``'s reason phrase in ``lang`` ("Not Found", "Introuvable"; "" if none)."""
    if status in STATUS_PHRASES:
        return translator(lang)(STATUS_PHRASES[status])
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def safe_next(target: str, prefix: str) -> str:
    """Where the language switch goes back to: a page of the control plane (``target``, a
    path under ``prefix``), never another site; else the projects page."""
    if (
        target.startswith(prefix + "ui/")
        and "//" not in target
        and "\\" not in target
        and all(c.isprintable() and not c.isspace() for c in target)
    ):
        return target
    return f"{prefix}ui/"
