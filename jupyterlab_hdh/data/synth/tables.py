"""Lay a chunk's clinical events out as SNDS and HDH table columns.

Owns: the SNDS shape of each event (claims with the 9 DCIR keys and their
pharmacy/CCAM details, PMSI stays split into yearly B/C/D/A parts, long-term
conditions, deaths, pharmacovigilance cases, telemetry), the identifiers put
in each table (raw or pseudonymised), and the injected "dirty" cases: bad
linkage return codes, ``GRG_GHM 90*`` error stays, negative regularisations,
reporting lag, ``DPN_QLF = 71`` rows. Returns plain column dicts; writing them
is ``writer.py``'s job.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from jupyterlab_hdh.data.snds_schemas import identifier_fields

from . import reference as ref
from .identifiers import FAILED_LINKAGE_NIR_ANO_17, Pseudonymiser
from .pathways import OUTCOMES, REPORTER_TYPES
from .population import NEVER, Population, Window

Columns = dict[str, np.ndarray | int | str | float | bool]

BAD_LINKAGE_SHARE = 0.02
ERROR_STAY_SHARE = 0.005
REGULARISATION_SHARE = 0.01
FOR_INFORMATION_SHARE = 0.02
LONG_LAG_SHARE = 0.003
CEPIDC_LINKED_SHARE = 0.88

PRS_NAT_CONSULTATION = 1111
PRS_NAT_PHARMACY = 3317
PRS_NAT_CCAM = 1352
CONSULTATION_PRICE = 25.0


@dataclass
class Counters:
    """Running keys across chunks and dirty-case counts."""

    next_claim: int = 1
    next_stay: int = 0
    dirty: Counter = field(default_factory=Counter)


def month_start(days: np.ndarray) -> np.ndarray:
    return (
        days.astype("datetime64[D]")
        .astype("datetime64[M]")
        .astype("datetime64[D]")
        .astype(np.int32)
    )


def add_months(days: np.ndarray, months: np.ndarray) -> np.ndarray:
    m = days.astype("datetime64[D]").astype("datetime64[M]") + months.astype("timedelta64[M]")
    return m.astype("datetime64[D]").astype(np.int32)


def year_of(days: np.ndarray) -> np.ndarray:
    return days.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970


def padded(prefix: str, numbers: np.ndarray, width: int) -> np.ndarray:
    """``prefix`` + zero-padded numbers, as an object array (safe on empty input)."""
    if len(numbers) == 0:
        return np.empty(0, dtype=object)
    return np.char.add(prefix, np.char.zfill(numbers.astype(str), width)).astype(object)


def yearmonth(days: np.ndarray) -> np.ndarray:
    """``YYYY-MM`` strings (Table Schema ``yearmonth``)."""
    return np.datetime_as_string(days.astype("datetime64[D]").astype("datetime64[M]")).astype(
        object
    )


@dataclass
class PersonIds:
    """Identifiers of the chunk's persons as they appear in the tables."""

    own: np.ndarray  # BEN_NIR_ANO / BEN_IDT_ANO / DCD_IDT_ENC
    psa: np.ndarray  # (n, 2) BEN_NIR_PSA / NIR_ANO_17, second "" if none
    holder: np.ndarray  # (n, 2) ASS_NIR_ANO

    @classmethod
    def build(cls, pop: Population, raw: bool, pseudonymiser: Pseudonymiser) -> PersonIds:
        if raw:
            return cls(
                pop.nir.astype(object), pop.psa_source.astype(object), pop.holder_nir.astype(object)
            )
        return cls(
            pseudonymiser.many(pop.nir).astype(object),
            pseudonymiser.many(pop.psa_source.reshape(-1)).reshape(-1, 2).astype(object),
            pseudonymiser.many(pop.holder_nir.reshape(-1)).reshape(-1, 2).astype(object),
        )

    def psa_on(self, pop: Population, person: np.ndarray, days: np.ndarray) -> np.ndarray:
        return self.psa[person, pop.psa_slot(person, days)]


#: Identifier columns filled from ``PersonIds`` (already pseudonymised when not raw).
PERSON_ID_COLUMNS = frozenset(
    ("BEN_NIR_PSA", "BEN_NIR_ANO", "BEN_IDT_ANO", "ASS_NIR_ANO", "DCD_IDT_ENC", "NIR_ANO_17")
)


