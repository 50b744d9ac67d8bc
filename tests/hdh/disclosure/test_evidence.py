"""Per-cell evidence: our .sdc.json sidecar and ACRO's results.json, read by the gate."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hdh.disclosure import (
    CheckConfig,
    CheckError,
    CheckInput,
    check_files,
    crosstab,
    write_table,
)


def frame(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 2000
    df = pd.DataFrame(
        {
            "region": rng.choice(["Nord", "Sud", "Est"], n, p=[0.5, 0.494, 0.006]),
            "sex": rng.choice(["F", "M"], n),
            "cost": rng.lognormal(5, 0.5, n),
        }
    )
    return df


def _gate(table: Path, sidecar: Path, config: CheckConfig | None = None) -> object:
    (report, side) = check_files(
        [CheckInput(table, table.name, "output"), CheckInput(sidecar, sidecar.name, "supporting")],
        config=config,
    )
    assert side.status == "pass"
    return report


def test_sidecar_turns_a_magnitude_table_into_checked_cells(tmp_path: Path) -> None:
    df = frame()
    df.loc[(df.region == "Nord") & (df.sex == "F"), "cost"] *= 0.001
    df.loc[df.index[(df.region == "Nord") & (df.sex == "F")][0], "cost"] = 1e7  # dominant
    twe = crosstab(df, "region", "sex", values="cost", aggfunc="mean")
    sidecar = write_table(twe, tmp_path / "cost.csv")
    assert sidecar.name == "cost.csv.sdc.json"
    report = _gate(tmp_path / "cost.csv", sidecar)
    assert report.evidence == "sdc-sidecar"  # type: ignore[attr-defined]
    cells = {(f.rule, f.location["labels"]["region"], f.location["column"]) for f in report.flags}  # type: ignore[attr-defined]
    assert ("nk-rule", "Nord", "F") in cells and ("p-ratio", "Nord", "F") in cells
    assert not any(rule == "no-evidence" for rule, _, _ in cells)
    # Est is small (about 12 of 2000 rows, split in two): threshold on its cells
    counts = twe.evidence.count
    small = {
        (str(twe.evidence.row_labels[i][0]), str(twe.evidence.col_labels[j][0]))
        for i, j in np.argwhere(counts < 10)
    }
    assert small
    assert {(r, c) for rule, r, c in cells if rule == "threshold"} == small


def test_safe_magnitude_table_with_sidecar_passes(tmp_path: Path) -> None:
    df = frame()
    df = df[df.region != "Est"]
    twe = crosstab(df, "region", "sex", values="cost", aggfunc="sum")
    report = _gate(tmp_path / "t.csv", write_table(twe, tmp_path / "t.csv"))
    assert report.status == "pass", report.flags  # type: ignore[attr-defined]


def test_gate_uses_its_own_thresholds_not_the_sidecars(tmp_path: Path) -> None:
    df = frame()
    df = df[df.region != "Est"]
    lax = CheckConfig(safe_threshold=1)
    twe = crosstab(df, "region", "sex", aggfunc="count", config=lax)
    sidecar = write_table(twe, tmp_path / "t.csv", config=lax)
    strict = CheckConfig(safe_threshold=10_000)
    report = _gate(tmp_path / "t.csv", sidecar, strict)
    assert report.status == "fail"  # type: ignore[attr-defined]
    assert {f.rule for f in report.flags} == {"threshold"}  # type: ignore[attr-defined]


def test_table_edited_after_its_evidence_fails(tmp_path: Path) -> None:
    twe = crosstab(frame(), "region", "sex", values="cost", aggfunc="mean")
    sidecar = write_table(twe, tmp_path / "t.csv")
    text = (tmp_path / "t.csv").read_text()
    (tmp_path / "t.csv").write_text(text.replace("Nord", "North"))
    report = _gate(tmp_path / "t.csv", sidecar)
    assert [f.rule for f in report.flags] == ["evidence-mismatch"]  # type: ignore[attr-defined]


def test_forged_sidecar_whose_numbers_disagree_with_the_table_fails(tmp_path: Path) -> None:
    twe = crosstab(frame(), "region", "sex", aggfunc="count")
    sidecar = write_table(twe, tmp_path / "t.csv")
    doc = json.loads(sidecar.read_text())
    doc["cells"]["count"] = [[c * 100 for c in row] for row in doc["cells"]["count"]]
    sidecar.write_text(json.dumps(doc))
    report = _gate(tmp_path / "t.csv", sidecar)
    assert [f.rule for f in report.flags] == ["evidence-mismatch"]  # type: ignore[attr-defined]


def test_crosstab_rejects_bad_arguments() -> None:
    df = frame()
    with pytest.raises(CheckError, match="not in the frame"):
        crosstab(df, "nope", "sex")
    with pytest.raises(CheckError, match="aggfunc"):
        crosstab(df, "region", "sex", values="cost", aggfunc="var")
    with pytest.raises(CheckError, match="give values"):
        crosstab(df, "region", "sex", aggfunc="mean")


@pytest.fixture
def acro_outputs(tmp_path: Path) -> Path:
    acro = pytest.importorskip("acro")
    logging.getLogger("acro").setLevel(logging.ERROR)
    df = frame(3)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        session = acro.ACRO(suppress=False)
        session.crosstab(df.region, df.sex)
        safe = df[df.region != "Est"]
        session.crosstab(safe.region, safe.sex)
        session.finalise(str(tmp_path / "acro"), "json")
    finally:
        os.chdir(cwd)
    return tmp_path / "acro"


def _acro_inputs(out: Path, names: list[str]) -> list[CheckInput]:
    inputs = [CheckInput(out / n, f"acro/{n}", "output") for n in names]
    inputs.append(CheckInput(out / "results.json", "acro/results.json", "supporting"))
    for n in names:
        inputs.append(
            CheckInput(out / "checksums" / f"{n}.txt", f"acro/checksums/{n}.txt", "supporting")
        )
    return inputs


def test_acro_results_drive_the_verdict(acro_outputs: Path) -> None:
    reports = check_files(_acro_inputs(acro_outputs, ["output_0_0.csv", "output_1_0.csv"]))
    fail, ok = reports[0], reports[1]
    assert fail.evidence == "acro" and ok.evidence == "acro"
    assert fail.status == "fail" and ok.status == "pass", (fail.flags, ok.flags)
    results = json.loads((acro_outputs / "results.json").read_text())
    acro_cells = results["results"]["output_0"]["files"][0]["sdc"]["cells"]
    flagged = sorted(f.location["acro_cell"] for f in fail.flags)
    assert flagged == sorted(acro_cells["MinimumThresholdCheck"])
    assert all(f.location["labels"]["region"] == "Est" for f in fail.flags)


def test_acro_output_changed_after_finalise_fails(acro_outputs: Path) -> None:
    p = acro_outputs / "output_1_0.csv"
    p.write_text(p.read_text().replace("Nord", "North"))
    (report, *_) = check_files(_acro_inputs(acro_outputs, ["output_1_0.csv"]))
    assert report.status == "fail"
    assert [f.rule for f in report.flags] == ["evidence-mismatch"]


def test_acro_output_without_results_is_checked_as_a_plain_table(
    acro_outputs: Path, tmp_path: Path
) -> None:
    lone = tmp_path / "lone.csv"
    shutil.copy(acro_outputs / "output_0_0.csv", lone)
    (report,) = check_files([CheckInput(lone, "lone.csv", "output")])
    assert report.evidence == "" and report.status == "fail"
    assert {f.rule for f in report.flags} == {"threshold"}


def test_std_table_is_checked_on_degrees_of_freedom(tmp_path: Path) -> None:
    df = pd.DataFrame(
        {
            "g": ["a"] * 11 + ["b"] * 10,
            "h": ["x"] * 21,
            "v": np.arange(21, dtype=float),
        }
    )
    twe = crosstab(df, "g", "h", values="v", aggfunc="std")
    np.testing.assert_allclose(twe.table.to_numpy().ravel(), df.groupby("g")["v"].std().to_numpy())
    verdicts = twe.evidence.verdicts(CheckConfig())
    assert verdicts["dof"].ravel().tolist() == [False, True]  # 10 and 9 degrees of freedom
    report = _gate(tmp_path / "s.csv", write_table(twe, tmp_path / "s.csv"))
    (flag,) = report.flags  # type: ignore[attr-defined]
    assert flag.rule == "dof" and flag.location["labels"] == {"g": "b"}
