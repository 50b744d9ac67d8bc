"""The HDH side panel in a real browser, in alice's sandbox under ``hdh up``.

Reuses ``tests/ui/test_jupyterlab_browser.py``'s fixtures (one ``hdh up`` for this
module, Debian chromium through Playwright, console and CSP violations recorded).
Checked: the panel opens from the left sidebar; "My data" lists the mounted
``demo-snds v1`` with its path and tables (read from the installation's files) and
copies the path; a catalogue search for ``IR_BEN_R`` shows the control plane's hits;
the file browser offers "Add to export request…" on a file, and the whole export flow
(new request, add, submit, check status) runs once the airlock routes answer (before
that, the panel says "not available yet"). Hostile server answers (markup in names,
a ``javascript:`` change URL) are shown as text and never followed; "Change mounted
versions…" warns before navigating. No CSP violation and no uncaught page error.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from tests.hub.test_embedded_hub import Up, up  # noqa: F401  (module fixture)
from tests.ui.test_jupyterlab_browser import (  # noqa: F401  (module fixtures)
    SHOTS,
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

PANEL = "#jp-hdh-panel"
TAB = '.jp-SideBar .lm-TabBar-tab[data-id="jp-hdh-panel"]'
FILES_TAB = '.jp-SideBar .lm-TabBar-tab[data-id="filebrowser"]'
RESTART_WARNING = (
    "Your sandbox will restart to mount the versions you choose. Running kernels stop; "
    "files in your workspace are kept."
)
OUTPUT_NAME = "hdh-panel-output.csv"
OUTPUT_CSV = "group,n\nA,120\nB,135\nC,142\n"
CODE_NAME = "hdh-panel-counts.py"
CODE = (
    "import pyarrow.parquet as pq\nprint(pq.read_metadata('/data/demo-snds/v1/IR_BEN_R.parquet'))\n"
)
REFRESH = ".jp-FileBrowser .jp-ToolbarButtonComponent[data-command='filebrowser:refresh']"


def fetch(ui: Lab, path: str, method: str = "GET", body: Any = None) -> tuple[int, Any]:
    """A same-origin call from the page (its cookies and XSRF token), as the panel makes."""
    status, text = ui.page.evaluate(
        """async ([url, method, body]) => {
            const xsrf = (document.cookie.match(/(?:^|; )_xsrf=([^;]*)/) || [])[1] || '';
            const init = {method, headers: {'X-XSRFToken': decodeURIComponent(xsrf)}};
            if (body !== null) {
              init.body = JSON.stringify(body);
              init.headers['Content-Type'] = 'application/json';
            }
            const r = await fetch(url, init);
            return [r.status, await r.text()];
        }""",
        [ui.base + path, method, body],
    )
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def show_panel(ui: Lab) -> Any:
    """Opens the HDH panel (re-opening it refreshes every section)."""
    page = ui.page
    panel = page.locator(PANEL)
    if panel.is_visible():
        show_files(page)
        panel.wait_for(state="hidden")
    page.locator(TAB).click()
    panel.wait_for(state="visible")
    return panel


def test_panel_lists_the_mounted_dataset_and_copies_its_path(up: Up, lab: Lab) -> None:  # noqa: F811
    page = lab.page
    t0 = time.monotonic()
    page.locator(TAB).wait_for(state="visible", timeout=30_000)  # the HDH tab, left sidebar
    assert page.locator(TAB).count() == 1
    panel = show_panel(lab)
    mount = panel.locator('.jp-hdh-mount[data-dataset="demo-snds"][data-version="v1"]')
    mount.wait_for(state="visible")
    lab.timings["panel"] = time.monotonic() - t0
    assert mount.locator(".jp-hdh-name").inner_text() == "demo-snds v1"
    assert mount.locator(".jp-hdh-path").inner_text() == "/data/demo-snds/v1"
    tables = sorted(
        p.stem for p in (up.data_dir / "datasets" / "demo-snds" / "v1").glob("*.parquet")
    )
    assert "IR_BEN_R" in tables
    listing = mount.locator("details.jp-hdh-tables")
    assert listing.locator("summary").inner_text() == f"{len(tables)} tables"
    listing.locator("summary").click()  # folded by default: the SNDS has dozens of tables
    assert listing.locator(".jp-hdh-muted").inner_text().split(", ") == tables
    # exactly what the sandbox route reports is listed, nothing more
    status, body = fetch(lab, "hdh/mounts")
    assert status == 200, body
    listed = panel.locator(".jp-hdh-mount").evaluate_all(
        "ns => ns.map(n => [n.dataset.dataset, n.dataset.version])"
    )
    assert listed == [[m["dataset"], m["version"]] for m in body["mounts"]]

    # the versions the permit grants but the sandbox does not mount (from the control plane)
    assert "permitted" in body, body  # the sandbox route asks the control plane for them
    expected = [f"{p['dataset']} {p['version']}" for p in body["permitted"] if not p["mounted"]]
    assert panel.locator(".jp-hdh-permitted li").all_inner_texts() == expected
    assert ["demo-snds", "v1", True] in [
        [p["dataset"], p["version"], p["mounted"]] for p in body["permitted"]
    ]

    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    mount.get_by_role("button", name="Copy path").click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == "/data/demo-snds/v1"
    mount.get_by_role("button", name="Copy code").click()
    code = page.evaluate("navigator.clipboard.readText()")
    assert "/data/demo-snds/v1/" in code and "pq.read_table(" in code, code
    # the copied code runs: here on the host copy of the mount (same files, other root)
    host = up.data_dir / "datasets" / "demo-snds" / "v1"
    scope: dict[str, Any] = {}
    exec(compile(code.replace("/data/demo-snds/v1", str(host)), "<copied>", "exec"), scope)  # noqa: S102
    first = host / f"{tables[0]}.parquet"
    assert scope["table"].num_rows == pq.read_metadata(first).num_rows


def test_catalogue_search_shows_the_table(lab: Lab) -> None:  # noqa: F811
    panel = show_panel(lab)
    section = panel.locator('[data-hdh-section="catalogue"]')
    box = section.locator("input.jp-hdh-search")
    box.fill("IR_BEN_R")
    t0 = time.monotonic()
    box.press("Enter")
    hit = section.locator('li.jp-hdh-hit[data-table="IR_BEN_R"]').first
    hit.wait_for(state="visible")
    lab.timings["catalogue search"] = time.monotonic() - t0
    # the same answer the sandbox route gives (the control plane's search, via the bridge)
    status, body = fetch(lab, "hdh/catalogue?q=IR_BEN_R")
    assert status == 200, body
    shown = section.locator("li.jp-hdh-hit").evaluate_all(
        "ns => ns.map(n => [n.dataset.dataset, n.dataset.version, n.dataset.table,"
        " n.dataset.variable])"
    )
    assert shown == [
        [h["dataset"], h["version"], h["table"] or "", h["variable"] or ""] for h in body["results"]
    ]
    assert any(t == "IR_BEN_R" for _, _, t, _ in shown), shown
    assert hit.get_attribute("data-dataset") == "demo-snds"
    assert hit.locator(".jp-hdh-name").inner_text().startswith("demo-snds v1 › IR_BEN_R")
    # a search that matches nothing says so
    box.fill("zzzz-no-such-thing")
    box.press("Enter")
    section.get_by_text("Nothing matches").wait_for(state="visible")
    assert section.locator("li.jp-hdh-hit").count() == 0


def _dialog(ui: Lab) -> Any:
    d = ui.page.locator(".jp-Dialog")
    d.wait_for(state="visible")
    return d


def _close_dialog(ui: Lab, accept: bool = False) -> None:
    d = _dialog(ui)
    button = ".jp-Dialog-button.jp-mod-accept" if accept else ".jp-Dialog-button.jp-mod-reject"
    if d.locator(button).count() == 0:
        button = ".jp-Dialog-button"
    d.locator(button).last.click()
    d.wait_for(state="detached")


def show_files(page: Any) -> None:
    """Bring the file browser forward (clicking its tab when it is already shown would
    collapse the sidebar: JupyterLab restores the last layout, so either may be the case)."""
    browser = page.locator(".jp-FileBrowser")
    if not browser.is_visible():
        page.locator(FILES_TAB).click()
    browser.wait_for(state="visible")


def test_add_to_export_request_from_the_file_browser(lab: Lab) -> None:  # noqa: F811
    page = lab.page
    status, body = fetch(
        lab,
        f"api/contents/{OUTPUT_NAME}",
        "PUT",
        {"type": "file", "format": "text", "content": OUTPUT_CSV},
    )
    assert status in (200, 201), body
    show_files(page)
    page.locator(REFRESH).click()
    item = page.locator(".jp-DirListing-item", has_text=OUTPUT_NAME).first
    item.wait_for(state="visible")
    item.click(button="right")
    labels = lab.menu_labels()
    assert "Add to export request…" in labels, labels
    page.keyboard.press("Escape")
    page.locator(".lm-Menu").wait_for(state="detached")
    # a folder is not exportable: the command is absent from a folder's menu
    fetch(lab, "api/contents/hdh-folder", "PUT", {"type": "directory"})
    page.locator(REFRESH).click()
    folder = page.locator(".jp-DirListing-item", has_text="hdh-folder").first
    folder.click(button="right")
    assert "Add to export request…" not in lab.menu_labels()
    page.keyboard.press("Escape")
    page.locator(".lm-Menu").wait_for(state="detached")

    status, _ = fetch(lab, "hdh/egress/requests")
    item.click(button="right")
    lab.menu_labels()
    page.locator(".lm-Menu .lm-Menu-item", has_text="Add to export request…").click()
    assert status == 200
    d = _dialog(lab)
    assert OUTPUT_NAME in d.inner_text()
    d.locator("select[name=role]").select_option("output")
    d.locator("select[name=request]").select_option("__new__")
    title = f"UI test {time.time_ns()}"
    d.locator("input[name=title]").fill(title)
    d.locator("input[name=population]").fill("All demo patients")
    d.locator("input[name=variables]").fill("group, n")
    d.locator("input[name=degrees_of_freedom]").fill("2")
    d.locator("textarea[name=description]").fill("Counts per group")
    d.locator("textarea[name=controls]").fill("No cell below 10")
    d.locator(".jp-Dialog-body").evaluate("body => { body.scrollTop = 0; }")
    d.screenshot(path=str(SHOTS / "lab-export-dialog.png"))  # the README's export journey
    _close_dialog(lab, accept=True)

    panel = page.locator(PANEL)
    panel.wait_for(state="visible")
    request = panel.locator(".jp-hdh-request", has_text=title)
    request.wait_for(state="visible")
    assert request.get_attribute("data-state") == "draft"
    request_id = request.get_attribute("data-request-id")
    file = request.locator(f'.jp-hdh-file[data-path="{OUTPUT_NAME}"]')
    assert file.locator(".jp-hdh-role").inner_text() == "output"
    # the control plane holds the same request, with the context typed in the dialog
    status, view = fetch(lab, f"hdh/egress/requests/{request_id}")
    assert status == 200, view
    assert view["title"] == title and view["state"] == "draft"
    assert view["ui_url"] == f"/services/hdh/ui/egress/requests/{request_id}"
    [added] = view["files"]
    assert (added["path"], added["role"]) == (OUTPUT_NAME, "output")
    assert added["context"] == {
        "population": "All demo patients",
        "variables": ["group", "n"],
        "degrees_of_freedom": 2,
        "description": "Counts per group",
    }
    assert added["controls"] == "No cell below 10"

    # the code that made it, added to the same (existing) draft as "code"
    status, body = fetch(
        lab, f"api/contents/{CODE_NAME}", "PUT", {"type": "file", "format": "text", "content": CODE}
    )
    assert status in (200, 201), body
    show_files(page)
    page.locator(REFRESH).click()
    code_item = page.locator(".jp-DirListing-item", has_text=CODE_NAME).first
    code_item.click(button="right")
    lab.menu_labels()
    page.locator(".lm-Menu .lm-Menu-item", has_text="Add to export request…").click()
    d = _dialog(lab)
    options = d.locator("select[name=request] option").evaluate_all("os => os.map(o => o.value)")
    assert request_id in options and options[-1] == "__new__", options
    d.locator("select[name=request]").select_option(request_id)
    assert not d.locator("input[name=title]").is_visible()  # only asked for a new request
    d.locator("select[name=role]").select_option("code")
    _close_dialog(lab, accept=True)
    request = panel.locator(f'.jp-hdh-request[data-request-id="{request_id}"]')
    request.locator(f'.jp-hdh-file[data-path="{CODE_NAME}"]').wait_for(state="visible")
    _, view = fetch(lab, f"hdh/egress/requests/{request_id}")
    assert sorted((f["path"], f["role"]) for f in view["files"]) == sorted(
        [(OUTPUT_NAME, "output"), (CODE_NAME, "code")]
    )

    request.get_by_role("button", name="Submit").click()
    request = panel.locator(f'.jp-hdh-request[data-request-id="{request_id}"]')
    deadline = time.monotonic() + 60
    while (
        request.get_attribute("data-state") == "draft"
        or request.locator(".jp-hdh-check").count() == 0
    ):
        assert time.monotonic() < deadline, request.inner_text()
        time.sleep(1)
        panel.locator('[data-hdh-section="export"]').get_by_role("button", name="Refresh").click()
    check = request.locator(".jp-hdh-check").first.inner_text()
    assert re.fullmatch(r"check: (pass|fail|review)", check), check
    status, view = fetch(lab, f"hdh/egress/requests/{request_id}")
    assert check == f"check: {view['files'][0]['check_status']}", view
    assert request.get_by_role("button", name="Submit").count() == 0  # submitted: no resubmit

    # withdraw: asks first (cancel changes nothing), then the control plane's state
    request.get_by_role("button", name="Withdraw").click()
    assert "cannot be resubmitted" in _dialog(lab).inner_text()
    _close_dialog(lab)
    assert fetch(lab, f"hdh/egress/requests/{request_id}")[1]["state"] == view["state"]
    request.get_by_role("button", name="Withdraw").click()
    _close_dialog(lab, accept=True)
    request = panel.locator(
        f'.jp-hdh-request[data-request-id="{request_id}"][data-state="withdrawn"]'
    )
    request.wait_for(state="visible")
    assert fetch(lab, f"hdh/egress/requests/{request_id}")[1]["state"] == "withdrawn"
    # final: nothing left to do but look at it on the control plane's page
    assert request.get_by_role("button").all_inner_texts() == ["Open in the HDH portal"]


def test_control_plane_refusals_are_shown_with_their_detail(lab: Lab) -> None:  # noqa: F811
    """A title over the control plane's 200-character limit: its own words in a dialog."""
    status, before = fetch(lab, "hdh/egress/requests")
    assert status == 200, before
    panel = show_panel(lab)
    section = panel.locator('[data-hdh-section="export"]')
    section.get_by_role("button", name="New request").click()
    d = _dialog(lab)
    d.locator("input").fill("x" * 201)
    _close_dialog(lab, accept=True)
    error = _dialog(lab)
    assert "Could not create the export request" in error.inner_text()
    assert "200 characters" in error.inner_text(), error.inner_text()
    _close_dialog(lab, accept=True)
    assert fetch(lab, "hdh/egress/requests")[1] == before  # nothing was created