def pseudonymise_other_identifiers(
    name: str, columns: Columns, pseudonymiser: Pseudonymiser
) -> None:
    """Pseudonymise, in place, the registry's other identifier columns (e.g. a device serial)."""
    for col in identifier_fields(name):
        if col in PERSON_ID_COLUMNS or col not in columns:
            continue
        values = np.asarray(columns[col]).astype(str)
        keep = np.isin(values, [*FAILED_LINKAGE_NIR_ANO_17, ""])
        out = pseudonymiser.many(np.where(keep, "", values)).astype(object)
        out[keep] = values[keep]
        columns[col] = out


def beneficiaries(pop: Population, ids: PersonIds, win: Window, counters: Counters) -> Columns:
    several = pop.psa_source[:, 1] != ""
    counters.dirty["persons_with_several_ben_nir_psa"] += int(several.sum())
    person = np.concatenate([np.arange(pop.n), np.flatnonzero(several)])
    slot = np.concatenate(
        [np.zeros(pop.n, dtype=np.int64), np.ones(int(several.sum()), dtype=np.int64)]
    )
    order = np.lexsort((slot, person))
    person, slot = person[order], slot[order]
    death = pop.death[person]
    death = np.where(death <= win.end, death, NEVER)
    return {
        "BEN_NIR_PSA": ids.psa[person, slot],
        "BEN_RNG_GEM": 1,
        "BEN_NIR_ANO": ids.own[person],
        "BEN_IDT_ANO": ids.own[person],
        "BEN_IDT_TOP": True,
        "ASS_NIR_ANO": ids.holder[person, slot],
        "BEN_NAI_ANN": year_of(pop.birth[person]),
        "BEN_NAI_MOI": month_start(pop.birth[person]),
        "BEN_SEX_COD": pop.sex[person],
        "BEN_DCD_DTE": death,
        "BEN_DCD_AME": np.where(death < NEVER, yearmonth(np.minimum(death, win.end)), ""),
        "BEN_RES_DPT": pop.department[person].astype(object),
        "BEN_RES_COM": padded("", pop.person_id[person] % 900 + 1, 3),
        "ORG_AFF_BEN": np.char.add("01", pop.department[person].astype("U2")).astype(object),
        "BEN_TOP_CNS": True,
        "BEN_DTE_INS": np.where(slot == 0, np.int32(win.start - 3650), pop.psa_switch[person]),
        "BEN_NAI_DTE": pop.birth[person],
    }


