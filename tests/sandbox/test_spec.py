"""Unit tests of the sandbox specification and its bubblewrap command line (no process started)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from jupyterlab_hdh.sandbox import (
    HostIdentity,
    SandboxConfigError,
    SandboxSpec,
    bwrap_argv,
    server_argv,
)
from jupyterlab_hdh.sandbox.spec import NAMESPACES, group_text, passwd_text, sandbox_env
from tests.sandbox.conftest import Site, make_site

BIND_OPTS = ("--bind", "--ro-bind", "--dev-bind", "--bind-try", "--ro-bind-try", "--dev-bind-try")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    return make_site(tmp_path_factory.mktemp("spec-site"))


def binds(argv: list[str]) -> list[tuple[str, str, str]]:
    """(option, source, target) of every bind, before the ``--`` separator."""
    end = argv.index("--")
    return [(argv[i], argv[i + 1], argv[i + 2]) for i in range(end) if argv[i] in BIND_OPTS]


def under(path: str, root: str) -> bool:
    return Path(path).is_relative_to(root)


def test_namespaces_and_hardening_flags(site: Site) -> None:
    """Unprivileged supervisor: a user namespace where the sandbox is uid 1000."""
    argv = bwrap_argv(site.spec("p1", "alice", [("ds_a", "v1")], host=None))
    head = argv[: argv.index("--")]
    for flag in ("--unshare-all", "--die-with-parent", "--new-session", "--clearenv"):
        assert flag in head
    assert "--share-net" not in head
    assert head[head.index("--uid") + 1] == "1000"
    assert head[head.index("--gid") + 1] == "1000"
    assert head[head.index("--cap-drop") + 1] == "ALL"
    assert "--cap-add" not in head
    assert tuple(head[head.index("--proc") : head.index("--proc") + 2]) == ("--proc", "/proc")
    assert argv[argv.index("--") + 1] == sys.prefix + "/bin/python"  # no setpriv


def test_root_supervisor_runs_the_sandbox_as_the_projects_uid(site: Site) -> None:
    """No user namespace (it would map the sandbox to root): setpriv becomes the project's uid."""
    host = HostIdentity.for_project(7)
    assert (host.uid, host.gid, host.data_gid) == (200007, 200007, 200000)
    spec = site.spec("p1", "alice", [("ds_a", "v1")], host=host)
    argv = bwrap_argv(spec)
    head = argv[: argv.index("--")]
    assert not {"--unshare-all", "--unshare-user", "--unshare-user-try", "--uid"} & set(head)
    for flag in (*NAMESPACES, "--die-with-parent", "--new-session", "--clearenv"):
        assert flag in head
    assert head[head.index("--cap-drop") + 1] == "ALL"
    added = [head[i + 1] for i, a in enumerate(head) if a == "--cap-add"]
    assert sorted(added) == ["CAP_DAC_OVERRIDE", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID"]
    tail = argv[argv.index("--") + 1 :]
    drop = tail[: tail.index("--")]
    assert drop == [
        "/usr/bin/setpriv",
        "--reuid=200007",
        "--regid=200007",
        "--groups=200000",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--no-new-privs",
    ]
    assert tail[tail.index("--") + 1 :] == server_argv(spec)
    assert passwd_text(spec).startswith("jovyan:x:200007:200007:")
    assert "hdh-data:x:200000:jovyan" in group_text(spec)


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        ((0, 200001, 200000), "uid"),
        ((200001, 0, 200000), "gid"),
        ((200001, 200001, 0), "data gid"),
        ((200001, 200001, 200001), "must differ"),
        ((2**31, 200001, 200000), "uid"),
    ],
)
def test_host_identity_is_never_root_and_never_the_data_group(
    site: Site, ids: tuple[int, int, int], message: str
) -> None:
    with pytest.raises(SandboxConfigError, match=message):
        site.spec("p1", "alice", [], host=HostIdentity(*ids))
    with pytest.raises(SandboxConfigError, match="project id"):
        HostIdentity.for_project(0)


def test_every_folder_above_a_bind_is_walkable_by_any_uid(site: Site) -> None:
    """bwrap, as root, would create them 0700: a sandbox of its own uid could not reach /usr's
    neighbours such as the interpreter under /root/.pyenv or /etc/passwd."""
    argv = bwrap_argv(
        site.spec("p1", "alice", [("ds_a", "v1")], host=HostIdentity(200001, 200001, 200000))
    )
    made = {argv[i + 3] for i, a in enumerate(argv) if a == "--perms" and argv[i + 1] == "0755"}
    targets = [dst for _, _, dst in binds(argv)]
    for t in targets:
        for parent in Path(t).parents:
            p = str(parent)
            if p != "/" and not any(Path(p).is_relative_to(b) for b in targets):
                assert p in made, (t, p)
    assert {"/etc", "/data", "/data/ds_a"} <= made
    first_bind = min(i for i, a in enumerate(argv) if a in ("--ro-bind", "--bind"))
    assert all(argv.index(p) < first_bind for p in made)  # created before anything is bound


