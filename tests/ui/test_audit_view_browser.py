"""The code audit view in a real browser (Debian ``chromium`` and Playwright) through
``hdh up``: alice, the lead of the ``demo`` project, runs a cell, opens "Audited code" from
the HDH panel and reads her cell's code, under her name and her notebook's, with the audit
chain verified; a kind filter with nothing to show says so. Then dave, a plain member of the
project, opens the view from the command palette and reads why he may not see it. The view's
screenshot goes to ``docs/screenshots/audit-code.png``.

One ``hdh up`` per module (the ``up`` fixture of ``tests/hub/test_embedded_hub.py``); alice's
browser, its recorders and the failure screenshot are ``tests/ui/test_jupyterlab_browser.py``'s.
"""

from __future__ import annotations

import re
import time

import pytest

from tests.hub.test_embedded_hub import Up, up  # noqa: F401  (module fixture)
from tests.ui.test_jupyterlab_browser import (  # noqa: F401  (fixtures)
    CHROMIUM,
    CHROMIUM_ARGS,
    SHOTS,
    TIMEOUT_MS,
    Lab,
    _screenshot_on_failure,
    _ui_problem,
    lab,
    wait_idle,
)

MAX_SHOT_BYTES = 200_000
RUN_TIMEOUT_MS = 120_000
CODE = 'rates = {"2019": 0.12, "2020": 0.15}\nprint("audited:", sorted(rates))'
REFUSAL = "Only the project lead, its reviewers and administrators can see the audited code."


pytestmark = [
    pytest.mark.skipif(_ui_problem() is not None, reason=str(_ui_problem())),
]


def test_the_lead_sees_her_cell_with_the_chain_verified(up: Up, lab: Lab) -> None:  # noqa: F811
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page = lab.page
    t0 = time.monotonic()
    page.locator(".jp-Launcher").first.wait_for(state="visible")
    page.locator('.jp-LauncherCard[data-category="Notebook"]').first.click()
    editor = page.locator(".jp-NotebookPanel .jp-Cell .cm-content").first
    editor.wait_for(state="visible")
    wait_idle(lab)
    editor.click()
    page.keyboard.insert_text(CODE)
    page.keyboard.press("Shift+Enter")
    output = page.locator(".jp-NotebookPanel .jp-Cell").first.locator(".jp-OutputArea-output")
    output.first.wait_for(state="visible", timeout=RUN_TIMEOUT_MS)
    assert output.first.inner_text().strip() == "audited: ['2019', '2020']"
    second = page.locator(".jp-NotebookPanel .jp-Cell").nth(1)
    second.locator(".cm-content").click()
    page.keyboard.insert_text("total = sum(rates.values())\nround(total, 2)")
    page.keyboard.press("Shift+Enter")
    second.locator(".jp-OutputArea-output").first.wait_for(timeout=RUN_TIMEOUT_MS)
    # a save, audited too (the notebook's file); JupyterLab asks for a name on the first one
    saves: list[int] = []
    page.on(
        "response",
        lambda r: (
            saves.append(r.status)
            if r.request.method == "PUT" and "/api/contents/" in r.url
            else None
        ),
    )
    page.keyboard.press("Control+s")
    dialog = page.locator(".jp-Dialog")
    try:
        dialog.wait_for(state="visible", timeout=5_000)
        page.keyboard.press("Enter")  # keep the name: Untitled.ipynb
        dialog.wait_for(state="detached")
    except PlaywrightTimeout:
        pass
    deadline = time.monotonic() + 30
    while not saves:
        assert time.monotonic() < deadline, "the notebook was not saved"
        page.wait_for_timeout(100)
    assert saves[0] == 200, saves
    lab.timings["audit:cell"] = time.monotonic() - t0

    # from the HDH panel's button
    page.locator('.lm-TabBar-tab[data-id="jp-hdh-panel"]').click()
    page.locator(".jp-hdh-audit-open").click()
    widget = page.locator("#jp-hdh-audit")
    widget.wait_for(state="visible")
    banner = widget.locator(".jp-hdh-audit-chain.jp-hdh-audit-verified")
    banner.wait_for(state="visible")
    assert re.match(
        r"Audit chain verified: every event up to #\d+ is intact\.", banner.inner_text()
    )
    assert widget.locator(".jp-hdh-audit-heading").inner_text() == "Audited code of project demo"
    entry = widget.locator('.jp-hdh-audit-entry[data-kind="cell"]', has_text="audited:").first
    entry.wait_for(state="visible")
    # the code as typed, as text (a read-only monospace block), marked verified
    assert entry.locator("pre.jp-hdh-audit-code").inner_text() == CODE
    assert entry.locator(".jp-hdh-audit-ok").inner_text() == "verified"
    person = entry.locator("xpath=ancestor::section[contains(@class, 'jp-hdh-audit-person')]")
    assert person.locator("h3").inner_text() == "alice"
    # grouped by the notebook the cell ran in (the guard's path from the session), with
    # the notebook's save
    place = entry.locator("xpath=ancestor::div[contains(@class, 'jp-hdh-audit-place')]")
    assert place.locator("h4").inner_text().startswith("Untitled.ipynb")
    assert place.locator('.jp-hdh-audit-entry[data-kind="save"]').count() >= 1
    # the newest first: her cell comes before the older events of the same notebook
    seqs = [int(s) for s in widget.locator(".jp-hdh-audit-entry").evaluate_all(
        "es => es.map(e => e.dataset.seq)"
    )]  # fmt: skip
    assert seqs[0] == max(seqs)
    lab.timings["audit:view"] = time.monotonic() - t0
    save = widget.locator('.jp-hdh-audit-entry[data-kind="save"]').first
    save.wait_for(state="visible")
    assert re.fullmatch(r"saved Untitled\.ipynb \(\d+ bytes\)", save.locator("pre").inner_text())
    save_place = save.locator("xpath=ancestor::div[contains(@class, 'jp-hdh-audit-place')]")
    assert save_place.locator("h4").inner_text().startswith("Untitled.ipynb")
    SHOTS.mkdir(parents=True, exist_ok=True)
    shot = SHOTS / "audit-code.png"
    box = widget.bounding_box()
    bottom = widget.locator(".jp-hdh-audit-list").bounding_box()
    assert box is not None and bottom is not None
    height = min(box["height"], bottom["y"] + bottom["height"] - box["y"] + 24)
    page.screenshot(path=str(shot), clip={**box, "height": height})
    assert shot.stat().st_size < MAX_SHOT_BYTES, shot.stat().st_size

    # a filter nothing matches, then back
    widget.locator(".jp-hdh-audit-kind").select_option("template")
    widget.get_by_text("No audited code matches these filters.").wait_for()
    assert widget.locator(".jp-hdh-audit-entry").count() == 0
    widget.locator(".jp-hdh-audit-kind").select_option("cell")
    entry.wait_for(state="visible")
    assert widget.locator('.jp-hdh-audit-entry:not([data-kind="cell"])').count() == 0