def claims(
    pop: Population,
    ids: PersonIds,
    built: dict[str, dict[str, np.ndarray]],
    rng: np.random.Generator,
    counters: Counters,
) -> dict[str, Columns]:
    """ER_PRS_F with its ER_PHA_F and ER_CAM_F details (9 shared keys)."""
    table = ref.drug_table()
    cons, disp, acts = built["consultations"], built["dispensings"], built["outpatient_acts"]
    n_c, n_d, n_a = len(cons["person"]), len(disp["person"]), len(acts["person"])
    person = np.concatenate([cons["person"], disp["person"], acts["person"]])
    day = np.concatenate([cons["day"], disp["day"], acts["day"]]).astype(np.int32)
    kind = np.repeat(np.array([0, 1, 2]), [n_c, n_d, n_a])
    pack = np.concatenate([np.full(n_c, -1), disp["pack"], np.full(n_a, -1)])
    act = np.concatenate(
        [np.full(n_c, "", dtype=object), np.full(n_d, "", dtype=object), acts["code"]]
    )
    price = np.where(
        kind == 0,
        CONSULTATION_PRICE,
        np.where(kind == 1, table.price[np.maximum(pack, 0)], ref.CCAM_MAMMOGRAPHY_PRICE),
    )
    qty = np.ones(len(person), dtype=np.int64)
    sign = np.ones(len(person), dtype=np.int64)
    dpn_qlf = np.zeros(len(person), dtype=np.int64)
    lag = rng.choice(6, size=len(person), p=[0.45, 0.3, 0.12, 0.07, 0.04, 0.02])
    long_lag = rng.random(len(person)) < LONG_LAG_SHARE
    lag = np.where(long_lag, rng.integers(6, 18, size=len(person)), lag)
    counters.dirty["claims_flux_lag_over_6_months"] += int(long_lag.sum())
    flux = add_months(month_start(day), lag + 1)

    legit = day <= pop.death[person]
    counters.dirty["care_after_death_injected"] += int((~legit).sum())
    # negative regularisations of dispensings, paired with the original line
    reg = np.flatnonzero(legit & (kind == 1) & (rng.random(len(person)) < REGULARISATION_SHARE))
    # for-information rows (DPN_QLF = 71) duplicating consultations and dispensings
    info = np.flatnonzero(legit & (kind < 2) & (rng.random(len(person)) < FOR_INFORMATION_SHARE))
    counters.dirty["negative_regularisations"] += len(reg)
    counters.dirty["for_information_rows_dpn_qlf_71"] += len(info)

    src = np.concatenate([np.arange(len(person)), reg, info])
    person, day, kind, pack, act, price, qty = (
        np.asarray(a[src]) for a in (person, day, kind, pack, act, price, qty)
    )
    sign = np.concatenate(
        [sign, -np.ones(len(reg), dtype=np.int64), np.ones(len(info), dtype=np.int64)]
    )
    dpn_qlf = np.concatenate([dpn_qlf, np.zeros(len(reg), dtype=np.int64), np.full(len(info), 71)])
    flux = np.concatenate(
        [flux, add_months(flux[reg], rng.integers(1, 4, size=len(reg))), flux[info]]
    )

    order = np.lexsort((kind, day, pop.person_id[person]))
    person, day, kind, pack, act, price, qty, sign, dpn_qlf, flux = (
        np.asarray(a[order])
        for a in (person, day, kind, pack, act, price, qty, sign, dpn_qlf, flux)
    )
    n = len(person)
    dct = np.arange(counters.next_claim, counters.next_claim + n, dtype=np.int64)
    counters.next_claim += n
    rate = np.where(kind == 1, 65.0, 70.0)
    paid = np.round(price * qty * sign, 2)
    reimbursed = np.where(dpn_qlf == 71, 0.0, np.round(paid * rate / 100, 2))
    keys: Columns = {
        "DCT_ORD_NUM": dct,
        "FLX_DIS_DTD": flux,
        "FLX_EMT_NUM": 1 + pop.person_id[person] % 17,
        "FLX_EMT_ORD": 1,
        "FLX_EMT_TYP": 1,
        "FLX_TRT_DTD": (flux - 5).astype(np.int32),
        "ORG_CLE_NUM": np.char.add(
            np.char.add("01", pop.department[person].astype("U2")), "00000"
        ).astype(object),
        "PRS_ORD_NUM": 1,
        "REM_TYP_AFF": 1,
    }
    age = pop.age_at(day, person)
    prescription = np.where(kind == 1, day - rng.integers(0, 11, size=n), NEVER).astype(np.int32)
    prs: Columns = {
        **keys,
        "BEN_NIR_PSA": ids.psa_on(pop, person, day),
        "BEN_RNG_GEM": 1,
        "BEN_SEX_COD": pop.sex[person],
        "BEN_NAI_ANN": year_of(pop.birth[person]),
        "BEN_AMA_COD": age,
        "BEN_RES_DPT": pop.department[person].astype(object),
        "EXE_SOI_DTD": day,
        "EXE_SOI_DTF": day,
        "EXE_SOI_AMD": yearmonth(day),
        "EXE_SOI_AMF": yearmonth(day),
        "PRE_PRE_DTD": prescription,
        "BSE_REM_BSE": paid,
        "BSE_REM_MNT": reimbursed,
        "BSE_REM_PRU": np.round(price, 2),
        "BSE_REM_SGN": sign,
        "PRS_ACT_QTE": qty.astype(np.float64),
        "PRS_ACT_NBR": qty.astype(np.float64),
        "PRS_PAI_MNT": paid,
        "DPN_QLF": dpn_qlf,
        "PRS_DPN_QLP": dpn_qlf,
        "PRS_NAT_REF": np.select(
            [kind == 0, kind == 1], [PRS_NAT_CONSULTATION, PRS_NAT_PHARMACY], PRS_NAT_CCAM
        ),
        "PSE_SPE_COD": np.select([kind == 0, kind == 1], [1, 50], 6),
        "RGO_REM_TAU": rate,
    }
    d = np.flatnonzero(kind == 1)
    pha: Columns = {k: (v[d] if isinstance(v, np.ndarray) else v) for k, v in keys.items()}
    pha.update(
        {
            "PHA_PRS_C13": table.cip13[pack[d]],
            "PHA_PRS_IDE": table.cip13[pack[d]] // 10 % 10_000_000,
            "PHA_ACT_QSN": qty[d] * sign[d],
            "PHA_ACT_PRU": np.round(price[d], 2),
            "PHA_ORD_NUM": 1,
        }
    )
    a = np.flatnonzero(kind == 2)
    cam: Columns = {k: (v[a] if isinstance(v, np.ndarray) else v) for k, v in keys.items()}
    cam.update(
        {
            "CAM_PRS_IDE": act[a],
            "CAM_ACT_COD": "1",
            "CAM_ORD_NUM": 1,
            "CAM_ACT_PRU": np.round(price[a], 2),
            "CAM_REM_BSE": np.round(price[a], 2),
        }
    )
    return {"ER_PRS_F": prs, "ER_PHA_F": pha, "ER_CAM_F": cam}