def test_never_binds_run_home_root_or_the_data_dir(site: Site) -> None:
    spec = site.spec("p1", "alice", [("ds_a", "v1"), ("ds_b", "v1")])
    argv = bwrap_argv(spec)
    forbidden = ["/run", "/var/run", "/root", "/home", str(site.hdh), str(site.keys), "/"]
    for _, src, dst in binds(argv):
        for f in forbidden:
            # a bind may sit below a forbidden root (a dataset version in the data
            # dir, the interpreter under /root/.pyenv) but never expose it whole
            assert not Path(f).is_relative_to(src), (src, f)
        assert not under(dst, "/run") and not under(dst, "/var/run")
        assert not under(src, "/run") and not under(src, "/var/run")
    # what of the data dir is bound: exactly the permitted versions, the socket folder,
    # the API bridge's folder, the person's JupyterLab settings and the synthetic etc files
    in_hdh = sorted(src for _, src, _ in binds(argv) if under(src, str(site.hdh)))
    assert in_hdh == sorted(
        [
            str(site.dataset("ds_a", "v1")),
            str(site.dataset("ds_b", "v1")),
            str(spec.host_sock_dir),
            str(spec.host_bridge_dir),
            str(spec.host_lab_dir),
            str(spec.host_etc_dir / "passwd"),
            str(spec.host_etc_dir / "group"),
            str(spec.host_etc_dir / "hosts"),
            str(spec.host_etc_dir / "nsswitch.conf"),
            str(spec.host_etc_dir / "page_config.json"),
        ]
    )
    # other workspaces are never bound
    assert not any(under(src, str(site.workspaces / "p2")) for _, src, _ in binds(argv))


def test_datasets_read_only_at_data_dataset_version(site: Site) -> None:
    argv = bwrap_argv(site.spec("p1", "alice", [("ds_a", "v1"), ("ds_b", "v1")]))
    b = binds(argv)
    assert ("--ro-bind", str(site.dataset("ds_a", "v1")), "/data/ds_a/v1") in b
    assert ("--ro-bind", str(site.dataset("ds_b", "v1")), "/data/ds_b/v1") in b
    assert not any(dst.startswith("/data") for opt, _, dst in b if opt != "--ro-bind")
    assert not any(src == str(site.dataset("ds_a", "v2")) for _, src, _ in b)


def test_the_permits_linked_tables_read_only_at_data_linkage(site: Site) -> None:
    linked = site.datasets / ".linkage" / "permit-3"
    linked.mkdir(parents=True, exist_ok=True)
    spec = site.spec("p1", "alice", [("ds_a", "v1")], linkage=linked)
    spec.check_paths()
    b = binds(bwrap_argv(spec))
    assert ("--ro-bind", str(linked), "/data/linkage") in b
    assert [src for _, src, _ in b if ".linkage" in src] == [str(linked)]  # that permit's only
    without = binds(bwrap_argv(site.spec("p2", "bob", [("ds_a", "v1")])))
    assert not any(dst.startswith("/data/linkage") for _, _, dst in without)
    with pytest.raises(SandboxConfigError, match="hides /data/linkage"):
        site.spec("p1", "alice", [("linkage", "v1")], linkage=linked)
    with pytest.raises(SandboxConfigError, match="linked tables are not available"):
        missing = linked.parent / "permit-9"
        site.spec("p1", "alice", [("ds_a", "v1")], linkage=missing).check_paths()


def test_only_workspace_socket_and_lab_settings_are_writable(site: Site) -> None:
    spec = site.spec("p1", "alice", [("ds_a", "v1")])
    rw = [(src, dst) for opt, src, dst in binds(bwrap_argv(spec)) if opt != "--ro-bind"]
    assert rw == [
        (str(spec.workspace), "/workspace"),
        (str(spec.host_sock_dir), "/sock"),
        (str(spec.runtime_dir / "lab"), "/opt/jupyter/lab"),  # this person's, in this project
    ]
    # the API bridge's folder: bound read-only (connectable socket, nothing replaceable)
    assert ("--ro-bind", str(spec.host_bridge_dir), "/bridge") in binds(bwrap_argv(spec))


def test_tmpfs_before_binds_and_root_read_only(site: Site) -> None:
    argv = bwrap_argv(site.spec("p1", "alice", [("ds_a", "v1")]))
    first_bind = min(i for i, a in enumerate(argv) if a in BIND_OPTS)
    assert argv.index("--tmpfs") < first_bind
    assert argv[argv.index("--remount-ro") + 1] == "/"


def test_server_command_socket_no_token_and_hardening(site: Site) -> None:
    spec = site.spec("p1", "alice", [], host=None)
    cmd = server_argv(spec)
    argv = bwrap_argv(spec)
    assert argv[argv.index("--") + 1 :] == cmd
    assert "--ServerApp.sock=/sock/jupyter.sock" in cmd
    assert "--ServerApp.sock_mode=0600" in cmd
    assert "--ServerApp.base_url=/user/alice/p1/" in cmd
    assert "--ServerApp.root_dir=/workspace" in cmd
    assert "--ContentsManager.files_handler_class=None" in cmd
    assert "--FileContentsManager.delete_to_trash=False" in cmd
    assert "--LabApp.extension_manager=readonly" in cmd
    assert "--ServerApp.jpserver_extensions=jupyter_lsp=False" in cmd
    assert not any(
        a.startswith(("--ServerApp.port", "--ServerApp.ip", "--port", "--ip")) for a in cmd
    )
    assert not any("disable_check_xsrf" in a for a in cmd)