def test_hostile_answers_are_shown_as_text_and_never_followed(lab: Lab) -> None:  # noqa: F811
    page = lab.page
    markup = '<img src=x onerror="window.__hdhPwned=1">'
    mounts = {
        "mounts": [{"dataset": markup, "version": "v1", "path": "/data/x/v1", "tables": []}],
        "permitted": [{"dataset": markup, "version": "v2", "mounted": False}],
        "change_url": "javascript:window.__hdhPwned=2",
    }
    hits = {"results": [{"dataset": markup, "table": markup, "snippet": markup}]}

    def answer(body: Any) -> Any:
        return lambda route: route.fulfill(
            status=200, content_type="application/json", body=json.dumps(body)
        )

    def is_mounts(url: str) -> bool:
        return url.split("?")[0].endswith("/hdh/mounts")

    def is_hostile_search(url: str) -> bool:
        return "/hdh/catalogue" in url and "hostile" in url

    page.route(is_mounts, answer(mounts))
    page.route(is_hostile_search, answer(hits))
    try:
        panel = show_panel(lab)
        mydata = panel.locator('[data-hdh-section="mydata"]')
        mydata.locator(".jp-hdh-mount").first.wait_for(state="visible")
        assert markup in mydata.inner_text()
        assert mydata.locator(".jp-hdh-change").count() == 0  # javascript: URL refused
        for bad in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
            mounts["change_url"] = bad
            panel = show_panel(lab)
            panel.locator(".jp-hdh-mount").first.wait_for(state="visible")
            assert panel.locator(".jp-hdh-change").count() == 0, bad
        catalogue = panel.locator('[data-hdh-section="catalogue"]')
        catalogue.locator("input.jp-hdh-search").fill("hostile")
        catalogue.locator("input.jp-hdh-search").press("Enter")
        catalogue.locator("li.jp-hdh-hit").first.wait_for(state="visible")
        assert markup in catalogue.locator("li.jp-hdh-hit").first.inner_text()
        assert panel.locator("img").count() == 0
        assert page.evaluate("window.__hdhPwned") is None
    finally:
        page.unroute(is_mounts)
        page.unroute(is_hostile_search)
    show_panel(lab).locator('.jp-hdh-mount[data-dataset="demo-snds"]').wait_for(state="visible")


