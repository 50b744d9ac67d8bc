"""Issue 8: a REAL sandbox's kernel writes into Jupyter's own folders, and nothing comes of it.

The kernel tries to write into every Jupyter config, data, kernelspec and
lab-extension folder the server searches (``jupyter_core.paths``,
``KernelSpecManager.kernel_dirs``, which includes ``$IPYTHONDIR/kernels``), to
move IPython's kernels folder away, and to plant data where JupyterLab keeps
user settings; the guard (real, in front of the sandbox's socket) then serves
none of it: no kernelspec file, no lab-extension file, no raw settings over
their cap, no binary file under a notebook name. JupyterLab's own writes
(settings, workspaces, notebooks, whose notary lives in HOME) still work
through the guard.
"""

from __future__ import annotations

import base64
import json
import os
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from jupyterlab_hdh.guard.policy import GuardConfig
from jupyterlab_hdh.sandbox import Sandbox, SandboxClient
from jupyterlab_hdh.sandbox.spec import (
    IPYTHON_DIR,
    JUPYTER_CONFIG_DIR,
    JUPYTER_DATA_DIR,
    LAB_USER_SETTINGS_DIR,
)
from tests.guard.conftest import GuardServer, run_guard
from tests.sandbox.conftest import Site

pytestmark = pytest.mark.timeout(180)

BASE = "/user/alice/proj1/"


@pytest.fixture(scope="module")
def sandbox(bwrap_ok: None, site: Site) -> Iterator[Sandbox]:
    """Project ``proj1`` / alice: the project the guard test harness resolves."""
    (site.workspaces / "proj1").mkdir(mode=0o700, exist_ok=True)
    sb = Sandbox(site.spec("proj1", "alice", [("ds_a", "v1")]), start_timeout=60)
    sb.start()
    try:
        yield sb
    finally:
        sb.stop()


@pytest.fixture(scope="module")
def guard(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GuardServer]:
    yield from run_guard(str(sandbox.socket_path), tmp_path_factory.mktemp("guard"), GuardConfig())


def run(client: SandboxClient, kernel: str, code: str) -> Any:
    r = client.execute(code, kernel_id=kernel)
    assert r.error is None, (r.error, r.stderr)
    return json.loads(r.stdout.strip().splitlines()[-1])


#: Kernel code: try to create each file below each Jupyter folder the server would read.
PLANT = r"""
import json, os
from jupyter_core.paths import (
    jupyter_config_dir, jupyter_config_path, jupyter_data_dir, jupyter_path,
)
from jupyter_client.kernelspec import KernelSpecManager

targets = {}
for d in jupyter_config_path() + [jupyter_config_dir()]:
    for name in ("jupyter_server_config.py", "jupyter_server_config.json",
                 "jupyter_config.py", "ipython_kernel_config.py",
                 "labconfig/page_config.json", "custom/custom.css",
                 "jupyter_server_config.d/evil.json", "nbconfig/notebook.json"):
        targets[os.path.join(d, name)] = b"c.ServerApp.root_dir = '/'\n"
for d in jupyter_path() + [jupyter_data_dir()]:
    targets[os.path.join(d, "probe.txt")] = b"x"
for d in jupyter_path("kernels") + KernelSpecManager().kernel_dirs:
    targets[os.path.join(d, "evil", "kernel.json")] = json.dumps(
        {"argv": ["/bin/sh", "-c", "echo {connection_file}"], "display_name": "evil",
         "language": "sh"}).encode()
    targets[os.path.join(d, "evil", "logo-64x64.png")] = b"\x89PNG" + b"T" * 64
    targets[os.path.join(d, "evil", "data.tar")] = b"TABLE-BYTES" * 100
    targets[os.path.join(d, "python3", "data.tar")] = b"TABLE-BYTES" * 100
for d in jupyter_path("labextensions"):
    targets[os.path.join(d, "evil", "package.json")] = b'{"name": "evil"}'
    targets[os.path.join(d, "evil", "static", "remoteEntry.js")] = b"TABLE-BYTES"
    targets[os.path.join(d, "evil", "static", "data.tar")] = b"TABLE-BYTES"
for d in jupyter_path("lab", "settings") + jupyter_path("lab", "schemas"):
    targets[os.path.join(d, "overrides.json")] = b"{}"

written, refused = [], {}
for path, data in targets.items():
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        written.append(path)
    except OSError as e:
        refused[path] = e.errno
print(json.dumps({"written": written, "refused": refused,
                  "config_path": jupyter_config_path(), "jupyter_path": jupyter_path(),
                  "kernel_dirs": KernelSpecManager().kernel_dirs}))
"""


