"""The airlock for real, in ``hdh up``: a researcher submits from a notebook in her sandbox,
two reviewers vote and decide in their browsers (logged in through the hub), the requester
downloads the released file from the control plane.

One ``hdh up`` for this module (the embedded-hub tests' fixture and helpers).
"""

from __future__ import annotations

import json
import re

import httpx
import pytest

from tests.hub.test_embedded_hub import (  # noqa: F401 - ``up`` and ``pytestmark`` are used by pytest
    Up,
    _lab_session,
    execute,
    follow,
    login,
    pytestmark,
    spawn,
    up,
    wait_ready,
)

TABLE = "region,count\nnorth,120\nsouth,140\n"
SUBMIT = f"""
import json
from hdh import airlock as egress
with open('/workspace/admissions.csv', 'w') as f:
    f.write({TABLE!r})
request = egress.new_request('Admissions by region')
request.add('admissions.csv', role='output', context={{'population': 'demo patients'}},
            controls='all counts above 100')
request.submit()
print(json.dumps({{'id': request.id, 'state': request.state}}))
"""


def _form_token(page: str) -> str:
    [token] = set(re.findall(r'name="_form" value="([0-9a-f]{64})"', page))
    return token


def _act(c: httpx.Client, url: str, **form: str) -> None:
    page = c.get(url)
    assert page.status_code == 200, page.text[:500]
    r = c.post(url, data={"_form": _form_token(page.text), **form}, follow_redirects=False)
    assert r.status_code == 303, r.text[:2000]


@pytest.mark.slow  # one `hdh up` (about 30 s) and a sandbox
def test_submit_from_a_notebook_review_in_the_browser_download_released(up: Up) -> None:  # noqa: F811
    base = "/user/alice/demo/"
    with up.api("alice") as api:
        r = spawn(api, "alice", "demo")
        assert r.status_code in (201, 202, 400), r.text  # 400: already running
        wait_ready(api, "alice", "demo")
    browser = _lab_session(up, "alice", base)
    try:
        out, _ = execute(up, browser, base, SUBMIT)
    finally:
        browser.close()
    submitted = json.loads(out.strip().splitlines()[-1])
    assert submitted["state"] == "submitted", out
    rid = submitted["id"]
    url = f"{up.url}/services/hdh/ui/egress/requests/{rid}"

    for reviewer in ("bob", "carol"):  # a reviewer and a committee member, neither in "demo"
        c = login(up, reviewer)
        page = follow(c, url)  # through the hub's OAuth to the control plane's page
        assert page.status_code == 200, page.text[:500]
        assert "default-src 'none'" in page.headers["content-security-policy"]
        assert "<script" not in page.text and "north" in page.text
        failing = "Vote on <strong>admissions.csv</strong> (checks: fail)" in page.text
        form = {"action": "vote", "path": "admissions.csv", "decision": "approve"}
        if failing:
            form["exception_reason"] = "every count is above 100"
        _act(c, url, **form)
        if reviewer == "carol":
            _act(c, url, action="approve")
            _act(c, url, action="release")
        c.close()

    alice = login(up, "alice")
    page = follow(alice, url)
    assert page.status_code == 200
    [link] = re.findall(r'href="([^"]*/released/[^"]+)"', page.text)
    got = alice.get(f"{up.url}{link}")
    assert got.status_code == 200 and got.content == TABLE.encode()
    assert got.headers["content-disposition"].startswith("attachment;")
    alice.close()
    with up.api("alice") as api:  # stop the sandbox now: the hub then stops quickly
        api.delete("/users/alice/servers/demo")
    # and the audit log holds each step of it
    actions = [e["action"] for e in up.audit() if e["target"] == f"egress:{rid}"]
    for step in ("egress.create", "egress.submitted", "egress.vote", "egress.approved",
                 "egress.released"):  # fmt: skip
        assert step in actions, actions
