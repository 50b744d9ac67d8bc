"""The template studies from the command line: ``hdh template list`` and ``hdh template run``
execute a real notebook with papermill on a synthetic extract; the outputs are what the
issue promises, the numbers those of the independent SQL, and a run inside a sandbox opens a
draft export request through the real API bridge."""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from click.testing import CliRunner

from bench.study_sql import connect as sql_connection
from bench.study_sql import headline as sql_headline
from hdh import airlock, templates
from hdh.studies import STUDY_ENGINE
from jupyterlab_hdh.cli import main
from jupyterlab_hdh.data.synth import generate
from tests.egress.test_client import sandbox  # noqa: F401 - the real bridge and API

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tpl") / "data"
    generate(root / "synth" / "v1", 3000, 7, progress=False)
    return root


@pytest.fixture
def env(data_root: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("HDH_DATA_ROOT", str(data_root))
    monkeypatch.setenv("HDH_BRIDGE_SOCKET", str(tmp_path / "no-bridge.sock"))
    return data_root


def hdh(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_templates_live_in_notebooks_templates() -> None:
    assert (ROOT / "notebooks" / "templates" / "mi-pathway.ipynb").resolve() == (
        templates.TEMPLATE_DIR / "mi-pathway.ipynb"
    )
    nb = nbformat.read(templates.TEMPLATE_DIR / "mi-pathway.ipynb", as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    assert any("form.show(" in c.source for c in nb.cells)  # the ipywidgets form


def test_list_names_each_template_with_its_parameters() -> None:
    done = hdh("template", "list")
    assert done.exit_code == 0, done.output
    assert "mi-pathway: Care pathway after myocardial infarction" in done.output
    assert "-p window_days (int, default 90)" in done.output
    listed = json.loads(hdh("template", "list", "--json").output)
    mi = next(t for t in listed if t["name"] == "mi-pathway")
    assert set(mi["parameters"]) == {"dataset", "version", "engine", "window_days"}


def test_run_writes_the_notebook_report_headline_and_checked_tables(
    env: Path, tmp_path: Path
) -> None:
    out = tmp_path / "mi"
    done = hdh(
        "template", "run", "mi-pathway", "--output", str(out), "-p", "dataset", "synth",
        "-p", "engine", "polars",
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert sorted(p.name for p in out.iterdir()) == [
        "headline.json",
        "mi-pathway.ipynb",
        "report.html",
        "within_window.csv",
        "within_window.csv.sdc.json",
    ]
    headline = json.loads((out / "headline.json").read_text())
    assert json.loads(done.stdout) == headline
    want = sql_headline(sql_connection(env / "synth" / "v1"))
    assert headline["n"] == want.pop("n") > 10
    assert headline["counts"] == want
    # the executed notebook carries its outputs; the report shows no code and loads nothing
    nb = nbformat.read(out / "mi-pathway.ipynb", as_version=4)
    assert any(c.get("outputs") for c in nb.cells if c.cell_type == "code")
    html = (out / "report.html").read_text()
    assert "persons with a first myocardial infarction stay" in html
    assert "<script" not in html.lower()
    assert "mi_pathway.read_tables" not in html  # no input cells
    assert "data:image/png;base64," in html  # the figure is embedded
    for attr in ("src=", "href="):
        assert f'{attr}"http' not in html and f"{attr}'http" not in html
    # the table went through the disclosure-aware writer: yes/no persons per class
    rows = (out / "within_window.csv").read_text().splitlines()
    assert rows[0] == "drug_class,no,yes"
    statin = next(r for r in rows if r.startswith("statin,"))
    assert int(statin.split(",")[2]) == headline["counts"]["statin"]
    sidecar = json.loads((out / "within_window.csv.sdc.json").read_text())
    assert sidecar["table"] == "within_window.csv" and sidecar["format"] == "hdh-sdc/1"


def test_breast_screening_runs_with_its_parameters(env: Path, tmp_path: Path) -> None:
    out = tmp_path / "bs"
    done = hdh(
        "template", "run", "breast-screening", "--output", str(out), "-p", "dataset", "synth",
        "-p", "age_min", "55", "-p", "period_start", "2021-01-01",
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    headline = json.loads((out / "headline.json").read_text())
    assert headline["parameters"]["age_min"] == 55
    assert sorted(headline["by_age_band"]) == ["55", "60", "65", "70"]
    assert (out / "coverage_by_area.csv.sdc.json").is_file()
    assert (out / "coverage_by_age_band.csv").read_text().startswith("age_band,no,yes")


def test_parkinson_trajectories_runs_and_counts_first_lines(env: Path, tmp_path: Path) -> None:
    result = templates.run(
        "parkinson-trajectories", tmp_path / "pk", {"dataset": "synth", "engine": "arrow"}
    )
    assert result.headline["n"] == sum(result.headline["counts"].values())
    assert [t.name for t in result.tables] == ["first_line_by_age.csv"]


def test_parameters_change_the_run(env: Path, tmp_path: Path) -> None:
    wide = templates.run("mi-pathway", tmp_path / "a", {"dataset": "synth", "window_days": "365"})
    narrow = templates.run("mi-pathway", tmp_path / "b", {"dataset": "synth", "window_days": "0"})
    assert wide.headline["window_days"] == 365 and narrow.headline["window_days"] == 0
    assert wide.headline["counts"]["any"] > narrow.headline["counts"]["any"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope"], "no template 'nope'; templates: "),
        (["mi-pathway", "-p", "colour", "red"], "has no parameter 'colour' (it has: dataset,"),
        (["mi-pathway", "-p", "window_days", "ninety"], "window_days takes an int (default 90)"),
        (["mi-pathway", "-p", "dataset", "absent"], "template mi-pathway failed in cell"),
    ],
)
def test_a_bad_run_says_why_in_one_line_and_leaves_nothing(
    env: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    out = tmp_path / "out"
    done = CliRunner().invoke(main, ["template", "run", *args, "--output", str(out)])
    assert done.exit_code == 1, done.output
    assert message in done.output
    assert "Traceback" not in done.output
    assert list(tmp_path.iterdir()) == []  # no output folder, no partial one


def test_an_existing_folder_is_refused_and_kept(env: Path, tmp_path: Path) -> None:
    out = tmp_path / "taken"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    done = hdh("template", "run", "mi-pathway", "--output", str(out), "-p", "dataset", "synth")
    assert done.exit_code == 1
    assert "already exists and is not an empty folder" in done.output
    assert [p.name for p in out.iterdir()] == ["mine.txt"]


@pytest.fixture
def in_sandbox(
    sandbox: Any,  # noqa: F811 - the fixture imported above
    data_root: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[Any, Path]]:
    """The run's environment inside alice's sandbox of ``study``: the bridge socket and the
    workspace (the host folder the control plane snapshots from)."""
    air, hub, workspace = sandbox
    monkeypatch.setenv("HDH_DATA_ROOT", str(data_root))
    monkeypatch.setenv("HDH_BRIDGE_SOCKET", air.socket_path)
    monkeypatch.setenv("HDH_WORKSPACE", str(workspace))
    monkeypatch.setattr(airlock, "_default", None)
    yield air, workspace


def test_in_a_sandbox_a_run_opens_a_draft_request_with_its_tables(
    in_sandbox: tuple[Any, Path],
) -> None:
    air, workspace = in_sandbox
    done = hdh(
        "template", "run", "mi-pathway", "--output", str(workspace / "mi"), "-p", "dataset", "synth"
    )
    assert done.exit_code == 0, done.output
    assert "opened draft export request #" in done.output
    request_id = int(done.output.split("opened draft export request #")[1].split()[0])
    view = air.request(request_id).view
    assert view["state"] == "draft"
    assert view["title"].startswith("Care pathway after myocardial infarction (")
    files = {f["path"]: f["role"] for f in view["files"]}
    assert files == {
        "mi/within_window.csv": "output",
        "mi/within_window.csv.sdc.json": "supporting",
        "mi/mi-pathway.ipynb": "code",
    }
    # submitted, the table gets its disclosure results (its evidence from the sidecar)
    submitted = air.request(request_id).submit().view
    assert submitted["state"] != "draft"
    table = next(f for f in submitted["files"] if f["path"] == "mi/within_window.csv")
    assert table["check_status"] in ("pass", "fail", "review")
    assert table["check_report"]["summary"]


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """150 patients: the cohorts of most templates are empty or nearly so."""
    root = tmp_path_factory.mktemp("tiny") / "data"
    generate(root / "synth" / "v1", 150, 3, progress=False)
    return root


@pytest.mark.parametrize("name", [t.name for t in templates.templates()])
def test_every_template_reads_on_the_studies_engine_by_default(name: str) -> None:
    default = templates.get(name).parameters["engine"].default  # as written in the cell
    assert ast.literal_eval(default) == STUDY_ENGINE


# None: the template's default engine (DuckDB); Arrow: eager tables, the narwhals fallbacks
@pytest.mark.parametrize("engine", [None, "arrow"])
@pytest.mark.parametrize("name", [t.name for t in templates.templates()])
def test_every_template_runs_on_a_tiny_extract(
    name: str, engine: str | None, tiny_root: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # what a demo user meets: nearly empty cohorts give a report saying so, never a traceback
    monkeypatch.setenv("HDH_DATA_ROOT", str(tiny_root))
    monkeypatch.setenv("HDH_BRIDGE_SOCKET", str(tmp_path / "no-bridge.sock"))
    params = {"dataset": "synth"} | ({"engine": engine} if engine else {})
    result = templates.run(name, tmp_path / "out", params)
    assert result.headline and result.report.is_file()
    assert "Traceback" not in result.report.read_text()


def test_the_demo_of_hdh_up_gives_every_template_a_result(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """What a newcomer runs first: each template on the extract `hdh up` makes by default
    finds its cohort, and the heart-failure model has outcomes to fit."""
    from jupyterlab_hdh.cli.hub import DEMO_PATIENTS, DEMO_SEED

    root = tmp_path_factory.mktemp("demo") / "data"
    generate(root / "synth" / "v1", DEMO_PATIENTS, DEMO_SEED, progress=False)
    monkeypatch.setenv("HDH_DATA_ROOT", str(root))
    monkeypatch.setenv("HDH_BRIDGE_SOCKET", str(tmp_path / "no-bridge.sock"))
    headline = {
        t.name: templates.run(t.name, tmp_path / t.name, {"dataset": "synth"}).headline
        for t in templates.templates()
    }
    assert headline["mi-pathway"]["n"] >= 20
    assert headline["breast-screening"]["screened"] >= 100
    assert headline["parkinson-trajectories"]["n"] >= 10
    assert sum(d["reports"] for d in headline["adr-reporting"]["drugs"].values()) >= 10
    hf = headline["hf-readmission"]
    assert hf["readmitted"] >= 1 and "kind" in hf["model"], hf