def hospital_stays(
    pop: Population,
    ids: PersonIds,
    built: dict[str, dict[str, np.ndarray]],
    win: Window,
    rng: np.random.Generator,
    counters: Counters,
) -> dict[str, Columns]:
    """Yearly T_MCOyyB/C/D/A columns (stays filed by discharge year)."""
    s = built["stays"]
    n = len(s["person"])
    person, adm, dis = s["person"], s["adm"].astype(np.int32), s["dis"].astype(np.int32)
    rsa = np.arange(counters.next_stay, counters.next_stay + n, dtype=np.int64) + 1_000_000_000
    counters.next_stay += n

    ghm = s["ghm"].copy()
    error = rng.random(n) < ERROR_STAY_SHARE
    ghm[error] = np.asarray(ref.ERROR_GHMS, dtype=object)[rng.integers(0, 3, size=int(error.sum()))]
    counters.dirty["error_stays_grg_ghm_90"] += int(error.sum())

    bad = rng.random(n) < BAD_LINKAGE_SHARE
    which = rng.integers(0, 3, size=n)
    nir_ret = bad & (which == 0)
    nai_ret = np.where(bad & (which == 1), np.where(rng.random(n) < 0.5, "1", "9"), "0").astype(
        object
    )
    sex_ret = bad & (which == 2)
    counters.dirty["stays_bad_linkage_return_codes"] += int(bad.sum())
    nir_ano_17 = ids.psa_on(pop, person, adm)
    placeholder = nir_ret & (rng.random(n) < 0.5)
    nir_ano_17[placeholder] = np.asarray(FAILED_LINKAGE_NIR_ANO_17, dtype=object)[
        rng.integers(0, 2, size=int(placeholder.sum()))
    ]
    counters.dirty["stays_placeholder_nir_ano_17"] += int(placeholder.sum())

    acts, dgns = built["stay_acts"], built["stay_diagnoses"]
    # stay keys are increasing (assigned in order, filtering keeps the order)
    act_stay = np.searchsorted(s["key"], acts["key"]).astype(np.int64)
    dgn_stay = np.searchsorted(s["key"], dgns["key"]).astype(np.int64)
    n_act = np.bincount(act_stay, minlength=n)
    n_dgn = np.bincount(dgn_stay, minlength=n)
    dgn_order = np.argsort(dgn_stay, kind="stable")
    dgn_rank = np.empty(len(dgn_stay), dtype=np.int64)
    dgn_rank[dgn_order] = (
        np.arange(len(dgn_stay)) - np.repeat(np.cumsum(n_dgn) - n_dgn, n_dgn) + 1
        if len(dgn_stay)
        else np.empty(0, dtype=np.int64)
    )

    discharge_year = year_of(dis)
    out: dict[str, Columns] = {}
    for year in win.years:
        yy = f"{year % 100:02d}"
        i = np.flatnonzero(discharge_year == year)
        eta, rsa_y = s["eta"][i], rsa[i]
        out[f"T_MCO{yy}B"] = {
            "ETA_NUM": eta,
            "RSA_NUM": rsa_y,
            "DGN_PAL": s["dgn_pal"][i],
            "DGN_REL": s["dgn_rel"][i],
            "GRG_GHM": ghm[i],
            "GRG_RET": False,
            "GRG_VER": "11",
            "ENT_MOD": s["ent_mod"][i],
            "ENT_PRV": s["ent_prv"][i],
            "SOR_MOD": s["sor_mod"][i],
            "SOR_DES": s["sor_des"][i],
            "SEJ_NBJ": (dis[i] - adm[i]).astype(np.int64),
            "AGE_ANN": np.maximum(pop.age_at(adm[i], person[i]), 1),
            "COD_SEX": pop.sex[person[i]].astype(str).astype(object),
            "BDI_DEP": pop.department[person[i]].astype(object),
            "BDI_COD": np.char.add(pop.department[person[i]].astype("U2"), "000").astype(object),
            "TYP_GEN_RSA": 0,
            "SOR_ANN": year,
            "SOR_MOI": month_start(dis[i]),
            "NBR_DGN": n_dgn[i],
            "NBR_ACT": n_act[i],
            "NBR_RUM": 1,
            "RSS_NUM": "224",
        }
        out[f"T_MCO{yy}C"] = {
            "ETA_NUM": eta,
            "RSA_NUM": rsa_y,
            "NIR_ANO_17": nir_ano_17[i],
            "EXE_SOI_DTD": adm[i],
            "EXE_SOI_DTF": dis[i],
            "ENT_DAT": adm[i],
            "SOR_DAT": dis[i],
            "EXE_SOI_AMD": yearmonth(adm[i]),
            "EXE_SOI_AMF": yearmonth(dis[i]),
            "ENT_AM": yearmonth(adm[i]),
            "SOR_AM": yearmonth(dis[i]),
            "SOR_ANN": year,
            "SOR_MOI": month_start(dis[i]),
            # boolean return codes hold what the schema reads the code '0' (OK) as:
            # false by default, true for SEJ_RET (trueValues ['0']); True on NIR_RET and
            # SEX_RET is an error code
            "NIR_RET": nir_ret[i],
            "NAI_RET": nai_ret[i],
            "SEX_RET": sex_ret[i],
            "SEJ_RET": True,
            "FHO_RET": False,
            "PMS_RET": False,
            "DAT_RET": "0",
            "COH_NAI_RET": False,
            "COH_SEX_RET": False,
            "ETA_NUM_RET": False,
            "SEJ_NUM": 10_000 + rsa_y % 90_000_000,
            "FOR_NUM": "012",
        }
        in_year = np.zeros(n, dtype=bool)
        in_year[i] = True
        d = np.flatnonzero(in_year[dgn_stay])
        out[f"T_MCO{yy}D"] = {
            "ETA_NUM": s["eta"][dgn_stay[d]].astype(str).astype(object),
            "RSA_NUM": rsa[dgn_stay[d]].astype(str).astype(object),
            "ASS_DGN": dgns["code"][d],
            "DGN_ASS_NUM": dgn_rank[d],
            "RSS_NUM": "224",
        }
        a = np.flatnonzero(in_year[act_stay])
        out[f"T_MCO{yy}A"] = {
            "ETA_NUM": s["eta"][act_stay[a]].astype(str).astype(object),
            "RSA_NUM": rsa[act_stay[a]].astype(str).astype(object),
            "CDC_ACT": acts["code"][a],
            "ENT_DAT_DEL": acts["delay"][a],
            "NBR_EXE_ACT": 1,
            "ACV_ACT": "1",
            "PHA_ACT": "0",
            "RSS_NUM": "224",
        }
    return out


