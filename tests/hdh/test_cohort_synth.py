"""``hdh.cohort`` on a small synthetic extract of ``hdh data synth``, on every engine.

The generator plants the SNDS dirty cases and counts them in ``extract.json``
(``dirty_cases``); each filter must remove exactly those, and every engine must give the
same rows. Counts are also checked against independent DuckDB SQL over the Parquet files
and episodes against a plain-Python merge of the same stays.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import duckdb
import narwhals as nw
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hdh import cohort
from jupyterlab_hdh.data.synth import MANIFEST_NAME, generate

from .test_cohort import ENGINES, expected_library, library, native, rows

engines = pytest.mark.parametrize("engine", ENGINES)


@pytest.fixture(scope="module")
def extract(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """400 patients (seed 7 plants every dirty case at least once), tables as PyArrow."""
    out = tmp_path_factory.mktemp("cohort") / "extract"
    manifest = generate(out, 400, 7, progress=False)
    tables: dict[str, Any] = {"dir": out, "dirty": manifest["dirty_cases"]}
    for name in ("ER_PRS_F", "ER_PHA_F", "ER_CAM_F", "IR_PHA_R", "IR_BEN_R"):
        tables[name] = pq.read_table(out / f"{name}.parquet")
    for part in "ABC":
        tables[part] = pa.concat_tables(
            pq.read_table(p) for p in sorted(out.glob(f"T_MCO??{part}.parquet"))
        )
    assert json.loads((out / MANIFEST_NAME).read_text())["dirty_cases"] == tables["dirty"]
    return tables


def count(frame: Any) -> int:
    nwf = nw.from_native(frame).select(nw.len())
    return int((nwf.collect() if isinstance(nwf, nw.LazyFrame) else nwf).item(0, 0))


def sql(folder: Path, query: str) -> Any:
    con = duckdb.connect()
    for part in "BC":
        con.execute(
            f"CREATE VIEW MCO_{part} AS SELECT * FROM read_parquet('{folder}/T_MCO*{part}.parquet')"
        )
    return con.execute(query).fetchall()


def clean_stays(x: dict[str, Any], engine: str) -> Any:
    c = cohort.drop_failed_linkage(native(x["C"], engine))
    b = cohort.drop_error_stays(native(x["B"], engine))
    return cohort.drop_duplicate_stays(cohort.mco_stays(b, c, [*cohort.MCO_STAY_KEY, *C_COLS]))


C_COLS = ("NIR_ANO_17", "EXE_SOI_DTD", "EXE_SOI_DTF")


def clean_lines(x: dict[str, Any], engine: str, detail: str = "ER_PHA_F") -> Any:
    lines = cohort.dcir_lines(native(x["ER_PRS_F"], engine), native(x[detail], engine))
    return cohort.drop_regularisations(cohort.drop_information_lines(lines))


# --------------------------------------------------------------------------- DCIR


@engines
def test_dcir_filters_remove_the_planted_lines(extract: dict[str, Any], engine: str) -> None:
    dirty = extract["dirty"]
    assert dirty["for_information_rows_dpn_qlf_71"] > 0 and dirty["negative_regularisations"] > 0
    prs = extract["ER_PRS_F"]
    kept = cohort.drop_information_lines(native(prs, engine))
    assert library(kept) == expected_library(engine)
    assert count(kept) == prs.num_rows - dirty["for_information_rows_dpn_qlf_71"]
    assert 71 not in {r[0] for r in rows(kept, ["DPN_QLF"])}

    lines = cohort.dcir_lines(native(prs, engine), native(extract["ER_PHA_F"], engine))
    informative = cohort.drop_information_lines(lines)
    clean = cohort.drop_regularisations(informative)
    # each regularisation goes, with the dispensing it cancels; no negative line is left
    assert count(clean) == count(informative) - 2 * dirty["negative_regularisations"]
    assert min(r[0] for r in rows(clean, ["PHA_ACT_QSN"])) > 0
    # netting keeps the boxes dispensed per person, day and drug
    key = ["BEN_NIR_PSA", "EXE_SOI_DTD", "PHA_PRS_C13"]

    def boxes(frame: Any) -> dict[tuple[Any, ...], int]:
        totals: dict[tuple[Any, ...], int] = defaultdict(int)
        for *k, q in rows(frame, [*key, "PHA_ACT_QSN"]):
            totals[tuple(k)] += q
        return {k: v for k, v in totals.items() if v}

    assert boxes(clean) == boxes(informative)
    # the same lines on every engine (the reference: DuckDB on the same frames)
    reference = clean_lines(extract, "duckdb")
    assert rows(clean, ["DCT_ORD_NUM"]) == rows(reference, ["DCT_ORD_NUM"])
    only_negatives = cohort.drop_regularisations(informative, net=False)
    assert count(only_negatives) == count(informative) - dirty["negative_regularisations"]


# --------------------------------------------------------------------------- PMSI


@engines
def test_pmsi_filters_remove_the_planted_stays(extract: dict[str, Any], engine: str) -> None:
    dirty = extract["dirty"]
    assert dirty["error_stays_grg_ghm_90"] > 0 and dirty["stays_bad_linkage_return_codes"] > 0
    assert dirty["stays_placeholder_nir_ano_17"] > 0
    b, c = extract["B"], extract["C"]
    clean_b = cohort.drop_error_stays(native(b, engine))
    assert count(clean_b) == b.num_rows - dirty["error_stays_grg_ghm_90"]
    assert not any(g.startswith("90") for (g,) in rows(clean_b, ["GRG_GHM"]))
    clean_c = cohort.drop_failed_linkage(native(c, engine))
    assert count(clean_c) == c.num_rows - dirty["stays_bad_linkage_return_codes"]
    patients = {p for (p,) in rows(clean_c, ["NIR_ANO_17"])}
    assert not patients & {"xxxxxxxxxxxxxxxxx", "XXXXXXXXXXXXXXXXS"}
    # a stay read twice (e.g. from two yearly files) is kept once
    doubled = pa.concat_tables([b, b.slice(0, 50)])
    assert count(cohort.drop_duplicate_stays(native(doubled, engine))) == b.num_rows
    # the clean stays are those of the SQL every SNDS study starts with
    stays = clean_stays(extract, engine)
    expected = sql(
        extract["dir"],
        """SELECT count(*) FROM MCO_B b JOIN MCO_C c USING (ETA_NUM, RSA_NUM)
           WHERE b.GRG_GHM NOT LIKE '90%' AND NOT c.NIR_RET AND c.NAI_RET = '0'
             AND NOT c.SEX_RET AND c.SEJ_RET
             AND c.NIR_ANO_17 NOT IN ('xxxxxxxxxxxxxxxxx', 'XXXXXXXXXXXXXXXXS')""",
    )
    assert count(stays) == expected[0][0] > 0


@engines
def test_mi_cohort_and_its_attrition_match_sql(extract: dict[str, Any], engine: str) -> None:
    flow = cohort.Attrition(person="NIR_ANO_17")
    flow.step("MCO stays", native(extract["C"], engine))
    stays = flow.step("clean stays", clean_stays(extract, engine))
    mi = flow.step(
        "I21/I22 principal diagnosis", cohort.match_codes(stays, "DGN_PAL", ["I21", "I22"])
    )
    expected = sql(
        extract["dir"],
        """SELECT count(DISTINCT c.NIR_ANO_17) FROM MCO_B b JOIN MCO_C c USING (ETA_NUM, RSA_NUM)
           WHERE b.GRG_GHM NOT LIKE '90%' AND NOT c.NIR_RET AND c.NAI_RET = '0'
             AND NOT c.SEX_RET AND c.SEJ_RET
             AND (b.DGN_PAL LIKE 'I21%' OR b.DGN_PAL LIKE 'I22%')""",
    )[0][0]
    assert flow.steps[-1].remaining == expected > 0
    assert count(mi) > expected  # several stays per patient (transfers, readmissions)
    table = flow.to_native()
    assert library(table) == expected_library(engine)
    assert [r[1] for r in rows(table)] == [s.label for s in flow.steps]


# --------------------------------------------------------------------------- episodes


def python_episodes(stays: pa.Table, gap: int) -> list[tuple[Any, ...]]:
    """The merge done by hand: sort each patient's stays, extend while adm <= max end + gap."""
    by_patient: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in stays.to_pylist():
        by_patient[r["NIR_ANO_17"]].append(r)
    out = []
    for patient, items in by_patient.items():
        items.sort(key=lambda r: (r["EXE_SOI_DTD"], r["EXE_SOI_DTF"], r["ETA_NUM"], r["RSA_NUM"]))
        current: list[Any] | None = None
        number = 0
        for r in items:
            if current is not None and r["EXE_SOI_DTD"] <= current[3] + dt.timedelta(days=gap):
                current[3] = max(current[3], r["EXE_SOI_DTF"])
                current[5] += 1
                continue
            if current is not None:
                out.append(tuple(current))
            number += 1
            current = [patient, number, r["EXE_SOI_DTD"], r["EXE_SOI_DTF"], r["DGN_PAL"], 1]
        assert current is not None
        out.append(tuple(current))
    return sorted(out, key=lambda r: tuple((v is not None, str(v)) for v in r))