def test_a_plain_member_reads_why_not(up: Up, lab: Lab) -> None:  # noqa: F811
    for args in (
        ("user", "add", "dave", "--role", "researcher"),
        ("project", "add-member", "demo", "dave"),
        ("permit", "grant", "demo", "--member", "alice", "--member", "dave",
         "--dataset", "demo-snds", "--days", "30"),
    ):  # fmt: skip
        r = up.hdh(*args)
        assert r.returncode == 0, (args, r.stderr)
    r = up.hdh("user", "passwd", "dave", "--password-stdin", input="dave-s3cret-pass\n")
    assert r.returncode == 0, r.stderr
    context = lab.page.context.browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        answers: list[int] = []
        page.on(
            "response", lambda r: answers.append(r.status) if "/hdh/audit/code" in r.url else None
        )
        page.goto(f"{up.url}/hub/login")
        page.fill("input[name=username]", "dave")
        page.fill("input[name=password]", "dave-s3cret-pass")
        with page.expect_navigation():
            page.click("#login_submit")
        page.goto(f"{up.url}/hub/spawn/dave/demo")
        page.wait_for_url(re.compile(re.escape(f"{up.url}/user/dave/demo/lab")))
        page.locator(".jp-Launcher").first.wait_for(state="visible")
        page.keyboard.press("Control+Shift+C")
        palette = page.locator("#command-palette input")
        palette.wait_for(state="visible")
        palette.fill("Audited code")
        page.locator(".lm-CommandPalette-item", has_text="HDH: Audited code").first.click()
        widget = page.locator("#jp-hdh-audit")
        widget.wait_for(state="visible")
        refused = widget.locator(".jp-hdh-audit-refused")
        refused.wait_for(state="visible")
        assert refused.inner_text() == REFUSAL
        assert widget.locator(".jp-hdh-audit-entry").count() == 0
        assert "audited:" not in widget.inner_text()
        assert answers == [403], answers
    finally:
        context.close()
    assert CHROMIUM and CHROMIUM_ARGS  # the browser is alice's fixture's
