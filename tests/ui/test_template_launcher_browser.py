"""The template studies' launcher cards in a real browser (Debian ``chromium`` and Playwright)
through ``hdh up``: one card per template in alice's project JupyterLab; a click copies the
template into the workspace (``templates/<name>.ipynb``), opens it and runs all its cells in
the project's kernel, each cell audited by the guard like any other.

One ``hdh up`` per module (the ``up`` fixture of ``tests/hub/test_embedded_hub.py``); the
browser, its recorders and the failure screenshot are ``tests/ui/test_jupyterlab_browser.py``'s.
"""

from __future__ import annotations

import json
import re
import time

import pytest

from hdh.templates import templates
from tests.hub.test_embedded_hub import Up, up  # noqa: F401  (module fixture)
from tests.ui.test_jupyterlab_browser import (  # noqa: F401  (fixtures)
    SHOTS,
    Lab,
    _screenshot_on_failure,
    _ui_problem,
    lab,
)

pytestmark = [
    pytest.mark.skipif(_ui_problem() is not None, reason=str(_ui_problem())),
]

CATEGORY = "HDH templates"
MI_TITLE = "Care pathway after myocardial infarction"
MI_OUTPUT = "persons with a first myocardial infarction stay"
RUN_TIMEOUT_MS = 240_000


def test_the_launcher_shows_a_card_per_template(lab: Lab) -> None:  # noqa: F811
    page = lab.page
    cards = page.locator(f'.jp-LauncherCard[data-category="{CATEGORY}"]')
    cards.first.wait_for(state="visible")
    page.get_by_text(CATEGORY, exact=True).first.wait_for(state="visible")
    labels = [t.strip() for t in cards.locator(".jp-LauncherCard-label").all_inner_texts()]
    assert labels == [t.title for t in templates()], labels
    tooltip = cards.filter(has_text=MI_TITLE).get_attribute("title") or ""
    assert "myocardial infarction (I21, I22)" in tooltip, tooltip
    assert '• dataset: str = "demo-snds"' in tooltip and "• window_days: int = 90" in tooltip


def test_a_click_copies_opens_and_runs_the_template(
    up: Up,  # noqa: F811
    lab: Lab,  # noqa: F811
) -> None:
    page = lab.page
    t0 = time.monotonic()
    card = page.locator(f'.jp-LauncherCard[data-category="{CATEGORY}"]', has_text=MI_TITLE)
    card.click()
    panel = page.locator(".jp-NotebookPanel", has=page.get_by_text(MI_TITLE, exact=True))
    panel.first.wait_for(state="visible")
    tab = page.locator(".lm-TabBar-tab.lm-mod-current", has_text="mi-pathway.ipynb")
    tab.first.wait_for(state="visible")
    assert "templates/mi-pathway.ipynb" in (tab.first.get_attribute("title") or "")
    lab.timings["template:open"] = time.monotonic() - t0

    page.locator(".jp-OutputArea-output", has_text=MI_OUTPUT).first.wait_for(
        state="visible", timeout=RUN_TIMEOUT_MS
    )
    # run all ends: nothing queued ([*]); it stops at a failing cell, leaving the rest [ ]
    prompts = panel.first.locator(".jp-CodeCell .jp-InputPrompt")
    deadline = time.monotonic() + RUN_TIMEOUT_MS / 1000
    while True:
        texts = [t.strip() for t in prompts.all_text_contents()]
        idle = page.locator("#jp-main-statusbar").get_by_text(re.compile(r"\|\s*Idle")).count()
        if texts and "[*]:" not in texts and idle:
            break
        assert time.monotonic() < deadline, texts
        time.sleep(0.5)
    lab.timings["template:run"] = time.monotonic() - t0
    shot = SHOTS / "lab-template-run.png"  # the README's: a template study run in JupyterLab
    page.screenshot(path=str(shot))
    tracebacks = panel.first.locator(".jp-OutputArea-output", has_text="Traceback")
    assert all(re.fullmatch(r"\[\d+\]:", t) for t in texts), (
        texts,
        [t[-300:] for t in tracebacks.all_text_contents()],
    )

    # a normal workspace file, and the study's outputs next to it
    ws = up.data_dir / "workspaces" / "demo" / "templates"
    assert (ws / "mi-pathway.ipynb").is_file()
    headline = json.loads((ws / "outputs" / "mi-pathway" / "headline.json").read_text())
    assert isinstance(headline["n"], int) and headline["window_days"] == 90, headline
    # the guard audited the template's cells like any other
    deadline = time.monotonic() + 30
    while True:
        executed = [
            e["details"].get("code", "") for e in up.audit() if e["action"] == "code.execute"
        ]
        if any("mi_pathway.person_flags" in code for code in executed):
            break
        assert time.monotonic() < deadline, executed[-3:]
        time.sleep(0.5)