def test_an_older_server_answer_still_lists_the_mounts(lab: Lab) -> None:  # noqa: F811
    """``/hdh/mounts`` of an older sandbox: ``{"mounts": [...]}`` only, no permit, no URL."""
    page = lab.page
    status, real = fetch(lab, "hdh/mounts")
    assert status == 200, real
    old = {"mounts": [{k: m[k] for k in ("dataset", "version", "path")} for m in real["mounts"]]}

    def is_mounts(url: str) -> bool:
        return url.split("?")[0].endswith("/hdh/mounts")

    page.route(
        is_mounts,
        lambda route: route.fulfill(
            status=200, content_type="application/json", body=json.dumps(old)
        ),
    )
    try:
        panel = show_panel(lab)
        mydata = panel.locator('[data-hdh-section="mydata"]')
        mount = mydata.locator('.jp-hdh-mount[data-dataset="demo-snds"]')
        mount.wait_for(state="visible")
        assert mount.locator(".jp-hdh-path").inner_text() == "/data/demo-snds/v1"
        assert mount.locator(".jp-hdh-tables").count() == 0  # absent from the older answer
        assert mydata.locator(".jp-hdh-permitted").count() == 0
        assert mydata.locator(".jp-hdh-change").count() == 0
        assert mydata.locator(".jp-hdh-error").count() == 0
    finally:
        page.unroute(is_mounts)
    show_panel(lab).locator(".jp-hdh-change").wait_for(state="visible")


