"""A reviewer's workspace under a root hub: its own host ids, no data group, no dataset.

The spec and command line (pure), then, as root, the refusal of ids a host account holds.
The whole sandbox runs for real in ``tests/hub/test_review_workspace.py``.
"""

from __future__ import annotations

import os

import pytest

from jupyterlab_hdh.sandbox import HostIdentity, Sandbox, SandboxConfigError, bwrap_argv
from jupyterlab_hdh.sandbox.spec import REVIEW_ID_BASE, group_text, passwd_text
from tests.sandbox.conftest import Site, make_site


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    return make_site(tmp_path_factory.mktemp("review-site"))


def test_a_reviewer_runs_as_their_own_ids_without_the_data_group(site: Site) -> None:
    host = HostIdentity.for_reviewer(3)
    assert (host.uid, host.gid, host.data_gid) == (REVIEW_ID_BASE + 3, REVIEW_ID_BASE + 3, None)
    assert host.groups == (REVIEW_ID_BASE + 3,)
    spec = site.spec("review", "bob", [], host=host)
    argv = bwrap_argv(spec)
    tail = argv[argv.index("--") + 1 :]
    drop = tail[: tail.index("--")]
    assert drop[:4] == ["/usr/bin/setpriv", "--reuid=300003", "--regid=300003", "--clear-groups"]
    assert not any(a.startswith("--groups") for a in drop)
    assert passwd_text(spec).startswith("jovyan:x:300003:300003:")
    assert "hdh-data" not in group_text(spec)
    assert not any(a.startswith("/data/") for a in argv)


def test_a_sandbox_without_the_data_group_mounts_no_dataset(site: Site) -> None:
    with pytest.raises(SandboxConfigError, match="without the data group mounts no dataset"):
        site.spec("review", "bob", [("ds_a", "v1")], host=HostIdentity.for_reviewer(3))
    with pytest.raises(SandboxConfigError, match="invalid user id"):
        HostIdentity.for_reviewer(0)
    with pytest.raises(SandboxConfigError, match="never root"):
        site.spec("review", "bob", [], host=HostIdentity(0, 0, None))


@pytest.mark.skipif(os.geteuid() != 0, reason="host identities are a root supervisor's")
def test_reviewer_ids_a_host_account_holds_are_refused(site: Site) -> None:
    spec = site.spec("review", "bob", [], host=HostIdentity(65534, 65534, None))
    with pytest.raises(SandboxConfigError, match="uid 65534 is user nobody.*review_id_base"):
        Sandbox(spec).start()
    assert not spec.runtime_dir.exists()


def test_project_and_review_id_ranges_never_meet() -> None:
    """A reviewer's workspace must never run as a project's uid nor hold the data group."""
    from jupyterlab_hdh.sandbox.spec import HOST_ID_BASE, ID_RANGE, check_id_bases

    check_id_bases(HOST_ID_BASE, REVIEW_ID_BASE)  # the defaults
    for review_base in (HOST_ID_BASE, HOST_ID_BASE + 5, HOST_ID_BASE + ID_RANGE - 1):
        with pytest.raises(SandboxConfigError, match="overlap"):
            check_id_bases(HOST_ID_BASE, review_base)
    # each base holds ids 1 .. ID_RANGE - 1: the largest project uid stays below the review base
    assert HostIdentity.for_project(ID_RANGE - 1).uid < REVIEW_ID_BASE
    for bad in (0, ID_RANGE):
        with pytest.raises(SandboxConfigError, match="invalid project id"):
            HostIdentity.for_project(bad)
        with pytest.raises(SandboxConfigError, match="invalid user id"):
            HostIdentity.for_reviewer(bad)
