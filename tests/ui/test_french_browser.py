"""JupyterLab and the HDH extension in French, in a real browser, in alice's sandbox
under ``hdh up``.

alice chooses French the way Settings → Language does (JupyterLab's own setting,
``@jupyterlab/translation-extension:plugin``, written through the guard), reloads, and the
page is French: JupyterLab's menus (jupyterlab-language-pack-fr-FR) and the HDH panel and
catalogue browser (the extension's domain, jupyterlab_hdh/locale/fr_FR). No English string
of the extension's catalogue (its .po msgids, through the generated .json) is left visible
in the panel or the browser. The panel's screenshot goes to
``docs/screenshots/lab-panel-fr.png``. Reuses ``tests/ui/test_jupyterlab_browser.py``'s
fixtures (one ``hdh up`` for this module, Debian chromium through Playwright).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.hub.test_embedded_hub import Up, up  # noqa: F401  (module fixture)
from tests.ui.test_hdh_panel import PANEL, TAB, fetch, show_panel
from tests.ui.test_jupyterlab_browser import (  # noqa: F401  (module fixtures)
    Lab,
    _screenshot_on_failure,
    _ui_problem,
    lab,
)
from tests.ui.test_labextension import EXT_DIR

pytestmark = [
    pytest.mark.skipif(_ui_problem() is not None, reason=str(_ui_problem())),
    pytest.mark.skipif(
        not (EXT_DIR / "package.json").is_file(),
        reason="built extension missing: run scripts/build-labextension",
    ),
]

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "jupyterlab_hdh" / "locale" / "fr_FR" / "LC_MESSAGES" / "jupyterlab_hdh.json"
SHOTS = ROOT / "docs" / "screenshots"
MAX_SHOT_BYTES = 200_000
LANGUAGE = "lab/api/settings/@jupyterlab/translation-extension:plugin"

#: Every visible element's own text and its title, placeholder and aria-label.
_TEXTS = """root => {
  const out = [];
  for (const n of [root, ...root.querySelectorAll('*')]) {
    if (n.checkVisibility && !n.checkVisibility()) continue;
    const own = [...n.childNodes].filter(c => c.nodeType === 3).map(c => c.textContent)
      .join('').trim();
    if (own) out.push(own);
    for (const a of ['title', 'placeholder', 'aria-label']) {
      const v = n.getAttribute(a);
      if (v) out.push(v.trim());
    }
  }
  return out;
}"""


def english_patterns() -> dict[str, re.Pattern[str]]:
    """The extension's English strings that French changes, as whole-text patterns (``%1``
    stands for any text)."""
    data = json.loads(CATALOGUE.read_text(encoding="utf-8"))
    out = {}
    for msgid, forms in data.items():
        if not msgid or msgid in forms:
            continue  # the header, or the same word in French ("Catalogue", "Description")
        literal = re.sub(r"%\d+", "", msgid)
        if len(re.sub(r"\W", "", literal)) < 3:
            continue  # "→ %1": nothing English to see
        parts = re.split(r"(%\d+)", msgid)
        out[msgid] = re.compile(
            "".join(".+" if re.fullmatch(r"%\d+", p) else re.escape(p) for p in parts)
        )
    return out


def english_left(ui: Lab, selector: str) -> list[str]:
    texts: list[str] = ui.page.locator(selector).first.evaluate(_TEXTS)
    patterns = english_patterns()
    return sorted(
        {f"{t!r} (msgid {m!r})" for t in texts for m, p in patterns.items() if p.fullmatch(t)}
    )


def test_french_is_chosen_and_remembered(up: Up, lab: Lab) -> None:  # noqa: F811
    page = lab.page
    page.locator(TAB).wait_for(state="visible", timeout=30_000)
    # JupyterLab offers French (the language pack is installed in the sandbox's environment)
    status, body = fetch(lab, "lab/api/translations")
    assert status == 200, body
    assert "fr_FR" in body["data"], sorted(body["data"])
    status, body = fetch(lab, "lab/api/translations/fr_FR")
    assert status == 200, body
    assert body["data"]["jupyterlab_hdh"]["My data"] == ["Mes données"]
    # Settings → Language → Français: JupyterLab's own setting, through the guard
    status, body = fetch(lab, LANGUAGE, "PUT", {"raw": json.dumps({"locale": "fr_FR"})})
    assert status == 204, body
    page.reload()
    page.locator("#jp-main-dock-panel").wait_for(state="visible")
    # remembered: the page asks the server for the choice and comes back in French
    menus = page.locator("#jp-menu-panel .lm-MenuBar-itemLabel")
    menus.first.wait_for(state="visible")
    labels = menus.all_inner_texts()
    assert "Fichier" in labels and "File" not in labels, labels
    status, body = fetch(lab, LANGUAGE)
    assert status == 200 and body["settings"]["locale"] == "fr_FR", body


def test_panel_in_french(up: Up, lab: Lab) -> None:  # noqa: F811
    page = lab.page
    assert (
        page.locator(TAB).get_attribute("title")
        == "HDH : mes données, catalogue, demandes d'export"
    )
    panel = show_panel(lab)
    mount = panel.locator('.jp-hdh-mount[data-dataset="demo-snds"][data-version="v1"]')
    mount.wait_for(state="visible")
    headings = panel.locator(".jp-hdh-sectionHeader h3").all_text_contents()  # CSS capitalises
    assert headings == ["Mes données", "Catalogue", "Demandes d'export", "Audit"], headings
    assert mount.get_by_role("button", name="Copier le chemin").is_visible()
    assert re.fullmatch(r"\d+ tables", mount.locator("summary").inner_text())
    section = panel.locator('[data-hdh-section="catalogue"]')
    assert section.locator("input.jp-hdh-search").get_attribute("placeholder") == (
        "Jeux de données, tables, variables"
    )
    section.locator('li.jp-hdh-hit[data-dataset="demo-snds"]').first.wait_for(state="visible")
    exports = panel.locator('[data-hdh-section="export"] .jp-hdh-sectionBody > *').first
    exports.wait_for(state="visible")
    assert panel.get_by_role("button", name="Nouvelle demande").is_visible()
    assert english_left(lab, PANEL) == []


def test_catalogue_browser_in_french(up: Up, lab: Lab) -> None:  # noqa: F811
    page = lab.page
    page.locator(".jp-hdh-browse").click()
    widget = page.locator("#jp-hdh-catalogue")
    widget.wait_for(state="visible")
    tab = page.locator('.lm-TabBar-tab[data-id="jp-hdh-catalogue"]')
    assert tab.inner_text().strip() == "Catalogue HDH"
    labels = widget.locator(".jp-hdh-cat-filters").text_content() or ""
    for word in ("Thème", "Système de codage", "Droits d'accès", "Synthétique"):
        assert word in labels, labels
    widget.locator('.jp-hdh-cat-hit[data-dataset="demo-snds"][data-table=""]').first.click()
    detail = widget.locator(".jp-hdh-cat-detail")
    widget.locator(".jp-hdh-cat-title").wait_for(state="visible")
    badge = detail.locator(".jp-hdh-cat-access").first
    assert badge.inner_text() == "Monté"
    text = detail.text_content() or ""
    assert re.search(r"\d+ contrôles réussis, \d+ en échec", text), text[:2000]
    for word in ("Couverture", "Enregistrements", "Individus"):
        assert word in text, (word, text[:2000])
    assert english_left(lab, "#jp-hdh-catalogue") == []
    SHOTS.mkdir(parents=True, exist_ok=True)
    shot = SHOTS / "lab-panel-fr.png"
    page.set_viewport_size({"width": 1280, "height": 720})
    page.locator(".jp-hdh-cat-title").first.scroll_into_view_if_needed()
    page.screenshot(path=str(shot))
    page.set_viewport_size({"width": 1400, "height": 900})
    assert shot.stat().st_size < MAX_SHOT_BYTES, shot.stat().st_size
    # back to English for whoever reuses this sandbox
    status, body = fetch(lab, LANGUAGE, "PUT", {"raw": json.dumps({"locale": "en"})})
    assert status == 204, body
