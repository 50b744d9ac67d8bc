"""``hdh k8s project SLUG``: what an operator pipes into ``kubectl apply -f -``."""

from __future__ import annotations

import kubernetes_validate
import yaml
from click.testing import CliRunner

from jupyterlab_hdh.cli import main
from jupyterlab_hdh.k8s.project import ProjectQuota, project_manifests


def _run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, ["k8s", "project", *args], catch_exceptions=False)


def test_the_printed_objects_are_the_projects_and_valid() -> None:
    r = _run(
        "cohort-a",
        "--cpu",
        "8",
        "--gpus",
        "0",
        "--storage-class",
        "cephfs",
        "--datasets-source",
        '{"csi": {"driver": "cephfs.csi.ceph.com", "volumeHandle": "d"}}',
    )
    assert r.exit_code == 0, r.output
    docs = list(yaml.safe_load_all(r.output))
    expected = project_manifests(
        "cohort-a",
        ProjectQuota(cpu="8", gpus=0, storage_class="cephfs"),
        {"csi": {"driver": "cephfs.csi.ceph.com", "volumeHandle": "d"}},
    )
    assert docs == expected
    for doc in docs:
        kubernetes_validate.validate(doc, "1.33", strict=True)
    pv = next(d for d in docs if d["kind"] == "PersistentVolume")
    assert pv["spec"]["csi"]["driver"] == "cephfs.csi.ceph.com"


def test_bad_input_is_named_and_prints_nothing() -> None:
    for args, says in (
        (("Bad_Slug",), "invalid project slug"),
        (("review",), "reserved"),
        (("p", "--datasets-source", "{nope"), "not JSON"),
        (("p", "--datasets-source", '{"nfs": {}, "csi": {}}'), "one PersistentVolume source"),
        (("p", "--gpus", "-1"), "-1"),
    ):
        r = _run(*args)
        assert r.exit_code == 2, (args, r.output)
        assert says in r.output
        assert "apiVersion" not in r.output


def test_the_probe_job_runs_as_a_sandbox_of_the_project() -> None:
    from tests.k8s.pod_security import restricted_violations

    r = CliRunner().invoke(main, ["k8s", "probe", "cohort-a"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    job = yaml.safe_load(r.output)
    kubernetes_validate.validate(job, "1.33", strict=True)
    assert job["metadata"]["namespace"] == "hdh-p-cohort-a"
    pod = job["spec"]["template"]
    # the sandbox's labels: the project's NetworkPolicies select it exactly as a sandbox
    assert pod["metadata"]["labels"] == {"hdh.io/role": "sandbox", "hdh.io/project": "cohort-a"}
    assert restricted_violations({"spec": pod["spec"]}) == {}
    assert pod["spec"]["containers"][0]["command"][-1] == "jupyterlab_hdh.k8s.probe"


def test_the_guard_will_not_start_without_the_control_plane_and_its_token(
    tmp_path, monkeypatch
) -> None:
    """``hdh k8s guard`` says in one line what it lacks, before touching anything."""
    monkeypatch.delenv("HDH_API_URL", raising=False)
    monkeypatch.delenv("HDH_BRIDGE_TOKEN_FILE", raising=False)
    guard = ["--data-dir", str(tmp_path), "k8s", "guard"]
    r = CliRunner().invoke(main, guard)
    assert r.exit_code != 0
    assert "HDH_API_URL and HDH_BRIDGE_TOKEN_FILE" in str(r.exception or r.output)
    r = CliRunner().invoke(
        main,
        [*guard, "--api-url", "http://hdh-api:8080", "--bridge-token-file", str(tmp_path / "no")],
    )
    assert r.exit_code != 0
    assert "the bridge token cannot be read" in str(r.exception or r.output)
    assert "Traceback" not in r.output
