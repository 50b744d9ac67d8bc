"""Tests of the synthetic SNDS generator (``jupyterlab_hdh.data.synth``).

Schema validity (exact Arrow schemas, frictionless validation against the
shipped Table Schemas), determinism, raw vs pseudonymised identifiers, joins,
the signal of each of the five template studies, the dirty cases and the
"no care after death" rule. Extracts are generated once per module.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jupyterlab_hdh.data.snds_schemas import (
    arrow_schema,
    identifier_fields,
    load_schema,
    primary_key,
    raw_schema,
)
from jupyterlab_hdh.data.synth import MANIFEST_NAME, generate, table_names
from jupyterlab_hdh.data.synth.identifiers import FAILED_LINKAGE_NIR_ANO_17, Pseudonymiser

SEED = 20240611
DCIR_KEYS = (
    "DCT_ORD_NUM, FLX_DIS_DTD, FLX_EMT_NUM, FLX_EMT_ORD, FLX_EMT_TYP, "
    "FLX_TRT_DTD, ORG_CLE_NUM, PRS_ORD_NUM, REM_TYP_AFF"
)
YEARS = (2019, 2023)


@pytest.fixture(scope="module")
def extract(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "extract"
    generate(out, 2000, SEED, chunk_size=700, progress=False)
    return out


@pytest.fixture(scope="module")
def small_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("pair")
    generate(base / "pseudo", 300, SEED, chunk_size=120, progress=False)
    generate(base / "raw", 300, SEED, raw=True, chunk_size=120, progress=False)
    return base / "pseudo", base / "raw"


def connect(folder: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for name in ("IR_BEN_R", "IR_PHA_R", "ER_PRS_F", "ER_PHA_F", "ER_CAM_F", "IR_IMB_R"):
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM '{folder}/{name}.parquet'")
    for name in ("KI_CCI_R", "HDH_PV_CAS", "HDH_DEV_TLM"):
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM '{folder}/{name}.parquet'")
    for part in "ABCD":
        con.execute(
            f"CREATE VIEW MCO_{part} AS SELECT * FROM read_parquet('{folder}/T_MCO*{part}.parquet')"
        )
    con.execute(
        f"""CREATE VIEW dispensings AS
        SELECT b.BEN_IDT_ANO AS pid, p.EXE_SOI_DTD AS d, r.PHA_ATC_C07 AS atc,
               f.PHA_ACT_QSN AS boxes
        FROM ER_PRS_F p JOIN ER_PHA_F f USING ({DCIR_KEYS})
        JOIN IR_PHA_R r ON r.PHA_CIP_C13 = f.PHA_PRS_C13
        JOIN IR_BEN_R b ON b.BEN_NIR_PSA = p.BEN_NIR_PSA AND b.BEN_RNG_GEM = p.BEN_RNG_GEM
        WHERE p.DPN_QLF <> 71 AND f.PHA_ACT_QSN > 0"""
    )
    con.execute(
        """CREATE VIEW stays AS
        SELECT DISTINCT i.BEN_IDT_ANO AS pid, b.ETA_NUM, b.RSA_NUM, c.EXE_SOI_DTD::DATE AS adm,
               c.EXE_SOI_DTF::DATE AS dis, b.DGN_PAL, b.GRG_GHM, b.ENT_MOD, b.SOR_MOD
        FROM MCO_B b JOIN MCO_C c USING (ETA_NUM, RSA_NUM)
        JOIN IR_BEN_R i ON i.BEN_NIR_PSA = c.NIR_ANO_17
        WHERE b.GRG_GHM NOT LIKE '90%' AND NOT c.NIR_RET AND c.NAI_RET = '0' AND NOT c.SEX_RET
          AND c.SEJ_RET -- boolean return codes hold what the schema reads '0' (OK) as"""
    )
    return con


def one(con: duckdb.DuckDBPyConnection, sql: str):
    return con.execute(sql).fetchone()[0]


def sha256_tree(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


# --------------------------------------------------------------------------- API and files


def test_refuses_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "something.txt").write_text("x")
    with pytest.raises(ValueError, match="not empty"):
        generate(tmp_path, 10, 1, progress=False)
    with pytest.raises(ValueError):
        generate(tmp_path / "new", 0, 1, progress=False)


def test_manifest_lists_every_table(extract: Path) -> None:
    manifest = json.loads((extract / MANIFEST_NAME).read_text())
    assert manifest["identifiers"] == "pseudonymised"
    assert manifest["generator_version"]
    assert not list(extract.glob(".*.tmp"))
    assert manifest["seed"] == SEED and manifest["patients"] == 2000
    assert manifest["years"] == list(range(YEARS[0], YEARS[1] + 1))
    assert list(manifest["tables"]) == table_names(*YEARS)
    for name, info in manifest["tables"].items():
        assert pq.read_metadata(extract / info["file"]).num_rows == info["rows"], name
    assert manifest["tables"]["HDH_DEV_TLM"]["rows"] > 0
    assert manifest["tables"]["HDH_PV_CAS"]["rows"] > 0


@pytest.mark.parametrize("mode", ["pseudo", "raw"])
def test_columns_and_types_are_the_registered_schemas(small_pair, mode: str) -> None:
    folder = small_pair[0] if mode == "pseudo" else small_pair[1]
    for name in table_names(*YEARS):
        descriptor = raw_schema(name) if mode == "raw" else load_schema(name)
        expected = arrow_schema(descriptor)
        # Parquet has no second-resolution timestamps: timestamp[s] is stored (and read) as [ms]
        expected = pa.schema(
            [
                pa.field(f.name, pa.timestamp("ms")) if f.type == pa.timestamp("s") else f
                for f in expected
            ]
        )
        assert pq.read_schema(folder / f"{name}.parquet").remove_metadata() == expected, name


STANDARD_CONSTRAINTS = frozenset(
    ("required", "unique", "minLength", "maxLength", "minimum", "maximum", "pattern", "enum")
)


def _csv_cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return str(value)


def _validate_with_frictionless(parquet: Path, descriptor: dict, tmp: Path) -> list:
    from frictionless import Resource, Schema

    table = pq.read_table(parquet)
    path = tmp / f"{parquet.stem}.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(table.column_names)
        columns = [c.to_pylist() for c in table.columns]
        for row in zip(*columns, strict=True):
            writer.writerow([_csv_cell(v) for v in row])
    # keep the standard Table Schema properties (upstream puts notes inside constraints)
    fields = []
    for f in descriptor["fields"]:
        constraints = {
            k: v for k, v in f.get("constraints", {}).items() if k in STANDARD_CONSTRAINTS
        }
        fields.append({"name": f["name"], "type": f["type"], "constraints": constraints})
    descriptor = {"fields": fields, "primaryKey": descriptor.get("primaryKey", [])}
    descriptor["missingValues"] = [""]
    resource = Resource(
        path=path.name, basepath=str(tmp), schema=Schema.from_descriptor(descriptor)
    )
    report = resource.validate()
    return report.flatten(["rowNumber", "fieldName", "type", "note"])


@pytest.mark.parametrize("mode", ["pseudo", "raw"])
def test_validates_against_table_schemas_with_frictionless(
    small_pair, mode: str, tmp_path: Path
) -> None:
    folder = small_pair[0] if mode == "pseudo" else small_pair[1]
    failures = {}
    for name in table_names(*YEARS):
        descriptor = raw_schema(name) if mode == "raw" else load_schema(name)
        errors = _validate_with_frictionless(folder / f"{name}.parquet", descriptor, tmp_path)
        if errors:
            failures[name] = errors[:5]
    assert not failures


def test_frictionless_check_catches_a_violation(small_pair, tmp_path: Path) -> None:
    """Guard against a vacuous validation: tighten a constraint and expect errors."""
    descriptor = load_schema(f"T_MCO{YEARS[0] % 100}B")
    for field in descriptor["fields"]:
        if field["name"] == "AGE_ANN":
            field["constraints"]["maximum"] = 2
    path = small_pair[0] / f"T_MCO{YEARS[0] % 100}B.parquet"
    errors = _validate_with_frictionless(path, descriptor, tmp_path)
    assert errors and all(e[1] == "AGE_ANN" for e in errors)


def test_raw_manifest_says_raw(small_pair) -> None:
    manifest = json.loads((small_pair[1] / MANIFEST_NAME).read_text())
    assert manifest["identifiers"] == "raw"


def test_primary_keys_are_unique(extract: Path) -> None:
    con = connect(extract)
    for name in table_names(*YEARS):
        pk = primary_key(load_schema(name))
        if not pk:
            continue
        cols = ", ".join(pk)
        dup = one(
            con,
            f"SELECT count(*) FROM (SELECT {cols} FROM '{extract}/{name}.parquet' "
            f"GROUP BY {cols} HAVING count(*) > 1)",
        )
        assert dup == 0, name


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path) -> None:
    for folder in ("a", "b"):
        generate(tmp_path / folder, 250, 99, chunk_size=100, progress=False)
    generate(tmp_path / "c", 250, 100, chunk_size=100, progress=False)
    assert sha256_tree(tmp_path / "a") == sha256_tree(tmp_path / "b")
    a, c = sha256_tree(tmp_path / "a"), sha256_tree(tmp_path / "c")
    assert a["ER_PRS_F.parquet"] != c["ER_PRS_F.parquet"]
    assert a["IR_BEN_R.parquet"] != c["IR_BEN_R.parquet"]
    assert a["IR_PHA_R.parquet"] == c["IR_PHA_R.parquet"]  # the reference does not depend on it


# --------------------------------------------------------------------------- identifiers


def _nir_key_ok(nir: str) -> bool:
    return len(nir) == 15 and nir.isdigit() and int(nir[13:]) == 97 - int(nir[:13]) % 97


def test_raw_identifiers_are_direct_and_pseudonyms_match(small_pair) -> None:
    pseudo, raw = small_pair
    raw_ben = pq.read_table(raw / "IR_BEN_R.parquet").to_pylist()
    pseudo_ben = pq.read_table(pseudo / "IR_BEN_R.parquet").to_pylist()
    assert len(raw_ben) == len(pseudo_ben)
    assert "BEN_NAI_DTE" not in pseudo_ben[0]
    pseudonymiser = Pseudonymiser(SEED)
    for r, p in zip(raw_ben, pseudo_ben, strict=True):
        assert _nir_key_ok(r["BEN_NIR_ANO"]) and r["BEN_IDT_ANO"] == r["BEN_NIR_ANO"]
        birth = r["BEN_NAI_DTE"]
        assert r["BEN_NIR_PSA"] == (f"{r['ASS_NIR_ANO']}{birth:%Y%m%d}{r['BEN_SEX_COD']}"), (
            "BEN_NIR_PSA source = policy-holder NIR + birth date + sex"
        )
        assert r["BEN_NAI_ANN"] == birth.year
        for col in identifier_fields("IR_BEN_R"):
            assert len(p[col]) >= 17 and p[col] == pseudonymiser.one(r[col]), col
        others = {k: v for k, v in r.items() if k not in identifier_fields("IR_BEN_R")}
        others.pop("BEN_NAI_DTE")
        assert others == {k: v for k, v in p.items() if k in others}
    # every identifier column of every table maps through the same pseudonymisation
    for name in table_names(*YEARS):
        for col in identifier_fields(name):
            if col not in pq.read_schema(raw / f"{name}.parquet").names:
                continue
            raw_values = pq.read_table(raw / f"{name}.parquet", columns=[col])[col].to_pylist()
            pseudo_values = pq.read_table(pseudo / f"{name}.parquet", columns=[col])[
                col
            ].to_pylist()
            expected = [
                v if v is None or v in FAILED_LINKAGE_NIR_ANO_17 else pseudonymiser.one(v)
                for v in raw_values
            ]
            assert pseudo_values == expected, (name, col)


def test_joins_work(extract: Path) -> None:
    con = connect(extract)
    for detail in ("ER_PHA_F", "ER_CAM_F"):
        orphans = one(
            con,
            f"SELECT count(*) FROM {detail} d ANTI JOIN ER_PRS_F p USING ({DCIR_KEYS})",
        )
        assert orphans == 0, detail
    assert (
        one(
            con,
            "SELECT count(*) FROM ER_PRS_F p ANTI JOIN IR_BEN_R b USING (BEN_NIR_PSA, BEN_RNG_GEM)",
        )
        == 0
    )
    assert (
        one(
            con,
            "SELECT count(*) FROM IR_IMB_R p ANTI JOIN IR_BEN_R b USING (BEN_NIR_PSA, BEN_RNG_GEM)",
        )
        == 0
    )
    placeholders = "', '".join(FAILED_LINKAGE_NIR_ANO_17)
    assert (
        one(
            con,
            "SELECT count(*) FROM MCO_C c ANTI JOIN IR_BEN_R b ON b.BEN_NIR_PSA = c.NIR_ANO_17 "
            f"WHERE c.NIR_ANO_17 NOT IN ('{placeholders}')",
        )
        == 0
    )
    assert one(con, "SELECT count(*) FROM MCO_B ANTI JOIN MCO_C USING (ETA_NUM, RSA_NUM)") == 0
    for part in "AD":
        orphans = one(
            con,
            f"SELECT count(*) FROM MCO_{part} x ANTI JOIN MCO_B b "
            "ON b.ETA_NUM::VARCHAR = x.ETA_NUM AND b.RSA_NUM::VARCHAR = x.RSA_NUM",
        )
        assert orphans == 0, part
    for table in ("KI_CCI_R", "HDH_PV_CAS", "HDH_DEV_TLM"):
        orphans = one(
            con,
            f"SELECT count(*) FROM {table} t ANTI JOIN IR_BEN_R b USING (BEN_IDT_ANO) "
            "WHERE t.BEN_IDT_ANO IS NOT NULL",
        )
        assert orphans == 0, table
    assert (
        one(
            con,
            "SELECT count(*) FROM ER_PHA_F f ANTI JOIN IR_PHA_R r ON r.PHA_CIP_C13 = f.PHA_PRS_C13",
        )
        == 0
    )


def test_drug_reference_has_valid_cip13_and_atc(extract: Path) -> None:
    rows = pq.read_table(extract / "IR_PHA_R.parquet").to_pylist()
    for row in rows:
        cip = str(row["PHA_CIP_C13"])
        assert len(cip) == 13 and cip.startswith("3400")
        check = (10 - sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(cip[:12])) % 10) % 10
        assert int(cip[12]) == check
        assert len(row["PHA_ATC_C07"]) == 7 and row["PHA_ATC_C03"] == row["PHA_ATC_C07"][:3]
        assert row["PHA_NOM_PA"] and row["PHA_MED_NOM"] and row["PHA_ATC_CLA"]


# --------------------------------------------------------------------------- studies


def test_myocardial_infarction_pathway(extract: Path) -> None:
    con = connect(extract)
    con.execute(
        """CREATE TEMP TABLE mi AS
        SELECT pid, min(adm) AS t0 FROM stays
        WHERE DGN_PAL LIKE 'I21%' OR DGN_PAL LIKE 'I22%' GROUP BY pid"""
    )
    n_mi = one(con, "SELECT count(*) FROM mi")
    assert n_mi >= 10
    # transfers: a stay ending in SOR_MOD 7 followed by an ENT_MOD 7 stay elsewhere
    assert one(con, "SELECT count(*) FROM stays WHERE ENT_MOD = '7'") > 0
    assert (
        one(
            con,
            """SELECT count(*) FROM stays a JOIN stays b ON a.pid = b.pid
               AND a.SOR_MOD = '7' AND b.ENT_MOD = '7' AND b.adm = a.dis
               AND a.ETA_NUM <> b.ETA_NUM""",
        )
        > 0
    )
    pci = one(
        con,
        """SELECT count(DISTINCT s.pid) FROM stays s JOIN MCO_A a
           ON a.ETA_NUM = s.ETA_NUM::VARCHAR AND a.RSA_NUM = s.RSA_NUM::VARCHAR
           WHERE a.CDC_ACT IN ('DDAF006', 'DDAF001', 'DDQH009')""",
    )
    assert pci >= n_mi // 2
    # secondary prevention within 90 days for most survivors
    survivors = """SELECT DISTINCT m.pid, m.t0 FROM mi m JOIN IR_BEN_R b ON b.BEN_IDT_ANO = m.pid
                   WHERE (b.BEN_DCD_DTE IS NULL OR b.BEN_DCD_DTE > m.t0 + 120)
                     AND m.t0 < DATE '2023-09-01'"""
    treated = one(
        con,
        f"""SELECT avg(CASE WHEN EXISTS (
               SELECT 1 FROM dispensings d WHERE d.pid = s.pid AND d.d BETWEEN s.t0 AND s.t0 + 90
               AND (d.atc LIKE 'C07%' OR d.atc LIKE 'C10AA%' OR d.atc LIKE 'B01AC%'
                    OR d.atc LIKE 'C09%')) THEN 1.0 ELSE 0 END)
            FROM ({survivors}) s""",
    )
    assert 0.6 <= treated < 1.0
    # 30-day readmissions after the index episode (transfers excluded)
    readmitted = one(
        con,
        """SELECT count(DISTINCT m.pid) FROM mi m JOIN stays s ON s.pid = m.pid
           WHERE s.ENT_MOD <> '7' AND s.adm > m.t0 + 1 AND s.adm <= m.t0 + 45""",
    )
    assert 0 < readmitted < n_mi
    # one-year mortality after MI well above the population's
    mi_death = one(
        con,
        """SELECT avg(CASE WHEN b.BEN_DCD_DTE <= m.t0 + 365 THEN 1.0 ELSE 0 END)
           FROM mi m JOIN (SELECT DISTINCT BEN_IDT_ANO, BEN_DCD_DTE FROM IR_BEN_R) b
           ON b.BEN_IDT_ANO = m.pid""",
    )
    base = one(
        con,
        """SELECT avg(CASE WHEN BEN_DCD_DTE <= DATE '2019-12-31' THEN 1.0 ELSE 0 END)
           FROM (SELECT DISTINCT BEN_IDT_ANO, BEN_DCD_DTE FROM IR_BEN_R)""",
    )
    assert mi_death > 2 * base


def test_heart_failure_rehospitalisations_and_telemetry_drift(extract: Path) -> None:
    con = connect(extract)
    assert one(con, "SELECT count(DISTINCT pid) FROM stays WHERE DGN_PAL LIKE 'I50%'") >= 6
    assert (
        one(
            con,
            """SELECT count(*) FROM (SELECT pid FROM stays WHERE DGN_PAL LIKE 'I50%'
               GROUP BY pid HAVING count(*) >= 2)""",
        )
        >= 3
    )
    assert one(con, "SELECT count(DISTINCT pid) FROM dispensings WHERE atc LIKE 'C03CA%'") >= 5
    # drift in the 7 days before a rehospitalisation vs days 30-60 before
    drift = con.execute(
        """WITH rehosp AS (
             SELECT pid, adm FROM stays WHERE DGN_PAL LIKE 'I50%'
           ), w AS (
             SELECT r.pid, r.adm,
               avg(t.TLM_POI_KG) FILTER (WHERE t.TLM_DTE - r.adm BETWEEN -3 AND -1) AS w_late,
               avg(t.TLM_POI_KG) FILTER (WHERE t.TLM_DTE - r.adm BETWEEN -60 AND -30) AS w_base,
               avg(t.TLM_FCR_REP) FILTER (WHERE t.TLM_DTE - r.adm BETWEEN -3 AND -1) AS hr_late,
               avg(t.TLM_FCR_REP) FILTER (WHERE t.TLM_DTE - r.adm BETWEEN -60 AND -30) AS hr_base,
               avg(t.TLM_IMP_OHM) FILTER (WHERE t.TLM_DTE - r.adm BETWEEN -3 AND -1) AS i_late,
               avg(t.TLM_IMP_OHM) FILTER (WHERE t.TLM_DTE - r.adm BETWEEN -60 AND -30) AS i_base
             FROM rehosp r JOIN HDH_DEV_TLM t ON t.BEN_IDT_ANO = r.pid GROUP BY r.pid, r.adm
           )
           SELECT count(*) FROM w WHERE w_late > w_base + 1.5 AND hr_late > hr_base + 5
             AND i_late < i_base - 8"""
    ).fetchone()[0]
    assert drift >= 1


def test_parkinson_case_finding(extract: Path) -> None:
    con = connect(extract)
    ald = one(
        con, "SELECT count(*) FROM IR_IMB_R WHERE IMB_ALD_NUM = 16 AND MED_MTF_COD LIKE 'G20%'"
    )
    assert ald >= 3
    three_dispensings = one(
        con,
        """SELECT count(*) FROM (SELECT pid FROM dispensings WHERE atc LIKE 'N04B%'
           GROUP BY pid HAVING count(DISTINCT d) >= 3)""",
    )
    assert three_dispensings >= 3
    assert (
        one(con, "SELECT count(*) FROM MCO_D WHERE ASS_DGN = 'G20'")
        + one(con, "SELECT count(*) FROM stays WHERE DGN_PAL = 'G20'")
        > 0
    )
    lines = {
        r[0]
        for r in con.execute(
            "SELECT DISTINCT substr(atc, 1, 5) FROM dispensings WHERE atc LIKE 'N04B%'"
        ).fetchall()
    }
    assert "N04BA" in lines and lines & {"N04BC", "N04BD"}  # levodopa and a first-line drug


def test_breast_screening_coverage_and_cancers(extract: Path) -> None:
    con = connect(extract)
    coverage = one(
        con,
        f"""WITH women AS (
              SELECT DISTINCT BEN_IDT_ANO AS pid FROM IR_BEN_R
              WHERE BEN_SEX_COD = 2 AND 2021 - BEN_NAI_ANN BETWEEN 50 AND 74
                AND (BEN_DCD_DTE IS NULL OR BEN_DCD_DTE > DATE '2022-12-31')
            ), mammo AS (
              SELECT DISTINCT b.BEN_IDT_ANO AS pid FROM ER_PRS_F p
              JOIN ER_CAM_F c USING ({DCIR_KEYS})
              JOIN IR_BEN_R b USING (BEN_NIR_PSA, BEN_RNG_GEM)
              WHERE c.CAM_PRS_IDE IN ('QEQK004', 'QEQK001') AND p.DPN_QLF <> 71
                AND p.EXE_SOI_DTD BETWEEN DATE '2021-01-01' AND DATE '2022-12-31'
            )
            SELECT count(m.pid) * 1.0 / count(*) FROM women w LEFT JOIN mammo m USING (pid)""",
    )
    assert 0.35 <= coverage <= 0.75
    assert one(con, "SELECT count(*) FROM ER_CAM_F WHERE CAM_PRS_IDE = 'QEQK004'") > 0
    assert one(con, "SELECT count(*) FROM ER_CAM_F WHERE CAM_PRS_IDE = 'QEQK001'") > 0
    assert one(con, "SELECT count(DISTINCT pid) FROM stays WHERE DGN_PAL LIKE 'C50%'") >= 2
    assert one(con, "SELECT count(*) FROM MCO_A WHERE CDC_ACT IN ('QEFA004', 'QEFA001')") >= 2


def test_pharmacovigilance_cases_follow_exposure(extract: Path) -> None:
    con = connect(extract)
    n_cases = one(con, "SELECT count(*) FROM HDH_PV_CAS")
    assert n_cases >= 20
    unexposed_or_early = one(
        con,
        f"""SELECT count(*) FROM HDH_PV_CAS c WHERE NOT EXISTS (
              SELECT 1 FROM ER_PRS_F p JOIN ER_PHA_F f USING ({DCIR_KEYS})
              JOIN IR_BEN_R b USING (BEN_NIR_PSA, BEN_RNG_GEM)
              WHERE b.BEN_IDT_ANO = c.BEN_IDT_ANO AND f.PHA_PRS_C13 = c.PHA_CIP_C13
                AND f.PHA_ACT_QSN > 0 AND p.EXE_SOI_DTD < c.PV_EFF_DTD)""",
    )
    assert unexposed_or_early == 0
    assert one(con, "SELECT count(*) FROM HDH_PV_CAS WHERE PV_DCL_DTE < PV_EFF_DTD") == 0
    # a reporting rate per drug x effect class can be computed and is plausible (< 10%)
    worst = one(
        con,
        """WITH exposed AS (SELECT atc, count(DISTINCT pid) AS n FROM dispensings GROUP BY atc),
                cases AS (SELECT PHA_ATC_C07 AS atc, PV_SOC_COD, count(*) AS k FROM HDH_PV_CAS
                          GROUP BY ALL)
           SELECT max(k * 1.0 / n) FROM cases JOIN exposed USING (atc) WHERE n >= 50""",
    )
    assert 0 < worst < 0.1


# --------------------------------------------------------------------------- dirty cases


def test_dirty_cases_are_present_and_counted(extract: Path) -> None:
    con = connect(extract)
    dirty = json.loads((extract / MANIFEST_NAME).read_text())["dirty_cases"]
    bad = one(con, "SELECT count(*) FROM MCO_C WHERE NIR_RET OR NAI_RET <> '0' OR SEX_RET")
    stays = one(con, "SELECT count(*) FROM MCO_C")
    assert bad == dirty["stays_bad_linkage_return_codes"] and 0.005 < bad / stays < 0.05
    several = one(
        con,
        """SELECT count(*) FROM (SELECT BEN_IDT_ANO FROM IR_BEN_R GROUP BY 1
           HAVING count(DISTINCT BEN_NIR_PSA) >= 2)""",
    )
    persons = one(con, "SELECT count(DISTINCT BEN_IDT_ANO) FROM IR_BEN_R")
    assert several == dirty["persons_with_several_ben_nir_psa"] and 0.05 < several / persons < 0.15
    errors = one(con, "SELECT count(*) FROM MCO_B WHERE GRG_GHM LIKE '90%'")
    assert errors == dirty["error_stays_grg_ghm_90"] and errors > 0
    # negative regularisations paired with an original dispensing of the same person, date, drug
    negatives = one(con, "SELECT count(*) FROM ER_PHA_F WHERE PHA_ACT_QSN < 0")
    assert negatives == dirty["negative_regularisations"] and negatives > 0
    unpaired = one(
        con,
        f"""WITH lines AS (SELECT p.BEN_NIR_PSA, p.EXE_SOI_DTD, f.PHA_PRS_C13, f.PHA_ACT_QSN,
                                  p.PRS_PAI_MNT, p.FLX_DIS_DTD
                           FROM ER_PRS_F p JOIN ER_PHA_F f USING ({DCIR_KEYS}))
            SELECT count(*) FROM lines n
            WHERE n.PHA_ACT_QSN < 0 AND (n.PRS_PAI_MNT >= 0 OR NOT EXISTS (
              SELECT 1 FROM lines o WHERE o.PHA_ACT_QSN = -n.PHA_ACT_QSN
                AND o.BEN_NIR_PSA = n.BEN_NIR_PSA AND o.EXE_SOI_DTD = n.EXE_SOI_DTD
                AND o.PHA_PRS_C13 = n.PHA_PRS_C13 AND o.FLX_DIS_DTD < n.FLX_DIS_DTD))""",
    )
    assert unpaired == 0
    lag = con.execute(
        """SELECT min(date_diff('day', EXE_SOI_DTD, FLX_DIS_DTD)),
                  avg(CASE WHEN FLX_DIS_DTD <= EXE_SOI_DTD + INTERVAL 6 MONTH THEN 1.0 ELSE 0 END),
                  count(*) FILTER (WHERE FLX_DIS_DTD > EXE_SOI_DTD + INTERVAL 7 MONTH)
           FROM ER_PRS_F WHERE BSE_REM_SGN > 0 AND DPN_QLF = 0"""
    ).fetchone()
    assert lag[0] > 0 and lag[1] > 0.98 and lag[2] > 0
    info = one(con, "SELECT count(*) FROM ER_PRS_F WHERE DPN_QLF = 71")
    assert info == dirty["for_information_rows_dpn_qlf_71"] and info > 0


def test_no_care_after_death_except_injected(extract: Path) -> None:
    con = connect(extract)
    dirty = json.loads((extract / MANIFEST_NAME).read_text())["dirty_cases"]
    after = one(
        con,
        """SELECT count(*) FROM ER_PRS_F p JOIN IR_BEN_R b USING (BEN_NIR_PSA, BEN_RNG_GEM)
           WHERE p.EXE_SOI_DTD > b.BEN_DCD_DTE""",
    )
    total = one(con, "SELECT count(*) FROM ER_PRS_F")
    assert after == dirty["care_after_death_injected"]
    assert 0 < after <= 0.001 * total
    stays_after = one(
        con,
        """SELECT count(*) FROM MCO_C c JOIN IR_BEN_R b ON b.BEN_NIR_PSA = c.NIR_ANO_17
           WHERE c.EXE_SOI_DTF::DATE > b.BEN_DCD_DTE""",
    )
    assert stays_after == 0
    telemetry_after = one(
        con,
        """SELECT count(*) FROM HDH_DEV_TLM t
           JOIN (SELECT DISTINCT BEN_IDT_ANO, BEN_DCD_DTE FROM IR_BEN_R) b USING (BEN_IDT_ANO)
           WHERE t.TLM_DTE > b.BEN_DCD_DTE""",
    )
    assert telemetry_after == 0