def long_term_conditions(pop: Population, ids: PersonIds, ald: dict[str, np.ndarray]) -> Columns:
    person, start = ald["person"], ald["start"].astype(np.int32)
    return {
        "BEN_NIR_PSA": ids.psa_on(pop, person, start),
        "BEN_RNG_GEM": 1,
        "IMB_ALD_NUM": ald["number"],
        "IMB_ALD_DTD": start,
        "IMB_ETM_NAT": 41,
        "MED_MTF_COD": ald["icd"],
        "MED_NCL_IDT": "CIM10",
        "INS_DTE": start,
    }


def deaths(
    pop: Population, ids: PersonIds, win: Window, rng: np.random.Generator, counters: Counters
) -> Columns:
    """KI_CCI_R: one row per death in the window; some fail the CepiDc linkage."""
    dead = np.flatnonzero((pop.death >= win.start) & (pop.death <= win.end))
    n = len(dead)
    linked = rng.random(n) < CEPIDC_LINKED_SHARE
    counters.dirty["deaths_not_linked_ki_cci_r"] += int((~linked).sum())
    cause = pop.death_cause[dead].copy()
    missing = cause == ""
    cause[missing] = np.asarray(ref.DEATH_CAUSES_BACKGROUND, dtype=object)[
        rng.integers(0, len(ref.DEATH_CAUSES_BACKGROUND), size=int(missing.sum()))
    ]
    day = pop.death[dead]
    return {
        "DCD_IDT_ENC": ids.own[dead],
        "DCD_IDT_TOP": linked.astype(np.int64),
        "BEN_IDT_ANO": np.where(linked, ids.own[dead], ""),
        "BEN_IDT_TOP": np.where(linked, 1, 0),
        "BEN_NIR_ANO": np.where(linked, ids.own[dead], ""),
        "FLX_PER_ANN": year_of(day),
        "DCD_DPT_COD": pop.department[dead].astype(object),
        "BEN_RES_DPT": pop.department[dead].astype(object),
        "BEN_DCD_DTE": day,
        "BEN_DCD_AME": yearmonth(day),
        "BEN_NAI_ANN": year_of(pop.birth[dead]),
        "BEN_NAI_MOI": month_start(pop.birth[dead]),
        "BEN_SEX_COD": pop.sex[dead],
        "DCD_CIM_COD": cause,
    }


