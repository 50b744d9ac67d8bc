"""The daily display budget end to end: real ``hdh up``, real Chromium, real guard restart.

``guard.toml`` gives alice a small budget (4 MiB). In JupyterLab she writes a
text file from a cell, then prints a few megabytes: past the budget the output
area shows the guard's placeholder instead of the data, and opening the file
shows JupyterLab's error dialog with the guard's one-line reason. The alert is
in the audit log. The HDH extension's own reads (``/hdh/*``) are refused too, and
say so in words where alice looks: the HDH panel's catalogue and the catalogue
browser show "Daily display budget reached: …" with the guard's reason (who can
raise it), in English, and in French in a second tab that booted in French before
the budget ran out (``docs/screenshots/catalogue-display-budget.png``). The guard
is then stopped (the hub restarts it): the counts came back from the audit log, so
the file is still refused. An administrator raises the budget with
``hdh guard raise-budget``: the same file opens and the catalogue searches again.
"""

from __future__ import annotations

import json
import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.hdh_up import free_port, start_up, stop_up
from tests.hub.test_embedded_hub import Up
from tests.ui.test_hdh_panel import PANEL, TAB, fetch, show_files
from tests.ui.test_jupyterlab_browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    SHOTS,
    TIMEOUT_MS,
    Lab,
    _ui_problem,
)
from tests.waiting import wait_for

pytestmark = pytest.mark.skipif(_ui_problem() is not None, reason=str(_ui_problem()))

BUDGET_MIB = 4
REFUSAL = "daily display budget reached"
BASE = "/user/alice/demo/"
LANGUAGE = "lab/api/settings/@jupyterlab/translation-extension:plugin"
MAX_SHOT_BYTES = 200_000
#: What the catalogue browser says past the budget (src/format.ts, the .po's French).
BUDGET_EN = "The search failed. Daily display budget reached: "
BUDGET_FR = "La recherche a échoué. Budget d'affichage quotidien atteint : "


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    data_dir = tmp_path_factory.mktemp("budget") / "hdh"
    data_dir.mkdir(mode=0o700)
    (data_dir / "guard.toml").write_text(
        f'[display]\ndaily_budget = "{BUDGET_MIB}M"\nflush_seconds = 1\n'
    )
    port = free_port()
    proc, _ = start_up(data_dir, port, free_port(), seed=7, stderr_file=data_dir.parent / "up.err")
    try:
        creds = json.loads((data_dir / "demo-credentials.json").read_text())
        yield Up(proc, data_dir, f"http://127.0.0.1:{port}", "", creds, 0.0)
    finally:
        stop_up(proc)


def guard_process(up: Up) -> psutil.Process | None:
    for p in psutil.Process(up.proc.pid).children(recursive=True):
        try:
            if "jupyterlab_hdh.guard" in " ".join(p.cmdline()) or "hdh-guard" in " ".join(
                p.cmdline()
            ):
                return p
        except psutil.NoSuchProcess:
            continue
    return None


def shown(up: Up) -> dict[str, Any]:
    r = up.hdh("guard", "display", "--json")
    assert r.returncode == 0, r.stderr
    return {row["user"]: row for row in json.loads(r.stdout)}


def guard_answers(up: Up, page: Any) -> bool:
    """The guard serves alice's server again (429 counts: it answered, refusing)."""
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    try:
        r = httpx.get(f"{up.url}/user/alice/demo/api/status", cookies=cookies, timeout=10)
    except httpx.HTTPError:
        return False
    return r.status_code in (200, 429)


def open_file(page: Any, name: str) -> None:
    dismiss_dialogs(page)
    page.locator(".jp-DirListing-item", has_text=name).first.dblclick()


def dismiss_dialogs(page: Any) -> None:
    # JupyterLab says "Server Connection Error" while the guard restarts: dismissed
    while page.locator(".jp-Dialog").count():
        page.locator(".jp-Dialog").first.get_by_role("button").last.click()


