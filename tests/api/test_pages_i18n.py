"""The control plane's pages in French and English (issue 12, item 4).

Every page of ``test_pages_layout.py`` (the same installations, through the real app) is
fetched for each role in both languages. The check is built from the message catalogue
itself (``api/locale/fr.po``): in French no msgid's English text is left on the page (save
the few words written the same in both languages, listed in :data:`SAME_IN_BOTH`), in English
no French msgstr shows. Then the switch (a cookie, remembered), ``Accept-Language`` alone, an
unknown language (English), and the catalogue itself: every string the templates and the
pages' code mark is in it, translated, with the same placeholders and markup.

What people and files wrote (a request's title, a file's cells, the store's refusal messages,
notification subjects as the workflow stored them, code samples) is data, not the interface:
it is left out of the check.
"""

from __future__ import annotations

import ast
import html as htmllib
import re
from pathlib import Path
from typing import Any

import pytest

from jupyterlab_hdh.api import templating
from jupyterlab_hdh.api.templating import (
    LANG_COOKIE,
    format_when,
    layout,
    negotiate,
    read_po,
    templates,
)
from tests.api.test_pages_layout import (  # noqa: F401  (module fixtures)
    PREFIX,
    ROLE_OF,
    Site,
    busy,
    empty,
    parse,
)

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = read_po(templating.LOCALE_DIR / "fr.po")
#: The Python files whose ``_("...")``/``N_("...")`` calls are messages of the pages.
PY_SOURCES = (
    "jupyterlab_hdh/api/templating.py",
    "jupyterlab_hdh/api/routes/pages.py",
    "jupyterlab_hdh/api/routes/egress_pages.py",
    "jupyterlab_hdh/api/routes/application_pages.py",
    "jupyterlab_hdh/api/routes/register.py",
    "jupyterlab_hdh/api/register_site.py",
    "jupyterlab_hdh/egress/render.py",
)
#: Messages written the same in French and in English (the only English left on a French page).
SAME_IN_BOTH = frozenset(
    {"Version", "Actions", "code", "message", "votes", "Votes", "public", "Versions"}
)
ROLES = sorted(ROLE_OF) + ["rex"]  # rex: a researcher of no project
PLACEHOLDER = re.compile(r"%\(\w+\)[sr]")
TAG = re.compile(r"<[^>]+>")


# --- the catalogue ----------------------------------------------------------------------------


