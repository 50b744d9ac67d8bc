"""Code lists the synthetic generator draws from.

Owns: the drug reference (substances with real ATC codes, packs with CIP13
codes and a valid EAN-13 check digit, the ``IR_PHA_R`` rows), the ICD-10,
CCAM and GHM codes of each clinical pathway, the MedDRA system-organ classes
of pharmacovigilance cases, and the pool of establishments (FINESS-like
``ETA_NUM``). Constant data only: nothing here depends on the seed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache

import numpy as np

# --- drugs -----------------------------------------------------------------


@dataclass(frozen=True)
class Substance:
    atc: str
    name: str
    brand: str
    unit_price: float
    role: str  # pathway that prescribes it: mi, hf, pd, background


SUBSTANCES: tuple[Substance, ...] = (
    # secondary prevention after myocardial infarction
    Substance("B01AC06", "ACIDE ACETYLSALICYLIQUE", "KARDEGIC 75MG", 2.9, "mi_antiplatelet"),
    Substance("B01AC04", "CLOPIDOGREL", "CLOPIDOGREL 75MG", 6.1, "mi_antiplatelet"),
    Substance("B01AC24", "TICAGRELOR", "BRILIQUE 90MG", 52.4, "mi_antiplatelet"),
    Substance("C07AB07", "BISOPROLOL", "BISOPROLOL 2,5MG", 3.2, "mi_betablocker"),
    Substance("C07AB02", "METOPROLOL", "METOPROLOL 100MG", 4.0, "mi_betablocker"),
    Substance("C10AA05", "ATORVASTATINE", "ATORVASTATINE 80MG", 9.8, "mi_statin"),
    Substance("C10AA07", "ROSUVASTATINE", "ROSUVASTATINE 20MG", 8.7, "mi_statin"),
    Substance("C09AA05", "RAMIPRIL", "RAMIPRIL 5MG", 3.9, "mi_acei"),
    Substance("C09AA04", "PERINDOPRIL", "PERINDOPRIL 4MG", 5.6, "mi_acei"),
    Substance("C09CA03", "VALSARTAN", "VALSARTAN 80MG", 6.3, "mi_acei"),
    # heart failure
    Substance("C03CA01", "FUROSEMIDE", "FUROSEMIDE 40MG", 2.4, "hf_loop"),
    Substance("C03CA02", "BUMETANIDE", "BURINEX 1MG", 3.1, "hf_loop"),
    Substance("C03DA01", "SPIRONOLACTONE", "SPIRONOLACTONE 25MG", 3.5, "hf_mra"),
    Substance("C09DX04", "SACUBITRIL, VALSARTAN", "ENTRESTO 49MG/51MG", 95.0, "hf_arni"),
    # Parkinson disease (treatment lines)
    Substance("N04BA02", "LEVODOPA, CARBIDOPA", "SINEMET 100MG/10MG", 7.4, "pd_levodopa"),
    Substance("N04BA02", "LEVODOPA, BENSERAZIDE", "MODOPAR 125", 8.2, "pd_levodopa"),
    Substance("N04BC04", "ROPINIROLE", "REQUIP LP 4MG", 28.5, "pd_agonist"),
    Substance("N04BC05", "PRAMIPEXOLE", "SIFROL 0,7MG", 30.1, "pd_agonist"),
    Substance("N04BD02", "RASAGILINE", "AZILECT 1MG", 24.9, "pd_maob"),
    Substance("N04BD01", "SELEGILINE", "DEPRENYL 5MG", 12.0, "pd_maob"),
    Substance("N04BX02", "ENTACAPONE", "COMTAN 200MG", 33.4, "pd_addon"),
    Substance("N04BB01", "AMANTADINE", "MANTADIX 100MG", 9.9, "pd_addon"),
    # everyday background prescriptions
    Substance("N02BE01", "PARACETAMOL", "DOLIPRANE 1000MG", 1.9, "background"),
    Substance("J01CA04", "AMOXICILLINE", "AMOXICILLINE 1G", 3.6, "background"),
    Substance("J01CR02", "AMOXICILLINE, ACIDE CLAVULANIQUE", "AUGMENTIN 1G", 5.9, "background"),
    Substance("A02BC01", "OMEPRAZOLE", "OMEPRAZOLE 20MG", 4.4, "background"),
    Substance("A02BC05", "ESOMEPRAZOLE", "ESOMEPRAZOLE 40MG", 5.1, "background"),
    Substance("A10BA02", "METFORMINE", "METFORMINE 850MG", 3.0, "background"),
    Substance("H03AA01", "LEVOTHYROXINE", "LEVOTHYROX 75UG", 2.6, "background"),
    Substance("C08CA01", "AMLODIPINE", "AMLODIPINE 5MG", 3.3, "background"),
    Substance("M01AE01", "IBUPROFENE", "IBUPROFENE 400MG", 2.2, "background"),
    Substance("N05CF02", "ZOLPIDEM", "ZOLPIDEM 10MG", 2.1, "background"),
    Substance("N06AB10", "ESCITALOPRAM", "ESCITALOPRAM 10MG", 6.8, "background"),
    Substance("R03AC02", "SALBUTAMOL", "VENTOLINE 100UG", 4.3, "background"),
    Substance("N02AX02", "TRAMADOL", "TRAMADOL 50MG", 3.4, "background"),
    Substance("B01AF02", "APIXABAN", "ELIQUIS 5MG", 61.2, "background"),
    Substance("B01AF01", "RIVAROXABAN", "XARELTO 20MG", 62.0, "background"),
)

#: Relative prescription frequency of background drugs (by ATC): paracetamol and
#: antibiotics are everywhere, anticoagulants rare.
BACKGROUND_WEIGHTS = {
    "N02BE01": 30.0,
    "J01CA04": 12.0,
    "J01CR02": 6.0,
    "M01AE01": 8.0,
    "A02BC01": 6.0,
    "A02BC05": 5.0,
    "A10BA02": 4.0,
    "H03AA01": 4.0,
    "C08CA01": 4.0,
    "N06AB10": 3.0,
    "R03AC02": 3.0,
    "N02AX02": 3.0,
    "N05CF02": 2.0,
    "B01AF02": 0.7,
    "B01AF01": 0.7,
}

#: Packs per substance (two presentations each: 30 and 90 units).
PACKS_PER_SUBSTANCE = 2

ATC_LEVEL2_LABELS = {
    "A02": "MEDICAMENTS POUR LES TROUBLES DE L'ACIDITE",
    "A10": "MEDICAMENTS DU DIABETE",
    "B01": "ANTITHROMBOTIQUES",
    "C03": "DIURETIQUES",
    "C07": "BETABLOQUANTS",
    "C08": "INHIBITEURS CALCIQUES",
    "C09": "MEDICAMENTS AGISSANT SUR LE SYSTEME RENINE-ANGIOTENSINE",
    "C10": "HYPOLIPIDEMIANTS",
    "H03": "MEDICAMENTS DE LA THYROIDE",
    "J01": "ANTIBACTERIENS A USAGE SYSTEMIQUE",
    "M01": "ANTI-INFLAMMATOIRES ET ANTIRHUMATISMAUX",
    "N02": "ANALGESIQUES",
    "N04": "ANTIPARKINSONIENS",
    "N05": "PSYCHOLEPTIQUES",
    "N06": "PSYCHOANALEPTIQUES",
    "R03": "MEDICAMENTS POUR LES SYNDROMES OBSTRUCTIFS DES VOIES AERIENNES",
}


def ean13_check_digit(first12: str) -> int:
    """EAN-13 check digit (weights 1, 3 alternating from the left), as used by CIP13."""
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(first12))
    return (10 - total % 10) % 10


def _cip13(substance_index: int, pack: int) -> int:
    digest = hashlib.sha256(f"cip:{substance_index}:{pack}".encode()).hexdigest()
    middle = f"{int(digest[:12], 16) % 10_000_000:07d}"
    first12 = "34009" + middle
    return int(first12 + str(ean13_check_digit(first12)))


@dataclass(frozen=True)
class DrugTable:
    """One row per pack (CIP13); arrays aligned by pack index."""

    cip13: np.ndarray  # int64
    substance: np.ndarray  # index into SUBSTANCES
    units: np.ndarray  # units per box (30 or 90)
    price: np.ndarray  # float64 price per box

    def packs_of(self, role: str) -> np.ndarray:
        roles = np.array([s.role for s in SUBSTANCES])
        return np.flatnonzero(roles[self.substance] == role)

    def packs_of_atc(self, atc: str) -> np.ndarray:
        atcs = np.array([s.atc for s in SUBSTANCES])
        return np.flatnonzero(atcs[self.substance] == atc)


@cache
def drug_table() -> DrugTable:
    cips, subs, units, prices = [], [], [], []
    for i, substance in enumerate(SUBSTANCES):
        for pack, n_units in enumerate((30, 90)[:PACKS_PER_SUBSTANCE]):
            cips.append(_cip13(i, pack))
            subs.append(i)
            units.append(n_units)
            prices.append(round(substance.unit_price * n_units / 30, 2))
    if len(set(cips)) != len(cips):  # pragma: no cover - constant data
        raise AssertionError("CIP13 collision in the drug reference")
    return DrugTable(
        cip13=np.array(cips, dtype=np.int64),
        substance=np.array(subs, dtype=np.int64),
        units=np.array(units, dtype=np.int64),
        price=np.array(prices, dtype=np.float64),
    )


def ir_pha_r_columns() -> dict[str, list]:
    """Columns of the ``IR_PHA_R`` drug reference, one row per pack."""
    table = drug_table()
    cols: dict[str, list] = {
        k: []
        for k in (
            "PHA_CIP_C13",
            "PHA_PRS_IDE",
            "PHA_MED_NOM",
            "PHA_NOM_PA",
            "PHA_ATC_C07",
            "PHA_ATC_L07",
            "PHA_ATC_C03",
            "PHA_ATC_L03",
            "PHA_ATC_CLA",
            "PHA_ATC_LIB",
            "PHA_PRD_LIB1",
        )
    }
    for cip, sub, n_units in zip(table.cip13, table.substance, table.units, strict=True):
        s = SUBSTANCES[int(sub)]
        cols["PHA_CIP_C13"].append(int(cip))
        cols["PHA_PRS_IDE"].append(int(str(int(cip))[5:12]))
        cols["PHA_MED_NOM"].append(f"{s.brand} CPR B/{int(n_units)}")
        cols["PHA_NOM_PA"].append(s.name)
        cols["PHA_ATC_C07"].append(s.atc)
        cols["PHA_ATC_L07"].append(s.name)
        cols["PHA_ATC_C03"].append(s.atc[:3])
        cols["PHA_ATC_L03"].append(ATC_LEVEL2_LABELS[s.atc[:3]])
        cols["PHA_ATC_CLA"].append(s.atc[:5])
        cols["PHA_ATC_LIB"].append(s.name)
        cols["PHA_PRD_LIB1"].append(s.brand)
    return cols


# --- pharmacovigilance -------------------------------------------------------

#: MedDRA system-organ classes (code, label) used as effect classes.
EFFECT_CLASSES: tuple[tuple[str, str], ...] = (
    ("10017947", "Gastrointestinal disorders"),
    ("10040785", "Skin and subcutaneous tissue disorders"),
    ("10029205", "Nervous system disorders"),
    ("10007541", "Cardiac disorders"),
    ("10005329", "Blood and lymphatic system disorders"),
    ("10019805", "Hepatobiliary disorders"),
    ("10037175", "Psychiatric disorders"),
    ("10038359", "Renal and urinary disorders"),
    ("10027433", "Metabolism and nutrition disorders"),
    ("10047065", "Vascular disorders"),
)
EFFECT_INDEX = {label: i for i, (_, label) in enumerate(EFFECT_CLASSES)}

#: Reporting probability per exposed patient, and effect-class profile, per ATC
#: prefix (first match wins). Synthetic data enriches reporting ~10x so that
#: small extracts contain cases; relative rates between drugs stay plausible.
PV_PROFILES: tuple[tuple[str, float, dict[str, float]], ...] = (
    ("B01AC", 0.020, {"Blood and lymphatic system disorders": 3, "Gastrointestinal disorders": 2}),
    ("B01AF", 0.030, {"Blood and lymphatic system disorders": 4, "Vascular disorders": 1}),
    ("C10AA", 0.015, {"Hepatobiliary disorders": 1, "Metabolism and nutrition disorders": 2}),
    ("C09", 0.012, {"Renal and urinary disorders": 2, "Metabolism and nutrition disorders": 2}),
    ("C07", 0.008, {"Cardiac disorders": 3, "Nervous system disorders": 1}),
    ("C03", 0.012, {"Metabolism and nutrition disorders": 3, "Renal and urinary disorders": 2}),
    ("N04B", 0.030, {"Psychiatric disorders": 3, "Nervous system disorders": 2}),
    ("J01", 0.010, {"Skin and subcutaneous tissue disorders": 3, "Gastrointestinal disorders": 2}),
    ("M01", 0.008, {"Gastrointestinal disorders": 3, "Renal and urinary disorders": 1}),
    ("N02AX", 0.010, {"Nervous system disorders": 2, "Psychiatric disorders": 1}),
    ("", 0.002, {"Skin and subcutaneous tissue disorders": 1, "Gastrointestinal disorders": 1}),
)


@cache
def pv_rates() -> tuple[np.ndarray, np.ndarray]:
    """Per pack: reporting probability, and a row of effect-class probabilities."""
    table = drug_table()
    rates = np.zeros(len(table.cip13))
    profiles = np.zeros((len(table.cip13), len(EFFECT_CLASSES)))
    for pack, sub in enumerate(table.substance):
        atc = SUBSTANCES[int(sub)].atc
        for prefix, rate, weights in PV_PROFILES:
            if atc.startswith(prefix):
                rates[pack] = rate
                for label, w in weights.items():
                    profiles[pack, EFFECT_INDEX[label]] = w
                profiles[pack] += 0.2  # every class possible
                profiles[pack] /= profiles[pack].sum()
                break
    return rates, profiles


# --- hospital codes -----------------------------------------------------------

#: Background main diagnoses (ICD-10 as in PMSI, no dot) with a plausible GHM.
BACKGROUND_STAYS: tuple[tuple[str, str], ...] = (
    ("K802", "07C14J"),
    ("J189", "04M052"),
    ("S720", "08C471"),
    ("R074", "05M09T"),
    ("I48", "05M081"),
    ("N390", "11M041"),
    ("K359", "06C091"),
    ("H251", "02C05J"),
    ("M170", "08C241"),
    ("K409", "06C12J"),
    ("A099", "06M031"),
    ("J440", "04M201"),
    ("I200", "05M061"),
    ("E119", "10M021"),
)
SECONDARY_DIAGNOSES = ("I10", "E119", "I48", "J440", "N390", "F03")
ERROR_GHMS = ("90Z00Z", "90Z01Z", "90Z03Z")

MI_DIAGNOSES = ("I210", "I211", "I214", "I219", "I220")
MI_GHM_MEDICAL = ("05M041", "05M042", "05M043")
MI_GHM_PCI = ("05K061", "05K062", "05K063")
HF_DIAGNOSES = ("I500", "I501", "I509")
HF_GHM = ("05M091", "05M092", "05M093", "05M094")
BREAST_CANCER_DIAGNOSES = ("C504", "C508", "C509")
BREAST_CANCER_GHM = ("09C051", "09C052")
PD_DIAGNOSIS = "G20"
DEATH_CAUSES_BACKGROUND = ("C34", "I64", "J189", "F03", "R99", "C509")

CCAM_CORONARY_ANGIOGRAPHY = "DDQH009"
CCAM_CORONARY_STENT = "DDAF006"
CCAM_CORONARY_DILATATION = "DDAF001"
CCAM_DEVICE_IMPLANT = ("DELF013", "DELF014", "DELF016")
CCAM_SCREENING_MAMMOGRAPHY = "QEQK004"
CCAM_BILATERAL_MAMMOGRAPHY = "QEQK001"
CCAM_LUMPECTOMY = "QEFA004"
CCAM_LUMPECTOMY_NODES = "QEFA001"
CCAM_MAMMOGRAPHY_PRICE = 66.42

#: Departments (two digits, mainland, no Corsica) used for residence and FINESS.
DEPARTMENTS = np.array([f"{d:02d}" for d in range(1, 96) if d != 20])


@cache
def establishments() -> np.ndarray:
    """FINESS-like 9-digit establishment numbers: 3 per department from 10 to 95.

    Departments 01-09 are left out because ``ETA_NUM`` is an integer with a
    minimum of 100000000 in the Table Schemas (their FINESS start with ``0``).
    """
    out = []
    for i, dept in enumerate(DEPARTMENTS):
        if int(dept) < 10:
            continue
        for k in range(3):
            out.append(int(f"{dept}0{(i * 37 + k * 101) % 10000:04d}{k + 1:02d}"))
    return np.array(sorted(set(out)), dtype=np.int64)
