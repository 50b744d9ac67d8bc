"""The public register's pages: rendered live by ``routes/register.py`` and as a static site
by ``hdh register export``, from one snapshot (:func:`jupyterlab_hdh.governance.register.snapshot`).

Owns how a page of the register is named and linked (:class:`Links`: the live paths under
the service prefix, or the flat files of a static copy), rendering each page in a language
(:func:`render`), and writing the whole site (:func:`write_site`): ``register.json``, the
latest audit checkpoint and its public key, the stylesheet, and every page in French and
English (``fr/``, ``en/``). Files are written to a temporary folder then moved into place,
so a reader never sees half a site.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jupyterlab_hdh.api.templating import LANGUAGES, N_, PRODUCT, layout, templates
from jupyterlab_hdh.governance import register as rg

HERE = Path(__file__).resolve().parent
#: how a project's status and an application's decision are named (English: the msgids)
STATUSES = {
    "active": N_("active"),
    "ended": N_("ended"),
    "revoked": N_("revoked"),
    "no_permit": N_("no permit"),
    "expired": N_("expired"),
}
DECISIONS = {"favourable": N_("favourable"), "unfavourable": N_("unfavourable")}
KINDS = {"new": N_("new project"), "renewal": N_("renewal"), "amendment": N_("amendment")}
PAGES = ("index", "project", "dataset", "opt-out")


@dataclass(frozen=True)
class Links:
    """Where the register's pages are: live under ``prefix`` or, ``static``, as sibling files
    of a language folder."""

    prefix: str = "/"
    static: bool = False

    def index(self) -> str:
        return "index.html" if self.static else f"{self.prefix}ui/register/"

    def project(self, slug: str) -> str:
        s = quote(slug)
        return f"project-{s}.html" if self.static else f"{self.prefix}ui/register/projects/{s}"

    def dataset(self, name: str) -> str:
        n = quote(name)
        return f"dataset-{n}.html" if self.static else f"{self.prefix}ui/register/datasets/{n}"

    def optout(self) -> str:
        return "opt-out.html" if self.static else f"{self.prefix}ui/register/opt-out"

    def json(self) -> str:
        return "../register.json" if self.static else f"{self.prefix}api/register"

    def checkpoint(self) -> str:
        if self.static:
            return "../audit-checkpoint.json"
        return f"{self.prefix}ui/register/audit/checkpoint.json"

    def public_key(self) -> str:
        if self.static:
            return "../audit-public-key.pem"
        return f"{self.prefix}ui/register/audit/public-key.pem"


def render(
    page: str,
    register: dict[str, Any],
    lang: str,
    links: Links,
    *,
    key: str = "",
    hub_prefix: str = "/",
    here: str = "",
) -> str:
    """One page of the register in ``lang``: ``index``, ``project`` / ``dataset`` (``key``:
    its slug or name; the caller checked it exists) or ``opt-out``."""
    ns: dict[str, Any] = layout(
        user="",
        role=None,
        prefix=links.prefix,
        hub_prefix=hub_prefix,
        current="opt-out" if page == "opt-out" else "register",
        lang=lang,
        here=here,
    )
    if links.static:
        ns["static_site"] = {code: f"../{code}/{_file(page, key)}" for code in LANGUAGES}
        ns["stylesheet"] = "../hdh.css"
        ns["home"] = "index.html"
        ns["nav"] = []
    ns.update(
        register=register,
        links=links,
        statuses=STATUSES,
        decisions=DECISIONS,
        kinds=KINDS,
        publisher=register["publisher"],
        product=PRODUCT,
    )
    if page == "project":
        ns["project"] = rg.project_entry(register, key)
    elif page == "dataset":
        ns["dataset"] = rg.dataset_entry(register, key)
    name = {"index": "register.html", "opt-out": "register_optout.html"}.get(
        page, f"register_{page}.html"
    )
    return templates(lang).get_template(name).render(**ns)


def _file(page: str, key: str) -> str:
    return {"index": "index.html", "opt-out": "opt-out.html"}.get(page, f"{page}-{key}.html")


def _pages(register: dict[str, Any]) -> Iterator[tuple[str, str]]:
    yield "index", ""
    yield "opt-out", ""
    for p in register["projects"]:
        yield "project", p["slug"]
    for d in register["datasets"]:
        yield "dataset", d["name"]


def write_site(register: dict[str, Any], out: Path) -> list[Path]:
    """Write the whole register under ``out`` (replacing a previous export); the files."""
    out = out.absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    work = out.with_name(f".{out.name}.partial")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    try:
        rg.write_json(register, work / "register.json")
        audit = register["audit"]
        if audit["checkpoint"] is not None:
            rg.write_json(audit["checkpoint"], work / "audit-checkpoint.json")
        if audit["public_key"] is not None:
            (work / "audit-public-key.pem").write_text(audit["public_key"])
        shutil.copyfile(HERE / "static" / "hdh.css", work / "hdh.css")
        links = Links(static=True)
        for lang in LANGUAGES:
            (work / lang).mkdir()
            for page, key in _pages(register):
                html = render(page, register, lang, links, key=key)
                (work / lang / _file(page, key)).write_text(html, encoding="utf-8")
        (work / "index.html").write_text(
            '<!doctype html><meta charset="utf-8"><meta http-equiv="refresh"'
            ' content="0; url=fr/index.html"><a href="fr/index.html">Registre public</a>'
            ' · <a href="en/index.html">Public register</a>\n',
            encoding="utf-8",
        )
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            out.rename(old)
            work.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            work.rename(out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return sorted(p for p in out.rglob("*") if p.is_file())