def test_kernel_cannot_write_any_jupyter_config_or_data_folder(
    client: SandboxClient, kernel: str
) -> None:
    out = run(client, kernel, PLANT)
    assert out["written"] == [], out["written"]
    assert out["refused"], out
    assert JUPYTER_CONFIG_DIR in out["config_path"]
    assert JUPYTER_DATA_DIR in out["jupyter_path"]
    # nothing of HOME (a writable tmpfs) is searched any more
    searched = out["config_path"] + out["jupyter_path"] + out["kernel_dirs"]
    assert not [p for p in searched if p.startswith("/home/")], searched
    # nor the sandbox's scratch or workspace (the interpreter's own read-only bind may sit
    # under /tmp on the host, as in a CI clone there: its folders are read-only inside)
    bound = tuple(os.path.join(p, "") for p in {sys.prefix, sys.base_prefix})
    scratch = [p for p in searched if p.startswith(("/tmp", "/workspace"))]
    assert not [p for p in scratch if not p.startswith(bound)], searched


def test_the_server_environment_names_no_writable_search_path(
    client: SandboxClient, kernel: str
) -> None:
    env = run(client, kernel, "import json, os; print(json.dumps(dict(os.environ)))")
    for name in ("JUPYTER_PATH", "JUPYTER_CONFIG_PATH", "JUPYTER_PLATFORM_DIRS", "XDG_DATA_HOME"):
        assert name not in env, name
    assert env["PYTHONNOUSERSITE"] == "1"  # no ~/.local/{share,etc}/jupyter either


def test_guard_serves_nothing_planted(
    client: SandboxClient, kernel: str, guard: GuardServer
) -> None:
    run(client, kernel, PLANT)
    with guard.client() as c:
        specs = c.get(BASE + "api/kernelspecs")
        assert specs.status_code == 200 and "evil" not in specs.json()["kernelspecs"]
        for rest in (
            "kernelspecs/evil/data.tar",
            "kernelspecs/evil/kernel.json",
            "kernelspecs/python3/data.tar",
            "kernelspecs/evil/logo-64x64.png",
            "lab/extensions/evil/static/remoteEntry.js",
            "lab/extensions/evil/static/data.tar",
            "lab/extensions/evil/package.json",
            "custom/custom.css",
        ):
            r = c.get(BASE + rest)
            assert r.status_code == 404, (rest, r.status_code)
            assert b"TABLE-BYTES" not in r.content
        # the packaged logo is still there
        logo = c.get(BASE + "kernelspecs/python3/logo-64x64.png")
        assert logo.status_code == 200 and logo.headers["content-type"] == "image/png"


def test_ipython_kernels_folder_cannot_be_replaced(client: SandboxClient, kernel: str) -> None:
    """jupyter_client adds ``$IPYTHONDIR/kernels`` to the server's kernelspec search path."""
    code = (
        "import json, os\n"
        "from IPython.paths import get_ipython_dir\n"
        "d = get_ipython_dir(); k = os.path.join(d, 'kernels'); out = {'dir': d}\n"
        "for src, dst in ((k, k + '.old'), (d, d + '.old')):\n"
        "    try:\n"
        "        os.rename(src, dst); out[src] = 'renamed'\n"
        "    except OSError as e:\n"
        "        out[src] = e.errno\n"
        "try:\n"
        "    os.rmdir(k); out['rmdir'] = 'removed'\n"
        "except OSError as e:\n"
        "    out['rmdir'] = e.errno\n"
        "print(json.dumps(out))\n"
    )
    out = run(client, kernel, code)
    assert out["dir"] == IPYTHON_DIR
    assert "renamed" not in out.values() and out["rmdir"] != "removed", out


