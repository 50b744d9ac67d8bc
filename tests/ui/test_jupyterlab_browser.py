"""JupyterLab in a real browser (Debian ``chromium`` driven by Playwright) through ``hdh up``.

One ``hdh up`` per module (the ``up`` fixture of ``tests/hub/test_embedded_hub.py``).
Alice logs in through the hub's form, opens ``/hub/spawn/alice/demo``, creates a
notebook and runs code that reads the mounted demo dataset. Then: the page raised
no Content-Security-Policy violation (the guard's strict CSP), the locked
download/export plugins are absent from the file browser's context menu and the
File menu, and the audit log holds the cell's exact code. Console messages and
failed requests are collected the whole time and printed; a failing test leaves a
screenshot in its ``tmp_path``.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from tests.hub.test_embedded_hub import Up, _problem, up  # noqa: F401  (module fixture)

CHROMIUM = Path(os.environ.get("HDH_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 120_000
#: where the browser tests keep the screenshots the README shows
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
CELL_CODE = (
    "import pyarrow.parquet as pq; "
    "print(pq.read_metadata('/data/demo-snds/v1/IR_BEN_R.parquet').num_rows)"
)
CSP_MARKERS = ("Content Security Policy", "Refused to", "securitypolicyviolation")


def _ui_problem() -> str | None:
    hub = _problem()
    if hub is not None:
        return hub
    if not CHROMIUM.exists():
        return f"{CHROMIUM} missing: run scripts/setup-env dev as root (installs chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright missing: pip install -e '.[dev]'"
    return None


pytestmark = pytest.mark.skipif(_ui_problem() is not None, reason=str(_ui_problem()))

# Records CSP violations from inside the page, on top of the console messages.
_CSP_LISTENER = """
window.__hdhCsp = [];
document.addEventListener('securitypolicyviolation', (e) => {
  const where = `${e.sourceFile}:${e.lineNumber}`;
  window.__hdhCsp.push(`${e.violatedDirective} blocked ${e.blockedURI} (${where})`);
});
"""


@dataclass
class Lab:
    page: Any
    base: str
    console: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    http_errors: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def csp_violations(self) -> list[str]:
        inpage = self.page.evaluate("window.__hdhCsp || []")
        console = [m for m in self.console if any(k in m for k in CSP_MARKERS)]
        return console + [f"securitypolicyviolation: {v}" for v in inpage]

    def menu_labels(self) -> list[str]:
        menu = self.page.locator(".lm-Menu").last
        menu.wait_for(state="visible")
        labels = menu.locator(".lm-Menu-itemLabel").all_inner_texts()
        return [t.strip() for t in labels if t.strip()]


@pytest.fixture(scope="module")
def lab(up: Up) -> Iterator[Lab]:  # noqa: F811
    from playwright.sync_api import sync_playwright

    lab: Lab | None = None
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            context.add_init_script(_CSP_LISTENER)
            page = context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.set_default_navigation_timeout(TIMEOUT_MS)
            rec = lab = Lab(page, "/user/alice/demo/")
            page.on("console", lambda m: rec.console.append(f"[{m.type}] {m.text}"))
            page.on("pageerror", lambda e: rec.console.append(f"[pageerror] {e}"))
            page.on(
                "requestfailed",
                lambda r: rec.failed.append(f"{r.method} {r.url}: {r.failure}"),
            )
            page.on(
                "response",
                lambda r: (
                    rec.http_errors.append(f"{r.status} {r.request.method} {r.url}")
                    if r.status >= 400
                    else None
                ),
            )
            t0 = time.monotonic()
            page.goto(f"{up.url}/hub/login")
            page.fill("input[name=username]", "alice")
            page.fill("input[name=password]", up.creds["alice"]["password"])
            with page.expect_navigation():
                page.click("#login_submit")
            page.goto(f"{up.url}/hub/spawn/alice/demo")
            # the hub's spawn page sends the browser to the server's root once it is ready
            # ... which redirects to JupyterLab (the sandbox server's default_url)
            page.wait_for_url(re.compile(re.escape(f"{up.url}{lab.base}lab")))
            page.locator("#jp-main-dock-panel").wait_for(state="visible")
            page.locator(".jp-Launcher").first.wait_for(state="visible")
            lab.timings["lab"] = time.monotonic() - t0
            yield lab
        finally:
            if lab is not None:
                print("\n--- browser console ---\n" + "\n".join(lab.console))
                print("--- failed requests ---\n" + "\n".join(lab.failed))
                print("--- HTTP >= 400 ---\n" + "\n".join(lab.http_errors))
                print(f"--- timings --- {lab.timings}")
            browser.close()


@pytest.fixture(autouse=True)
def _screenshot_on_failure(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[None]:
    yield
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed and "lab" in request.fixturenames:
        lab: Lab = request.getfixturevalue("lab")
        shot = tmp_path / "failure.png"
        try:
            lab.page.screenshot(path=str(shot), full_page=True)
            print(f"screenshot: {shot}")
        except Exception as exc:  # the page may be gone; the report matters more
            print(f"no screenshot: {exc}")


def wait_idle(lab: Lab) -> None:
    """Wait until the notebook's kernel is connected and idle (earlier, Shift+Enter moves on
    without executing)."""
    lab.page.locator("#jp-main-statusbar").get_by_text(re.compile(r"\|\s*Idle")).first.wait_for()


def test_notebook_reads_the_mounted_dataset(up: Up, lab: Lab) -> None:  # noqa: F811
    page = lab.page
    t0 = time.monotonic()
    page.locator('.jp-LauncherCard[data-category="Notebook"]').first.click()
    editor = page.locator(".jp-NotebookPanel .jp-Cell .cm-content").first
    editor.wait_for(state="visible")
    wait_idle(lab)
    editor.click()
    page.keyboard.insert_text(CELL_CODE)  # no key events: no bracket auto-closing
    assert editor.inner_text() == CELL_CODE
    page.keyboard.press("Shift+Enter")
    expected = pq.read_metadata(
        up.data_dir / "datasets" / "demo-snds" / "v1" / "IR_BEN_R.parquet"
    ).num_rows
    output = page.locator(".jp-NotebookPanel .jp-Cell").first.locator(".jp-OutputArea-output")
    output.first.wait_for(state="visible")
    assert output.first.inner_text().strip() == str(expected)
    lab.timings["notebook+run"] = time.monotonic() - t0
    # the file exists for the next test's context menu
    page.locator('.jp-DirListing-item[title*="Untitled"]').first.wait_for(state="visible")


def test_locked_plugins_are_absent_from_the_menus(lab: Lab) -> None:
    page = lab.page
    item = page.locator(".jp-DirListing-item", has_text="Untitled.ipynb").first
    item.click(button="right")
    labels = lab.menu_labels()
    print("file browser context menu:", labels)
    assert "Rename" in labels, labels  # the menu really is the file's context menu
    for locked in (
        "Download",
        "Copy Download Link",
        "Open in New Browser Tab",
        "Copy Shareable Link",
    ):
        assert locked not in labels, labels
    page.keyboard.press("Escape")
    page.locator(".lm-Menu").wait_for(state="detached")

    # the notebook is the current widget: the File menu shows its export entries, if any
    page.locator(".jp-NotebookPanel").first.click()
    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^File$")).click()
    labels = lab.menu_labels()
    print("File menu:", labels)
    assert "New" in labels and "Save Notebook" in labels, labels
    for locked in ("Download", "Save and Export Notebook As", "Export Notebook As", "Print"):
        assert not [x for x in labels if x.startswith(locked)], labels
    page.keyboard.press("Escape")
    page.locator(".lm-Menu").wait_for(state="detached")


def test_no_content_security_policy_violation(lab: Lab) -> None:
    violations = lab.csp_violations()
    assert violations == [], "\n".join(violations)


def test_the_page_asks_for_nothing_the_sandbox_refuses(lab: Lab) -> None:
    """No request of JupyterLab's own failed (no disabled route asked: LSP status,
    nbconvert formats) and no uncaught error in the page."""
    assert lab.http_errors == [], lab.http_errors
    assert not [m for m in lab.console if m.startswith("[pageerror]")], lab.console
    # nor does it offer what a sandbox without network cannot do: Jupyter's news
    assert lab.page.get_by_text("official Jupyter news").count() == 0


def test_audit_log_holds_the_cell_code(up: Up, lab: Lab) -> None:  # noqa: F811
    deadline = time.monotonic() + 30
    while True:
        r = up.hdh("audit", "log", "--json", "--oldest-first", "--limit", "1000")
        assert r.returncode == 0, r.stderr
        events = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
        executed = [e for e in events if e["action"] == "code.execute"]
        if any(e["details"].get("code") == CELL_CODE for e in executed):
            break
        assert time.monotonic() < deadline, executed[-3:]
        time.sleep(0.5)