@engines
def test_episodes_on_the_extract_match_a_plain_merge(extract: dict[str, Any], engine: str) -> None:
    stays = clean_stays(extract, engine)
    reference_stays = nw.from_native(clean_stays(extract, "pyarrow")).to_arrow()
    for gap in (0, 1):
        episodes = cohort.merge_episodes(stays, gap_days=gap)
        assert library(episodes) == expected_library(engine)
        assert rows(episodes) == python_episodes(reference_stays, gap)
    # the generator's MI transfers (second stay admitted on the discharge day) are merged
    merged_mi = [r for r in rows(episodes) if r[4][:3] in ("I21", "I22") and r[5] >= 2]
    assert merged_mi
    transfers = cohort.merge_episodes(stays, entry_modes=["6", "7"])
    assert count(transfers) >= count(episodes)


# --------------------------------------------------------------------------- events


@engines
def test_event_table_on_the_extract(extract: dict[str, Any], engine: str) -> None:
    stays = clean_stays(extract, engine)
    dispensings = clean_lines(extract, engine)
    acts = clean_lines(extract, engine, "ER_CAM_F")
    events = cohort.event_table(
        cohort.stay_events(stays),
        cohort.act_events(acts),
        cohort.dispensing_events(dispensings, native(extract["IR_PHA_R"], engine)),
    )
    assert library(events) == expected_library(engine)
    by_category: dict[str, int] = defaultdict(int)
    for (category,) in rows(events, ["category"]):
        by_category[category] += 1
    assert by_category == {
        "stay": count(stays),
        "act": count(acts),
        "dispensing": count(dispensings),  # every CIP13 of the extract is in IR_PHA_R
    }
    got = rows(events)
    reference = rows(
        cohort.event_table(
            cohort.stay_events(clean_stays(extract, "duckdb")),
            cohort.act_events(clean_lines(extract, "duckdb", "ER_CAM_F")),
            cohort.dispensing_events(
                clean_lines(extract, "duckdb"), native(extract["IR_PHA_R"], "duckdb")
            ),
        )
    )
    assert got == reference
    # secondary prevention after MI: beta-blockers (C07) dispensed, 30 days each
    bb = [r for r in got if r[1] == "dispensing" and r[2].startswith("C07")]
    assert bb and all(r[6] - r[5] == dt.timedelta(days=30) and r[3] > 0 for r in bb)
