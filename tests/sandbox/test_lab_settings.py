"""JupyterLab remembers a person's settings across restarts of their sandbox: the language
they chose (issue 12: "the user's choice remembered"), the theme, the layout. They live in
``<runtime>/lab`` of that project and person, not in HOME (a tmpfs gone at each stop), and
another member of the same project has their own."""

from __future__ import annotations

import json
import os

from jupyterlab_hdh.sandbox import Sandbox
from tests.sandbox.conftest import Site

TRANSLATION = "lab/api/settings/@jupyterlab/translation-extension:plugin"


def _locale(sb: Sandbox) -> str | None:
    r = sb.client(timeout=30).request("GET", TRANSLATION)
    assert r.status == 200, r.body[:200]
    return dict(r.json()).get("settings", {}).get("locale")


def test_the_chosen_language_survives_a_restart_and_stays_the_persons(
    bwrap_ok: None, site: Site
) -> None:
    spec = site.spec("p1", "lena", [])
    with Sandbox(spec, start_timeout=60) as sb:
        assert _locale(sb) in (None, "default", "en")
        r = sb.client(timeout=30).request(
            "PUT", TRANSLATION, body={"raw": json.dumps({"locale": "fr_FR"})}
        )
        assert r.status == 204, r.body[:200]
    with Sandbox(spec, start_timeout=60) as sb:
        assert _locale(sb) == "fr_FR"
    saved = spec.host_lab_dir / "user-settings" / "@jupyterlab" / "translation-extension"
    assert (saved / "plugin.jupyterlab-settings").is_file()
    if spec.host is not None:  # under a root hub: the project's uid owns it, 0700 at the top
        st = os.stat(spec.host_lab_dir)
        assert (st.st_uid, st.st_mode & 0o777) == (spec.host.uid, 0o700)
    with Sandbox(site.spec("p1", "omar", []), start_timeout=60) as other:
        assert _locale(other) != "fr_FR"  # same project, another person: their own settings