def marked_messages() -> dict[str, str]:
    """Every message the pages mark, with where: ``{% trans %}``/``_()`` in the templates,
    ``_()``/``N_()`` with a literal in the Python sources."""
    out: dict[str, str] = {}
    env = templates("en")
    for path in sorted((templating.HERE / "templates").glob("*.html")):
        for line, _func, message in env.extract_translations(path.read_text()):  # type: ignore[attr-defined]
            msg = message[0] if isinstance(message, tuple) else message
            if isinstance(msg, str):
                out.setdefault(msg, f"{path.name}:{line}")
    for name in PY_SOURCES:
        for node in ast.walk(ast.parse((ROOT / name).read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("_", "_t", "N_")
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                out.setdefault(node.args[0].value, f"{name}:{node.lineno}")
    return out


def fragments(message: str) -> list[str]:
    """The words of a message a page shows: markup and placeholders out, punctuation trimmed."""
    text = htmllib.unescape(TAG.sub(" ", message))
    out = []
    for part in PLACEHOLDER.split(text):
        part = " ".join(part.split()).strip(" .,:;!?()#·—-'\"«»…")
        if sum(c.isalpha() for c in part) >= 2:
            out.append(part)
    return out


def test_the_catalogue_has_every_marked_message_translated() -> None:
    marked = marked_messages()
    assert len(marked) > 150, len(marked)
    missing = {m: where for m, where in marked.items() if m not in CATALOGUE}
    assert not missing, f"not in fr.po: {missing}"
    stale = sorted(set(CATALOGUE) - set(marked))
    assert not stale, f"in fr.po but marked nowhere: {stale}"
    for msgid, msgstr in CATALOGUE.items():
        assert msgstr.strip(), msgid
        assert sorted(PLACEHOLDER.findall(msgid)) == sorted(PLACEHOLDER.findall(msgstr)), msgid
        tags = sorted(t.split()[0] for t in TAG.findall(msgid))
        assert tags == sorted(t.split()[0] for t in TAG.findall(msgstr)), msgid
    # the list of identical words is exactly the catalogue's identical messages
    assert {m for m, s in CATALOGUE.items() if m == s} == SAME_IN_BOTH


def test_the_po_reader_keeps_continuations_and_skips_fuzzy_entries(tmp_path: Path) -> None:
    po = tmp_path / "xx.po"
    po.write_text(
        'msgid ""\nmsgstr ""\n"Language: xx\\n"\n\n'
        '#: a.html\nmsgid "one "\n"line"\nmsgstr "une "\n"ligne \\"x\\""\n\n'
        '#, fuzzy\nmsgid "two"\nmsgstr "deux"\n\nmsgid "three"\nmsgstr ""\n',
        encoding="utf-8",
    )
    assert read_po(po) == {"one line": 'une ligne "x"'}


# --- the language of a page --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cookie", "accept", "expect"),
    [
        (None, None, "en"),
        (None, "fr-FR,fr;q=0.9,en;q=0.8", "fr"),
        (None, "en;q=0.5, fr;q=0.9", "fr"),
        (None, "de-DE,de;q=0.9", "en"),  # unknown: English
        (None, "de, fr;q=0", "en"),  # q=0: not acceptable
        ("fr", "en", "fr"),  # the choice wins over the browser
        ("en", "fr", "en"),
        ("xx", "fr", "fr"),  # an unknown cookie is no choice
        ("xx", None, "en"),
    ],
)
def test_the_language_is_the_choice_else_the_browsers(
    cookie: str | None, accept: str | None, expect: str
) -> None:
    assert negotiate(cookie, accept) == expect


def test_dates_are_written_for_the_language() -> None:
    when = "2026-12-04T21:58:12.5+00:00"
    assert format_when(when, "en") == "4 December 2026, 21:58 UTC"
    assert format_when(when, "fr") == "4 décembre 2026, 21:58 UTC"
    assert format_when("2026-03-01T01:00:00+02:00", "fr") == "28 février 2026, 23:00 UTC"
    assert format_when(None, "fr") == "" and format_when("someday", "fr") == "someday"


# --- every page, in both languages ---------------------------------------------------------------

#: Data on a page, not its interface: code samples, refusal messages from the store, the
#: rendered files (what the requester's kernel wrote).
_DATA = [
    re.compile(r"<style\b.*?</style>", re.S),  # the whole review page's own stylesheet
    re.compile(r"<pre\b.*?</pre>", re.S),
    re.compile(r"<code\b.*?</code>", re.S),
    re.compile(r'(<div class="error" role="alert">)<p>.*?</p>', re.S),
    re.compile(r'<p class="error" role="alert">.*?</p>', re.S),
    re.compile(r'<table class="hdh-table">.*?</table>', re.S),  # a file's rows
    re.compile(r'<h3 class="hdh-filename">.*?</h3>', re.S),
    # a notification's subject, a check's summary, stored by the workflow in English (marked so)
    re.compile(r'<span class="(?:subject|hdh-summary)" lang="en">.*?</span>', re.S),
]


def interface_text(page_html: str) -> str:
    for pattern in _DATA:
        page_html = pattern.sub(lambda m: m.group(1) if m.groups() else " ", page_html)
    return parse(page_html).text


def _found(words: str, text: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(words)}(?!\w)", text) is not None


def english_left(page_html: str) -> list[str]:
    """The catalogue's English words on the page (those its French translation keeps, such as
    "Provenance", left out)."""
    text = interface_text(page_html)
    return sorted(
        {
            f
            for msgid in CATALOGUE
            if msgid not in SAME_IN_BOTH
            for f in fragments(msgid)
            if not _found(f, " ".join(fragments(CATALOGUE[msgid]))) and _found(f, text)
        }
    )


def french_shown(page_html: str) -> list[str]:
    text = interface_text(page_html)
    return sorted(
        {
            f
            for msgid, msgstr in CATALOGUE.items()
            if msgid not in SAME_IN_BOTH
            for f in fragments(msgstr)
            if not _found(f, " ".join(fragments(msgid))) and _found(f, text)
        }
    )


def get(site: Site, who: str, path: str, lang: str) -> Any:
    cookie = f"hdh-session={who}; {LANG_COOKIE}={lang}" if who else f"{LANG_COOKIE}={lang}"
    return site.client.get(PREFIX + path, headers={"Cookie": cookie})


def assert_in(r: Any, lang: str, status: int = 200) -> str:
    assert r.status_code == status, (r.status_code, r.text[:400])
    assert f'<html lang="{lang}">' in r.text
    if lang == "fr":
        left = english_left(r.text)
        assert not left, f"English on a French page: {left}"
    else:
        shown = french_shown(r.text)
        assert not shown, f"French on an English page: {shown}"
    return str(r.text)


@pytest.mark.parametrize("lang", ["fr", "en"])
@pytest.mark.parametrize("who", ROLES)
def test_every_list_page_in_both_languages(empty: Site, who: str, lang: str) -> None:  # noqa: F811
    projects = assert_in(get(empty, who, "ui/", lang), lang)
    listing = assert_in(get(empty, who, "ui/egress/", lang), lang)
    role = ROLE_OF.get(who, "researcher")
    if lang == "fr":
        assert "Vos projets" in parse(projects).text
        assert ("Connecté en tant que " + who) in parse(projects).text
        if role in ("reviewer", "committee"):
            assert "Rien à relire." in parse(listing).text
            assert parse(listing).nav_labels == [
                "Projets",
                "Demandes d’accès",
                "Relecture",
                "Registre public",
                "Votre droit d’opposition",
            ]


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_the_request_pages_and_refusals_in_both_languages(busy: Site, lang: str) -> None:  # noqa: F811
    rid = busy.request_id
    for who in ("rita", "cora", "ada", "alice", "bob"):
        assert_in(get(busy, who, "ui/egress/", lang), lang)
        page = assert_in(get(busy, who, f"ui/egress/requests/{rid}", lang), lang)
        if lang == "fr" and who in ("rita", "cora"):
            text = parse(page).text
            assert "Voter (définitif)" in text and f"Demande d’export n° {rid} : results" in text
    assert_in(get(busy, "alice", "ui/projects/study/datasets", lang), lang)
    assert_in(get(busy, "alice", "ui/", lang), lang)
    for who, path in (("mallory", f"ui/egress/requests/{rid}"), ("rita", "ui/egress/requests/99")):
        refused = assert_in(get(busy, who, path, lang), lang, 404)
        if lang == "fr":
            assert "Erreur 404 · Introuvable" in parse(refused).text
    assert_in(get(busy, "rex", "ui/projects/study/datasets", lang), lang, 403)
    r = busy.client.post(
        f"{PREFIX}ui/egress/requests/{rid}",
        content=b"x" * 70_000,
        headers={
            "Cookie": f"hdh-session=rita; {LANG_COOKIE}={lang}",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert_in(r, lang, 400)
    assert_in(get(busy, "", "oauth_callback", lang), lang, 400)  # not signed in: no navigation


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_a_permit_granting_nothing_in_both_languages(lang: str) -> None:
    ns = layout(user="alice", role="researcher", prefix=PREFIX, hub_prefix="/", lang=lang)
    page = templates(lang).get_template("datasets.html").render(
        title="study", slug="study", plan={"permit": 3, "permitted": []},
        running=False, error="", form_token="f" * 64, **ns,
    )  # fmt: skip
    assert f'<html lang="{lang}">' in page
    assert not (english_left(page) if lang == "fr" else french_shown(page))


# --- the switch -----------------------------------------------------------------------------------


def test_the_switch_sets_the_cookie_and_the_next_page_follows(empty: Site) -> None:  # noqa: F811
    client = empty.client
    english = client.get(f"{PREFIX}ui/egress/", headers={"Cookie": "hdh-session=rita"})
    assert '<html lang="en">' in english.text and "Nothing to review." in english.text
    # the header's switch: a same-origin form (no script) back to this page
    form = re.search(r'<form class="lang" method="post" action="([^"]+)"', english.text)
    assert form is not None and form.group(1) == f"{PREFIX}ui/language"
    assert f'<input type="hidden" name="next" value="{PREFIX}ui/egress/">' in english.text
    assert "form-action 'self'" in english.headers["content-security-policy"]
    r = client.post(
        f"{PREFIX}ui/language",
        data={"lang": "fr", "next": f"{PREFIX}ui/egress/"},
        headers={"Cookie": "hdh-session=rita"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == f"{PREFIX}ui/egress/"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{LANG_COOKIE}=fr;") and f"Path={PREFIX}" in cookie, cookie
    assert "Max-Age=31536000" in cookie and "SameSite=lax" in cookie, cookie
    french = client.get(
        f"{PREFIX}ui/egress/", headers={"Cookie": f"hdh-session=rita; {LANG_COOKIE}=fr"}
    )
    assert '<html lang="fr">' in french.text and "Rien à relire." in french.text
    # the checks see a page in the other language (they are not vacuous)
    assert "Nothing to review. Requests submitted by project members appear here" in english_left(
        english.text
    )
    assert "Rien à relire. Les demandes soumises par les membres des projets apparaissent ici" in (
        french_shown(french.text)
    )
    # the choice wins over the browser's languages, both ways
    back = client.get(
        f"{PREFIX}ui/",
        headers={"Cookie": f"hdh-session=rita; {LANG_COOKIE}=en", "Accept-Language": "fr"},
    )
    assert '<html lang="en">' in back.text


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/hub/admin", ""])
def test_the_switch_goes_back_only_to_a_page_of_the_control_plane(
    empty: Site,  # noqa: F811
    target: str,
) -> None:
    r = empty.client.post(
        f"{PREFIX}ui/language", data={"lang": "fr", "next": target}, follow_redirects=False
    )
    assert r.status_code == 303 and r.headers["location"] == f"{PREFIX}ui/"


def test_an_unknown_language_sets_nothing_and_pages_stay_english(empty: Site) -> None:  # noqa: F811
    r = empty.client.post(
        f"{PREFIX}ui/language",
        data={"lang": "xx", "next": f"{PREFIX}ui/"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and "set-cookie" not in r.headers
    page = get(empty, "alice", "ui/", "xx")
    assert '<html lang="en">' in page.text and "Your projects" in page.text
    assert_in(page, "en")


def test_accept_language_alone_chooses_french(empty: Site) -> None:  # noqa: F811
    r = empty.client.get(
        f"{PREFIX}ui/",
        headers={"Cookie": "hdh-session=alice", "Accept-Language": "fr-FR,fr;q=0.9,en;q=0.5"},
    )
    assert_in(r, "fr")
    r = empty.client.get(
        f"{PREFIX}ui/", headers={"Cookie": "hdh-session=alice", "Accept-Language": "de-CH"}
    )
    assert_in(r, "en")


def test_the_review_pages_file_notes_in_french() -> None:
    """A reviewer's page with a notebook (outputs with several representations, metadata, an
    attachment), a CSV with a formula cell, an SVG and a binary file: every note and label around
    the files in French; the files' own content as written."""
    import json

    from jupyterlab_hdh.api.templating import translator
    from jupyterlab_hdh.egress.render import RenderLimits, review_page

    notebook = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3"}},
        "cells": [
            {
                "cell_type": "code",
                "execution_count": 1,
                "id": "a1",
                "metadata": {"tags": ["x"]},
                "source": "print(1)",
                "outputs": [
                    {"output_type": "stream", "name": "stdout", "text": "1\n"},
                    {
                        "output_type": "display_data",
                        "metadata": {"isolated": True},
                        "data": {"text/plain": "t", "text/html": "<b>t</b>"},
                    },
                ],
            },
            {
                "cell_type": "markdown",
                "id": "a2",
                "metadata": {},
                "source": "![x](attachment:x.txt)",
                "attachments": {"x.txt": {"text/plain": "hidden"}},
            },
        ],
    }
    blobs = {
        "nb": json.dumps(notebook).encode(),
        "csv": b"group,count\n=1+1,120\n" + b"b,1\n" * 5,
        "svg": b"<svg xmlns='http://www.w3.org/2000/svg'/>",
        "bin": bytes(range(256)) * 40,
    }
    view = {
        "id": 7,
        "title": "Tableau 1",
        "project": "study",
        "author": "alice",
        "state": "submitted",
        "round": 1,
        "viewer": "reviewer",
        "created_at": "2026-12-04T10:00:00+00:00",
        "files": [
            {"path": p, "sha256": k, "role": "output", "size": len(blobs[k]), "vote_count": 1}
            for p, k in (("a.ipynb", "nb"), ("t.csv", "csv"), ("f.svg", "svg"), ("x.bin", "bin"))
        ],
        "comments": [{"author": "rita", "visibility": "private", "round": 1, "body": "ok"}],
    }
    limits = RenderLimits(max_rows=2, max_hex_bytes=64)
    french = review_page(
        view, blobs.get, limits, gettext=translator("fr"), lang="fr", when=lambda v: str(v)
    )
    assert english_left(french) == [], english_left(french)
    text = parse(french).text
    for shown in ("cellule 1 : code", "sortie 1 : stream", "octets", "Contrôles automatiques"):
        assert shown in text, shown
    english = review_page(view, blobs.get, limits)
    assert french_shown(english) == [] and "cell 1: code" in parse(english).text