def test_environment_is_an_allow_list(site: Site) -> None:
    spec = site.spec("p1", "alice", [], extra_env={"OMP_NUM_THREADS": "2", "HDH_API": "x"})
    env = sandbox_env(spec)
    assert env["HOME"] == "/home/jovyan" and env["HDH_PROJECT"] == "p1"
    assert env["OMP_NUM_THREADS"] == "2"
    for bad in ("LD_PRELOAD", "PYTHONPATH", "JUPYTER_CONFIG_DIR", "HDH_PROJECT", "PATH"):
        with pytest.raises(SandboxConfigError, match="not allowed"):
            site.spec("p1", "alice", [], extra_env={bad: "x"})


@pytest.mark.parametrize("project", ["../p", "P1", "a--b", "", "a/b", "-a", "a b"])
def test_bad_project_slug(site: Site, project: str) -> None:
    with pytest.raises(SandboxConfigError, match="project"):
        site.spec(project, "alice", [])


@pytest.mark.parametrize("user", ["../u", "", "a/b", "a\nb", ".u", "x" * 65])
def test_bad_user(site: Site, user: str) -> None:
    with pytest.raises(SandboxConfigError, match="user"):
        site.spec("p1", user, [])


@pytest.mark.parametrize("name", ["..", ".", "a/b", "", ".hidden", "a\0b"])
def test_bad_dataset_or_version(tmp_path: Path, name: str) -> None:
    for mount in ((name, "v1", tmp_path), ("ds", name, tmp_path)):
        with pytest.raises(SandboxConfigError, match="invalid"):
            SandboxSpec("p1", "alice", tmp_path / "ws", tmp_path / "rt", mounts=(mount,))


def test_bad_base_url(tmp_path: Path) -> None:
    for url in ("user/x/", "/user/x", "/a/../b/", "/a b/"):
        with pytest.raises(SandboxConfigError, match="base_url"):
            SandboxSpec("p1", "alice", tmp_path / "ws", tmp_path / "rt", base_url=url)


def test_check_paths_refuses_missing_and_protected(site: Site, tmp_path: Path) -> None:
    rt = site.hdh / "sandboxes" / "p1--alice"
    ws = site.workspaces / "p1"
    with pytest.raises(SandboxConfigError, match="not available"):
        SandboxSpec(
            "p1", "alice", ws, rt, mounts=(("ds_a", "v9", site.dataset("ds_a", "v9")),)
        ).check_paths()
    (site.keys / "sub").mkdir(exist_ok=True)
    bad_paths = [Path("/"), site.hdh, site.datasets.parent, Path("/run"), Path("/home")]
    bad_paths += [
        site.keys,
        site.keys / "sub",
        Path("/run/lock"),
        Path("/proc/1"),
        Path("/dev/shm"),
    ]
    for bad in bad_paths:
        spec = SandboxSpec(
            "p1",
            "alice",
            ws,
            rt,
            mounts=(("x", "v1", bad),),
            protected=(site.hdh,),
            secrets=(site.keys,),
        )
        with pytest.raises(SandboxConfigError, match="protected"):
            spec.check_paths()
    # a workspace containing the runtime dir (lock, socket) is refused too
    with pytest.raises(SandboxConfigError, match="overlaps"):
        SandboxSpec("p1", "alice", site.hdh / "sandboxes", rt).check_paths()
    # a dataset path given through a symlink is bound by its real path
    link = tmp_path / "link"
    link.symlink_to(site.dataset("ds_a", "v1"))
    spec = SandboxSpec("p1", "alice", ws, rt, mounts=(("ds_a", "v1", link),))
    spec.check_paths()
    assert ("--ro-bind", str(site.dataset("ds_a", "v1")), "/data/ds_a/v1") in binds(
        bwrap_argv(spec)
    )


def test_r_sees_its_configuration_read_only_and_loads_the_hdh_helper(site: Site) -> None:
    """The R kernel needs /etc/R (R's etc/ links there) and Debian's alternatives (R's BLAS
    and LAPACK are links through /etc/alternatives); nothing else of /etc is bound whole."""
    spec = site.spec("p1", "alice", [])
    bound = {dst: (op, src) for op, src, dst in binds(bwrap_argv(spec))}
    for folder in ("/etc/R", "/etc/alternatives"):
        if Path(folder).is_dir():
            assert bound[folder] == ("--ro-bind", folder)
    assert "/etc" not in bound
    env = sandbox_env(spec)
    helper = Path(env["R_PROFILE_USER"])
    assert helper.name == "hdh.R" and helper.parent.parent.name == "hdh"
    assert any(
        helper.is_relative_to(src) for op, src, _ in binds(bwrap_argv(spec)) if op == "--ro-bind"
    )
    assert env["RETICULATE_PYTHON"] == spec.python