def _big_settings_code(payload: str) -> str:
    # where JupyterLab keeps user settings now, and where it kept them before (both tried)
    return (
        "import json, os\n"
        "from jupyter_core.paths import jupyter_config_dir\n"
        f"dirs = [{LAB_USER_SETTINGS_DIR!r}, os.path.join(jupyter_config_dir(), 'lab', "
        "'user-settings')]\n"
        "ok = []\n"
        "for d in dirs:\n"
        "    p = os.path.join(d, '@jupyterlab', 'apputils-extension')\n"
        "    try:\n"
        "        os.makedirs(p, exist_ok=True)\n"
        "        with open(os.path.join(p, 'themes.jupyterlab-settings'), 'w') as f:\n"
        f"            f.write('{{\\n// ' + {payload!r} + '\\n}}\\n')\n"
        "        ok.append(d)\n"
        "    except OSError:\n"
        "        pass\n"
        "print(json.dumps(ok))\n"
    )


def test_raw_settings_written_by_the_kernel_are_capped(
    client: SandboxClient, kernel: str, guard: GuardServer
) -> None:
    payload = base64.b64encode(b"TABLE-BYTES" * 120_000).decode()  # ~1.7 MB of "settings"
    assert run(client, kernel, _big_settings_code(payload)) == [LAB_USER_SETTINGS_DIR]
    with guard.client() as c:
        for rest in ("lab/api/settings/@jupyterlab/apputils-extension:themes", "lab/api/settings"):
            r = c.get(BASE + rest)
            assert r.status_code == 403, (rest, r.status_code)
            assert payload[-64:].encode() not in r.content
    run(client, kernel, _big_settings_code(""))  # back to an empty, valid file


def _xsrf(c: httpx.Client) -> None:
    assert c.get(BASE + "lab").status_code == 200
    c.headers["X-XSRFToken"] = c.cookies["_xsrf"]


def test_jupyterlab_still_saves_settings_workspaces_and_notebooks(guard: GuardServer) -> None:
    with guard.client() as c:
        _xsrf(c)
        sid = "lab/api/settings/@jupyterlab/apputils-extension:themes"
        raw = '{"theme": "JupyterLab Dark"}'
        assert c.put(BASE + sid, json={"raw": raw}).status_code == 204
        r = c.get(BASE + sid)
        assert r.status_code == 200 and r.json()["raw"] == raw
        ws = {"data": {"layout-restorer:data": {}}, "metadata": {"id": "default"}}
        assert c.put(BASE + "lab/api/workspaces/default", json=ws).status_code == 204
        assert c.get(BASE + "lab/api/workspaces/default").status_code == 200
        nb = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
        body = {"type": "notebook", "format": "json", "content": nb}
        assert c.put(BASE + "api/contents/saved.ipynb", json=body).status_code in (200, 201)
        r = c.get(BASE + "api/contents/saved.ipynb?content=1")
        assert r.status_code == 200 and r.json()["format"] == "json"


def test_dataset_copied_under_a_notebook_name_is_not_served(
    client: SandboxClient, kernel: str, guard: GuardServer
) -> None:
    run(
        client,
        kernel,
        "import json, shutil\n"
        "shutil.copy('/data/ds_a/v1/part-0.parquet', '/workspace/x.ipynb')\n"
        "print(json.dumps(True))\n",
    )
    with guard.client() as c:
        for query in ("content=1&type=file", "content=1", "content=1&type=file&format=text"):
            r = c.get(BASE + "api/contents/x.ipynb?" + query)
            assert r.status_code in (400, 403), (query, r.status_code)
            assert b"PAR1" not in r.content and b"UEFSM" not in r.content  # raw or base64
        r = c.get(BASE + "api/contents/x.ipynb?content=1&type=file")
        assert r.status_code == 403 and "binary" in r.json()["message"]