def test_no_csp_violation_and_no_page_error(lab: Lab) -> None:  # noqa: F811
    violations = lab.csp_violations()
    assert violations == [], "\n".join(violations)
    errors = [m for m in lab.console if m.startswith("[pageerror]")]
    ours = [m for m in lab.console if "jupyterlab-hdh" in m and m.startswith("[error]")]
    assert errors == [] and ours == [], "\n".join(errors + ours)


def test_change_mounted_versions_warns_then_navigates_the_top_window(up: Up, lab: Lab) -> None:  # noqa: F811
    """Last: it leaves JupyterLab for the hub's page."""
    page = lab.page
    status, real = fetch(lab, "hdh/mounts")
    assert status == 200, real
    routed = None
    if not real.get("change_url"):
        # the sandbox route does not offer it yet: the same answer with the hub's URL added
        routed = {**real, "change_url": "/hub/hdh/projects/demo/datasets"}
        page.route(
            lambda url: url.split("?")[0].endswith("/hdh/mounts"),
            lambda route: route.fulfill(
                status=200, content_type="application/json", body=json.dumps(routed)
            ),
        )
    target = (routed or real)["change_url"]
    panel = show_panel(lab)
    change = panel.locator(".jp-hdh-change")
    change.wait_for(state="visible")
    change.click()
    d = _dialog(lab)
    assert RESTART_WARNING in d.inner_text()
    _close_dialog(lab)  # cancel: nothing happens
    assert page.url.startswith(f"{up.url}{lab.base}lab")
    change.click()
    _close_dialog(lab, accept=True)
    page.wait_for_url(f"{up.url}{target}*")
    assert Path(page.url.split(up.url, 1)[1].split("?")[0]).as_posix() == target