def pv_cases(pop: Population, ids: PersonIds, pv: dict[str, np.ndarray]) -> Columns:
    table = ref.drug_table()
    atc = np.array([s.atc for s in ref.SUBSTANCES], dtype=object)[table.substance[pv["pack"]]]
    case_id = padded("PV", pop.person_id[pv["person"]] * 1000 + pv["pack"], 13)
    soc = np.array(ref.EFFECT_CLASSES, dtype=object)
    return {
        "PV_CAS_NUM": case_id,
        "BEN_IDT_ANO": ids.own[pv["person"]],
        "PV_DCL_DTE": pv["report"],
        "PV_EFF_DTD": pv["onset"],
        "PHA_CIP_C13": table.cip13[pv["pack"]],
        "PHA_ATC_C07": atc,
        "PV_SOC_COD": soc[pv["effect"], 0],
        "PV_SOC_LIB": soc[pv["effect"], 1],
        "PV_GRA_TOP": pv["serious"],
        "PV_EVL_COD": np.asarray(OUTCOMES, dtype=object)[pv["outcome"]],
        "PV_DCL_TYP": np.asarray(REPORTER_TYPES, dtype=object)[pv["reporter"]],
        "PV_AGE_ANN": pop.age_at(pv["onset"], pv["person"]),
        "BEN_SEX_COD": pop.sex[pv["person"]],
    }


def telemetry(pop: Population, ids: PersonIds, tlm: dict[str, np.ndarray] | None) -> Columns:
    if tlm is None:
        return {"BEN_IDT_ANO": np.empty(0, dtype=object)}
    ok = tlm["transmitted"]
    return {
        "BEN_IDT_ANO": ids.own[tlm["person"]],
        "DEV_IDT": padded("ICD", pop.person_id[tlm["person"]], 10),
        "TLM_DTE": tlm["day"],
        "TLM_POI_KG": np.where(ok, tlm["weight"], np.nan),
        "TLM_FCR_REP": np.ma.masked_array(tlm["heart_rate"], mask=~ok),
        "TLM_IMP_OHM": np.where(ok, tlm["impedance"], np.nan),
        "TLM_PAS_NBR": np.ma.masked_array(tlm["steps"], mask=~ok),
        "TLM_TRS_TOP": ok,
    }
