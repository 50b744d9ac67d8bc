"""The catalogue browser in a real browser (Debian ``chromium`` and Playwright) through
``hdh up``: alice opens it from the HDH panel of her ``demo`` project's JupyterLab, searches as
she types, filters, opens the demo dataset's page (description, coverage, counts, tables,
quality report, versions and her access: mounted), a table's data dictionary, and inserts an
``hdh.read`` cell into her notebook, which runs in the project's kernel (audited by the guard).
The dataset page's screenshot goes to ``docs/screenshots/catalogue-dataset.png``.

One ``hdh up`` per module (the ``up`` fixture of ``tests/hub/test_embedded_hub.py``); the
browser, its recorders and the failure screenshot are ``tests/ui/test_jupyterlab_browser.py``'s.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pyarrow.parquet as pq
import pytest

from tests.hub.test_embedded_hub import Up, up  # noqa: F401  (module fixture)
from tests.ui.test_jupyterlab_browser import (  # noqa: F401  (fixtures)
    SHOTS,
    Lab,
    _screenshot_on_failure,
    _ui_problem,
    lab,
    wait_idle,
)

MAX_SHOT_BYTES = 200_000
RUN_TIMEOUT_MS = 120_000


pytestmark = [
    pytest.mark.skipif(_ui_problem() is not None, reason=str(_ui_problem())),
]


def test_before_a_notebook_the_insert_is_disabled_with_a_reason(lab: Lab) -> None:  # noqa: F811
    page = lab.page
    page.locator('.lm-TabBar-tab[data-id="jp-hdh-panel"]').click()
    page.locator(".jp-hdh-browse").click()
    widget = page.locator("#jp-hdh-catalogue")
    widget.wait_for(state="visible")
    # without words: the catalogue's datasets
    hit = widget.locator('.jp-hdh-cat-hit[data-dataset="demo-snds"]').first
    hit.wait_for(state="visible")
    close = page.locator('.lm-TabBar-tab[data-id="jp-hdh-catalogue"] .lm-TabBar-tabCloseIcon')
    close.click()
    widget.wait_for(state="detached")
    # a hit of the panel's own search opens the browser on its table's dictionary
    section = page.locator('#jp-hdh-panel [data-hdh-section="catalogue"]')
    section.locator("input.jp-hdh-search").fill("IR_BEN_R")
    section.locator("input.jp-hdh-search").press("Enter")
    section.locator('li.jp-hdh-hit[data-table="IR_BEN_R"][data-variable=""]').first.click()
    widget.locator(".jp-hdh-cat-dictionary").wait_for(state="visible")
    assert widget.locator(".jp-hdh-cat-title").inner_text().startswith("IR_BEN_R")
    insert = widget.locator(".jp-hdh-cat-insert")
    assert insert.is_disabled()
    assert "Open a notebook first" in widget.locator(".jp-hdh-cat-insertWhy").inner_text()
    close.click()
    widget.wait_for(state="detached")


def test_search_filters_page_dictionary_and_read_cell(up: Up, lab: Lab) -> None:  # noqa: F811
    page = lab.page
    t0 = time.monotonic()
    # a notebook first: the cell goes into the last notebook used
    page.locator(".jp-Launcher").first.wait_for(state="visible")
    page.locator('.jp-LauncherCard[data-category="Notebook"]').first.click()
    page.locator(".jp-NotebookPanel .jp-Cell .cm-content").first.wait_for(state="visible")
    wait_idle(lab)

    # from the command palette this time
    page.keyboard.press("Control+Shift+C")
    palette = page.locator("#command-palette input")
    palette.wait_for(state="visible")
    palette.fill("Browse the catalogue")
    page.locator(".lm-CommandPalette-item", has_text="HDH: Browse the catalogue").first.click()
    widget = page.locator("#jp-hdh-catalogue")
    widget.wait_for(state="visible")

    # search as you type: a variable of IR_BEN_R
    query = widget.locator(".jp-hdh-cat-query")
    sent: list[str] = []

    def record(request: Any) -> None:
        if "/hdh/catalogue/search" in request.url and "q=" in request.url:
            sent.append(request.url)

    page.on("request", record)
    query.click()
    query.press_sequentially("BEN_NAI", delay=30)
    hits = widget.locator(".jp-hdh-cat-hit")
    widget.locator('.jp-hdh-cat-hit[data-variable="BEN_NAI_ANN"]').first.wait_for(state="visible")
    page.remove_listener("request", record)
    # debounced: one search for seven keys typed quickly, not one a key
    assert len(sent) == 1 and "q=BEN_NAI" in sent[0], sent
    assert all(d == "demo-snds" for d in hits.evaluate_all("hs => hs.map(h => h.dataset.dataset)"))
    # a filter no dataset passes, then back
    widget.locator('select[data-filter="synthetic"]').select_option("no")
    widget.get_by_text("Nothing matches “BEN_NAI” with these filters.").wait_for()
    assert hits.count() == 0
    widget.locator('select[data-filter="synthetic"]').select_option("yes")
    widget.locator('.jp-hdh-cat-hit[data-variable="BEN_NAI_ANN"]').first.wait_for()
    widget.locator('input[data-filter="from"]').fill("1990")
    widget.locator('input[data-filter="to"]').fill("1991")
    widget.get_by_text("Nothing matches “BEN_NAI” with these filters.").wait_for()
    widget.locator('input[data-filter="from"]').fill("")
    widget.locator('input[data-filter="to"]').fill("")
    theme = widget.locator('select[data-filter="theme"]')
    assert "HEAL" in theme.locator("option").evaluate_all("os => os.map(o => o.value)")
    theme.select_option("HEAL")
    query.fill("")
    lab.timings["catalogue:search"] = time.monotonic() - t0

    # the dataset page
    # without words, the datasets themselves (the hits of a table open its dictionary)
    widget.locator('.jp-hdh-cat-hit[data-dataset="demo-snds"][data-table=""]').click()
    title = widget.locator(".jp-hdh-cat-title")
    title.wait_for(state="visible")
    detail = widget.locator(".jp-hdh-cat-detail")
    badge = detail.locator(".jp-hdh-cat-access").first
    assert badge.get_attribute("data-access") == "mounted", badge.inner_text()
    assert badge.inner_text() == "Mounted"
    text = detail.inner_text()
    for expected in ("Coverage", "Records", "Individuals", "TABLES", "QUALITY REPORT", "VERSIONS"):
        assert expected.lower() in text.lower(), (expected, text[:2000])
    assert re.search(r"\d+ checks passed, \d+ failed", text), text[:2000]
    assert "/data/demo-snds/" in detail.locator(".jp-hdh-cat-accessBox").inner_text()
    rows = pq.read_metadata(
        up.data_dir / "datasets" / "demo-snds" / "v1" / "IR_BEN_R.parquet"
    ).num_rows
    ir_ben = detail.locator('tr[data-table="IR_BEN_R"]')
    assert f"{rows:,}" in ir_ben.inner_text(), ir_ben.inner_text()
    SHOTS.mkdir(parents=True, exist_ok=True)
    shot = SHOTS / "catalogue-dataset.png"
    widget.screenshot(path=str(shot))
    assert shot.stat().st_size < MAX_SHOT_BYTES, shot.stat().st_size
    lab.timings["catalogue:page"] = time.monotonic() - t0

    # the table's data dictionary
    ir_ben.locator(".jp-hdh-cat-openTable").click()
    dictionary = widget.locator(".jp-hdh-cat-dictionary")
    dictionary.wait_for(state="visible")
    assert dictionary.locator('tr[data-column="BEN_NIR_PSA"]').count() == 1
    insert = widget.locator(".jp-hdh-cat-insert")
    assert insert.is_enabled()
    assert "Untitled" in widget.locator(".jp-hdh-cat-insertWhy").inner_text()
    # two columns, pandas
    dictionary.locator("thead input[type=checkbox]").uncheck()
    for column in ("BEN_NIR_PSA", "BEN_NAI_ANN"):
        dictionary.locator(f'input[data-column="{column}"]').check()
    widget.locator(".jp-hdh-cat-engine").select_option("pandas")
    insert.click()

    # the notebook is shown, the new cell below the first one, active
    cells = page.locator(".jp-NotebookPanel .jp-Cell")
    expected = (
        'import hdh\n\ndf = hdh.read("demo-snds.IR_BEN_R", engine="pandas",'
        ' columns=["BEN_NIR_PSA", "BEN_NAI_ANN"])'
    )
    cell = cells.nth(1)
    cell.wait_for(state="visible")
    shown = cell.locator(".cm-content").inner_text()  # CodeMirror: a blank line reads as two
    assert [x for x in shown.splitlines() if x] == [x for x in expected.splitlines() if x], shown
    assert "jp-mod-active" in (cell.get_attribute("class") or "")
    cell.locator(".cm-content").click()
    page.keyboard.press("Shift+Enter")
    # the next cell shows what was read
    after = page.locator(".jp-NotebookPanel .jp-Cell").nth(2).locator(".cm-content")
    after.wait_for(state="visible")
    after.click()
    page.keyboard.insert_text("print(type(df).__name__, df.shape)")
    page.keyboard.press("Shift+Enter")
    output = page.locator(".jp-NotebookPanel .jp-Cell").nth(2).locator(".jp-OutputArea-output")
    output.first.wait_for(state="visible", timeout=RUN_TIMEOUT_MS)
    assert output.first.inner_text().strip() == f"DataFrame ({rows}, 2)"
    assert (
        page.locator(".jp-NotebookPanel .jp-OutputArea-output", has_text="Traceback").count() == 0
    )
    lab.timings["catalogue:read-cell"] = time.monotonic() - t0

    # the guard audited the inserted cell like any other
    deadline = time.monotonic() + 30
    while True:
        executed = [
            e["details"].get("code", "") for e in up.audit() if e["action"] == "code.execute"
        ]
        if any('hdh.read("demo-snds.IR_BEN_R"' in code for code in executed):
            break
        assert time.monotonic() < deadline, executed[-3:]
        time.sleep(0.5)


def test_a_dataset_outside_the_permit_says_how_to_obtain_access(
    up: Up,  # noqa: F811
    lab: Lab,  # noqa: F811
) -> None:
    raw = up.data_dir.parent / "registry-extract"
    r = up.hdh(
        "data", "synth", "--patients", "30", "--seed", "5", "--raw", "--quiet", "--out", str(raw)
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    r = up.hdh(
        "data", "ingest", str(raw), "--dataset", "registre-test",
        "--title", "Registre de test (hors permis)",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    page = lab.page
    page.keyboard.press("Control+Shift+C")
    palette = page.locator("#command-palette input")
    palette.fill("Browse the catalogue")
    page.locator(".lm-CommandPalette-item", has_text="HDH: Browse the catalogue").first.click()
    widget = page.locator("#jp-hdh-catalogue")
    widget.wait_for(state="visible")
    widget.locator(".jp-hdh-cat-query").fill("registre hors permis")
    hit = widget.locator('.jp-hdh-cat-hit[data-dataset="registre-test"][data-table=""]')
    hit.wait_for(state="visible")
    assert widget.locator('.jp-hdh-cat-hit[data-dataset="demo-snds"]').count() == 0
    hit.click()
    detail = widget.locator(".jp-hdh-cat-detail")
    detail.get_by_text("Registre de test (hors permis)").first.wait_for()
    badge = detail.locator(".jp-hdh-cat-access").first
    assert badge.get_attribute("data-access") == "not_permitted"
    assert badge.inner_text() == "Not permitted"
    how = detail.locator(".jp-hdh-cat-accessBox").inner_text()
    # alice leads demo: she may request access (an amendment of the permit), from here
    assert "does not cover registre-test" in how and "As the project's lead" in how, how
    widget.screenshot(path=str(SHOTS / "catalogue-not-permitted.png"))
    assert (SHOTS / "catalogue-not-permitted.png").stat().st_size < MAX_SHOT_BYTES
    detail.locator(".jp-hdh-cat-requestAccess").click()
    form = detail.locator(".jp-hdh-cat-requestForm")
    form.wait_for(state="visible")
    form.locator(".jp-hdh-cat-requestSubmit").click()  # both fields are required
    error = form.locator(".jp-hdh-cat-requestError")
    assert "are required" in error.inner_text(), error.inner_text()
    form.locator('textarea[name="public_interest"]').fill("Suivi des cancers après un diabète.")
    form.locator('textarea[name="methodology"]').fill("Cohorte rétrospective chaînée au SNDS.")
    form.locator(".jp-hdh-cat-requestSubmit").click()
    done = detail.locator(".jp-hdh-cat-requestDone")
    done.wait_for(state="visible")
    number = re.search(r"application #(\d+)", done.inner_text())
    assert number is not None, done.inner_text()
    how = detail.locator(".jp-hdh-cat-accessBox").inner_text()
    assert f"Access requested: application #{number[1]} (submitted)" in how, how
    assert detail.locator(".jp-hdh-cat-requestAccess").count() == 0
    # its dictionary still reads, and says that a read cell would fail here
    detail.locator('tr[data-table="IR_BEN_R"] .jp-hdh-cat-openTable').click()
    widget.locator(".jp-hdh-cat-dictionary").wait_for(state="visible")
    warn = widget.locator(".jp-hdh-cat-warn").inner_text()
    assert "This sandbox does not mount registre-test" in warn, warn

    # a reload reopens the browser where it was (the layout restorer)
    page.reload()
    page.locator("#jp-main-dock-panel").wait_for(state="visible")
    widget.wait_for(state="visible")
    widget.locator(".jp-hdh-cat-hit").first.wait_for(state="visible")


def test_the_browser_asked_for_nothing_refused(lab: Lab) -> None:  # noqa: F811
    assert lab.http_errors == [], lab.http_errors
    assert not [m for m in lab.console if m.startswith("[pageerror]")], lab.console
    assert lab.csp_violations() == []
