"""A template run inside a real bubblewrap sandbox, from its terminal's ``hdh`` command:
papermill starts its kernel under the sandbox's confinement, reads the mounted ``/data``
and writes into the workspace."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from jupyterlab_hdh.data.synth import generate
from jupyterlab_hdh.sandbox import Sandbox
from jupyterlab_hdh.sandbox.client import SandboxClient
from tests.sandbox.conftest import Site, bwrap_problem, make_site


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SandboxClient, str, Site]]:
    if bwrap_problem() is not None:
        pytest.skip(f"no sandbox on this machine: {bwrap_problem()}")
    site = make_site(tmp_path_factory.mktemp("site"))
    generate(site.dataset("synth", "v1"), 3000, 7, progress=False)
    with Sandbox(site.spec("p1", "alice", [("synth", "v1")]), start_timeout=60) as sb:
        client = sb.client(timeout=300)
        kid = client.start_kernel()
        try:
            yield client, kid, site
        finally:
            client.shutdown_kernel(kid)


def test_hdh_template_run_in_a_sandbox_terminal(
    sandbox: tuple[SandboxClient, str, Site],
) -> None:
    client, kid, site = sandbox
    r = client.execute(
        "import json, subprocess\n"
        "done = subprocess.run(['hdh', 'template', 'run', 'mi-pathway', '--output',"
        " '/workspace/mi', '-p', 'dataset', 'synth', '--no-export'],"
        " capture_output=True, text=True, cwd='/workspace')\n"
        "print(json.dumps({'rc': done.returncode, 'out': done.stdout,"
        " 'err': done.stderr[-3000:]}))",
        kernel_id=kid,
    )
    assert r.error is None, (r.error, r.stderr)
    done = json.loads(r.stdout.strip().splitlines()[-1])
    assert done["rc"] == 0, done["err"]
    headline = json.loads(done["out"])
    assert headline["n"] > 10
    out = site.workspaces / "p1" / "mi"  # the host side of /workspace/mi
    assert json.loads((out / "headline.json").read_text()) == headline
    assert (out / "report.html").is_file() and (out / "within_window.csv.sdc.json").is_file()