def budget_refusal_in_catalogue(page: Any, lead: str) -> str:
    """Opens the catalogue browser from the HDH panel; answers what its search says."""
    dismiss_dialogs(page)
    if not page.locator(PANEL).is_visible():
        page.locator(TAB).click()
    page.locator(PANEL).wait_for(state="visible")
    page.locator(".jp-hdh-browse").click()
    widget = page.locator("#jp-hdh-catalogue")
    widget.wait_for(state="visible")
    status = widget.locator(".jp-hdh-cat-status.jp-hdh-error")
    status.wait_for(state="visible")
    text: str = status.inner_text()
    assert text.startswith(lead), text
    # the guard's reason: how much, and who can raise it; never a status code or JSON
    assert "raise-budget alice" in text and "MiB" in text, text
    assert "429" not in text and "{" not in text and "\n" not in text.strip(), text
    assert status.get_attribute("role") == "alert"
    assert widget.locator(".jp-hdh-cat-hit").count() == 0
    return text


def test_budget_in_the_browser(up: Up, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        # a context (not browser.new_page's own): the French tab shares alice's cookies
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        try:
            page.goto(f"{up.url}/hub/login")
            page.fill("input[name=username]", "alice")
            page.fill("input[name=password]", up.creds["alice"]["password"])
            with page.expect_navigation():
                page.click("#login_submit")
            page.goto(f"{up.url}/hub/spawn/alice/demo")
            page.wait_for_url(re.compile(re.escape(f"{up.url}/user/alice/demo/lab")))
            page.locator(".jp-Launcher").first.wait_for(state="visible")
            page.locator('.jp-LauncherCard[data-category="Notebook"]').first.click()
            editor = page.locator(".jp-NotebookPanel .jp-Cell .cm-content").last
            editor.wait_for(state="visible")
            page.locator("#jp-main-statusbar").get_by_text(
                re.compile(r"\|\s*Idle")
            ).first.wait_for()

            def run_cell(code: str) -> Any:
                cell_editor = page.locator(".jp-NotebookPanel .jp-Cell .cm-content").last
                cell_editor.click()
                page.keyboard.insert_text(code)
                page.keyboard.press("Shift+Enter")
                return page.locator(".jp-NotebookPanel .jp-Cell").nth(-2).locator(".jp-OutputArea")

            cell = run_cell(
                "for n in (1, 2, 3): open(f'note{n}.txt', 'w').write(f'the note says 4{n}')\n"
                "print('written')"
            )
            cell.get_by_text("written").wait_for()
            before = wait_for(lambda: shown(up).get("alice"), "alice's first counts", 90)
            print("shown before the big cell:", before)
            assert before["shown"] < BUDGET_MIB * 2**20, before  # JupyterLab itself fits

            # a second tab that boots in French (JupyterLab's language is alice's setting,
            # read when a page loads: this tab stays English), on a workspace of its own
            lab = Lab(page, BASE)
            status, body = fetch(lab, LANGUAGE, "PUT", {"raw": json.dumps({"locale": "fr_FR"})})
            assert status == 204, body
            french = page.context.new_page()
            french.set_default_timeout(TIMEOUT_MS)
            french.goto(f"{up.url}{BASE}lab/workspaces/budget-fr?reset")
            menus = french.locator("#jp-menu-panel .lm-MenuBar-itemLabel")
            menus.first.wait_for(state="visible")
            assert "Fichier" in menus.all_inner_texts()
            french.locator(TAB).wait_for(state="visible")
            status, body = fetch(lab, LANGUAGE, "PUT", {"raw": json.dumps({"locale": "en"})})
            assert status == 204, body
            page.bring_to_front()

            # a few megabytes of output (under the server's own iopub rate limit of 1 MB/s):
            # past the budget, the guard's placeholder instead
            cell = run_cell(
                "import time\n"
                "for i in range(60): print(f'chunk-{i:02d} ' + 'x' * 100_000); time.sleep(0.25)"
            )
            cell.get_by_text(REFUSAL).first.wait_for()
            text = cell.inner_text()
            assert "raise-budget alice" in text
            assert "chunk-00" in text and "chunk-59" not in text  # the late chunks never came
            cell.get_by_text(REFUSAL).first.scroll_into_view_if_needed()
            page.screenshot(path=str(tmp_path / "output-withheld.png"))

            # the alert, for administrators
            wait_for(
                lambda: [e for e in up.audit() if e["action"] == "display.budget_exceeded"],
                "the budget alert",
                timeout=90,
            )

            # reads are refused, with the reason in JupyterLab's own dialog
            open_file(page, "note1.txt")
            dialog = page.locator(".jp-Dialog")
            dialog.get_by_text(REFUSAL).wait_for()
            page.screenshot(path=str(tmp_path / "read-refused.png"))
            dialog.get_by_role("button").last.click()

            # the extension's reads say it in words, where alice looks: the HDH panel...
            text = budget_refusal_in_catalogue(page, BUDGET_EN)
            print("the catalogue browser says:", text)
            section = page.locator(f'{PANEL} [data-hdh-section="catalogue"]')
            section.get_by_text("Daily display budget reached:").first.wait_for()
            SHOTS.mkdir(parents=True, exist_ok=True)
            shot = SHOTS / "catalogue-display-budget.png"
            page.screenshot(path=str(shot))
            assert shot.stat().st_size < MAX_SHOT_BYTES, shot.stat().st_size
            # ... and in French in the French tab
            french.bring_to_front()
            text = budget_refusal_in_catalogue(french, BUDGET_FR)
            print("in French:", text)
            french.close()
            page.bring_to_front()
            show_files(page)

            # the guard restarts (the hub brings it back): the counts came back with it
            guard = guard_process(up)
            assert guard is not None
            old_pid = guard.pid
            os.kill(old_pid, signal.SIGTERM)
            new = wait_for(
                lambda: (g := guard_process(up)) is not None and g.pid != old_pid and g,
                "the hub to restart the guard",
                timeout=120,
            )
            assert new.pid != old_pid
            wait_for(lambda: guard_answers(up, page), "the restarted guard to answer", 90)
            open_file(page, "note2.txt")
            page.locator(".jp-Dialog").get_by_text(REFUSAL).wait_for()
            page.locator(".jp-Dialog").get_by_role("button").last.click()

            # an administrator raises it: the file opens
            r = up.hdh("guard", "raise-budget", "alice", "--by", "50M")
            assert r.returncode == 0 and "raised by 50.0 MiB" in r.stdout, r.stderr
            open_file(page, "note3.txt")
            page.locator(".jp-FileEditor").get_by_text("the note says 43").wait_for()
            # the catalogue searches again (the message was the guard's answer, not a state)
            dismiss_dialogs(page)
            page.locator('.lm-TabBar-tab[data-id="jp-hdh-catalogue"]').click()
            catalogue = page.locator("#jp-hdh-catalogue")
            catalogue.locator(".jp-hdh-cat-query").fill("IR_BEN_R")
            catalogue.locator('.jp-hdh-cat-hit[data-dataset="demo-snds"]').first.wait_for()
            assert catalogue.locator(".jp-hdh-cat-status.jp-hdh-error").count() == 0
            # the kernel was never reported dead: its session answers passed past the budget
            assert page.get_by_text("Kernel died unexpectedly").count() == 0
            page.screenshot(path=str(tmp_path / "after-raise.png"))
        except Exception:
            page.screenshot(path=str(tmp_path / "failure.png"))
            print(f"screenshots in {tmp_path}")
            raise
        finally:
            browser.close()
    raises = [e for e in up.audit() if e["action"] == "display.budget_raise"]
    assert raises and raises[0]["details"]["user"] == "alice"
