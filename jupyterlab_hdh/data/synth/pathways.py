"""Clinical histories of one chunk, as event logs independent of table layout.

Owns: background care (consultations, everyday drugs, ordinary stays) and the
five template-study pathways: myocardial infarction (index stay, transfer,
PCI, readmission, secondary prevention, excess mortality), heart failure
(stays, rehospitalisations, loop diuretics, device telemetry with drift before
each rehospitalisation), Parkinson disease (ALD 16, G20, treatment lines),
breast-cancer screening (organised and opportunistic mammograms, screen-detected
and interval cancers, lumpectomy), and pharmacovigilance cases after a first
dispensing. Also applies the rule "no care after death" and injects the
counted exceptions. Everything is vectorised over persons with numpy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import reference as ref
from .population import NEVER, Population, Window

#: Share of deceased persons given one claim after death (plausibility checks must find it).
CARE_AFTER_DEATH_SHARE = 0.02


class EventLog:
    """Append-only columns; ``build()`` concatenates them into numpy arrays."""

    def __init__(self, **dtypes: str | type) -> None:
        self._dtypes = dtypes
        self._parts: dict[str, list[np.ndarray]] = {k: [] for k in dtypes}

    def add(self, **columns: np.ndarray | int | str) -> None:
        n = max(np.size(v) for v in columns.values() if np.ndim(v) > 0)
        if set(columns) != set(self._dtypes):
            raise KeyError(f"columns {sorted(columns)} != {sorted(self._dtypes)}")
        for k, v in columns.items():
            arr = np.asarray(v, dtype=self._dtypes[k])
            self._parts[k].append(np.broadcast_to(arr, (n,)) if arr.ndim == 0 else arr)

    def build(self) -> dict[str, np.ndarray]:
        return {
            k: (np.concatenate(v) if v else np.empty(0, dtype=self._dtypes[k]))
            for k, v in self._parts.items()
        }


def _stay_log() -> EventLog:
    return EventLog(
        person=np.int64,
        adm=np.int32,
        dis=np.int32,
        dgn_pal=object,
        dgn_rel=object,
        ghm=object,
        ent_mod=object,
        ent_prv=object,
        sor_mod=object,
        sor_des=object,
        eta=np.int64,
        key=np.int64,
    )


@dataclass
class ChunkEvents:
    """All events of a chunk (columns by table-independent names)."""

    stays: EventLog = field(default_factory=_stay_log)
    stay_acts: EventLog = field(
        default_factory=lambda: EventLog(key=np.int64, code=object, delay=np.int64)
    )
    stay_diagnoses: EventLog = field(default_factory=lambda: EventLog(key=np.int64, code=object))
    consultations: EventLog = field(default_factory=lambda: EventLog(person=np.int64, day=np.int32))
    dispensings: EventLog = field(
        default_factory=lambda: EventLog(person=np.int64, day=np.int32, pack=np.int64)
    )
    outpatient_acts: EventLog = field(
        default_factory=lambda: EventLog(person=np.int64, day=np.int32, code=object)
    )
    ald: EventLog = field(
        default_factory=lambda: EventLog(
            person=np.int64, number=np.int64, icd=object, start=np.int32
        )
    )
    next_stay_key: int = 0
    pd_onset: np.ndarray | None = None
    telemetry: dict[str, np.ndarray] | None = None

    def add_stays(self, **columns: np.ndarray | int | str) -> np.ndarray:
        n = np.size(columns["person"])
        keys = np.arange(self.next_stay_key, self.next_stay_key + n, dtype=np.int64)
        self.next_stay_key += n
        self.stays.add(key=keys, **columns)
        return keys


def _pick(rng: np.random.Generator, codes: tuple[str, ...] | np.ndarray, n: int) -> np.ndarray:
    return np.asarray(codes, dtype=object)[rng.integers(0, len(codes), size=n)]


def _group_rank(counts: np.ndarray) -> np.ndarray:
    """0, 1, .. k-1 within each group of ``np.repeat(..., counts)``."""
    total = int(counts.sum())
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    return np.arange(total) - starts


def refill_series(
    rng: np.random.Generator,
    person: np.ndarray,
    first_day: np.ndarray,
    stop_day: np.ndarray,
    pack: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Regular dispensings from ``first_day`` to ``stop_day`` (monthly or quarterly by pack)."""
    units = ref.drug_table().units[pack]
    interval = np.where(units >= 90, 90, 30)
    span = np.maximum(stop_day.astype(np.int64) - first_day, 0)
    counts = span // interval + 1
    rank = _group_rank(counts)
    rows = np.repeat(np.arange(len(person)), counts)
    days = (
        first_day[rows] + rank * interval[rows] + rng.integers(-3, 4, size=len(rows)) * (rank > 0)
    )
    return person[rows], days.astype(np.int32), pack[rows]


def _choose_pack(rng: np.random.Generator, role: str, n: int) -> np.ndarray:
    table = ref.drug_table()
    packs = table.packs_of(role)
    if role != "background":
        return packs[rng.integers(0, len(packs), size=n)]
    weights = np.array(
        [ref.BACKGROUND_WEIGHTS[ref.SUBSTANCES[int(table.substance[k])].atc] for k in packs]
    )
    return rng.choice(packs, size=n, p=weights / weights.sum())


def _uniform_days(
    rng: np.random.Generator, lo: np.ndarray | int, hi: np.ndarray | int, n: int
) -> np.ndarray:
    """``n`` days drawn uniformly in [lo, hi) (element-wise bounds allowed)."""
    lo = np.broadcast_to(np.asarray(lo, dtype=np.int64), (n,))
    hi = np.maximum(np.broadcast_to(np.asarray(hi, dtype=np.int64), (n,)), lo + 1)
    return (lo + (rng.random(n) * (hi - lo)).astype(np.int64)).astype(np.int32)


def _bring_death_forward(pop: Population, rows: np.ndarray, day: np.ndarray, cause: str) -> None:
    earlier = day < pop.death[rows]
    pop.death[rows[earlier]] = day[earlier]
    pop.death_cause[rows[earlier]] = cause


# --- background ---------------------------------------------------------------


def background(pop: Population, rng: np.random.Generator, win: Window, ev: ChunkEvents) -> None:
    years = len(win.years)
    age = pop.age_at(win.start)
    everyone = np.arange(pop.n)

    n_consult = rng.poisson((1.0 + age / 50) * years)
    person = np.repeat(everyone, n_consult)
    ev.consultations.add(person=person, day=_uniform_days(rng, win.start, win.end, len(person)))

    n_disp = rng.poisson((0.5 + age / 30) * years)
    person = np.repeat(everyone, n_disp)
    ev.dispensings.add(
        person=person,
        day=_uniform_days(rng, win.start, win.end, len(person)),
        pack=_choose_pack(rng, "background", len(person)),
    )

    n_stays = rng.poisson((0.03 + age * 0.003) * years)
    person = np.repeat(everyone, n_stays)
    m = len(person)
    adm = _uniform_days(rng, win.start, win.end, m)
    los = rng.geometric(0.25, size=m) - 1
    kind = rng.integers(0, len(ref.BACKGROUND_STAYS), size=m)
    dgn = np.array([d for d, _ in ref.BACKGROUND_STAYS], dtype=object)[kind]
    ghm = np.array([g for _, g in ref.BACKGROUND_STAYS], dtype=object)[kind]
    keys = ev.add_stays(
        person=person,
        adm=adm,
        dis=adm + los,
        dgn_pal=dgn,
        dgn_rel="",
        ghm=ghm,
        ent_mod="8",
        ent_prv=np.where(rng.random(m) < 0.4, "5", ""),
        sor_mod="8",
        sor_des="",
        eta=ref.establishments()[rng.integers(0, len(ref.establishments()), size=m)],
    )
    with_das = rng.random(m) < 0.5
    ev.stay_diagnoses.add(
        key=keys[with_das], code=_pick(rng, ref.SECONDARY_DIAGNOSES, int(with_das.sum()))
    )


# --- myocardial infarction ------------------------------------------------------


SECONDARY_PREVENTION = (
    ("mi_antiplatelet", 0.95),
    ("mi_statin", 0.90),
    ("mi_betablocker", 0.80),
    ("mi_acei", 0.75),
)


def myocardial_infarction(
    pop: Population, rng: np.random.Generator, win: Window, ev: ChunkEvents
) -> np.ndarray:
    """MI pathway; returns the chunk rows of MI patients."""
    age = pop.age_at(win.start)
    p = np.clip(0.001 * (age - 35), 0, 0.07) * np.where(pop.sex == 1, 1.6, 0.7)
    index_day = _uniform_days(rng, win.start, win.end - 20, pop.n)
    rows = np.flatnonzero((rng.random(pop.n) < p) & (index_day < pop.death))
    n = len(rows)
    t0 = index_day[rows]
    etas = ref.establishments()
    eta_a = etas[rng.integers(0, len(etas), size=n)]
    eta_b = etas[(np.searchsorted(etas, eta_a) + 1 + rng.integers(0, 20, size=n)) % len(etas)]
    transfer = rng.random(n) < 0.3
    dgn = _pick(rng, ref.MI_DIAGNOSES, n)
    angio = rng.random(n) < 0.85
    stent = angio & (rng.random(n) < 0.8)
    dilatation = angio & ~stent & (rng.random(n) < 0.3)
    in_hospital_death = rng.random(n) < 0.06

    # first stay (transferred out after 0-1 day, or the whole episode)
    los_first = np.where(transfer, rng.integers(0, 2, size=n), rng.integers(3, 11, size=n))
    dis_first = t0 + los_first
    ghm_first = np.where(
        transfer,
        "05M04T",
        np.where(stent, _pick(rng, ref.MI_GHM_PCI, n), _pick(rng, ref.MI_GHM_MEDICAL, n)),
    )
    last_dies = in_hospital_death
    keys_first = ev.add_stays(
        person=rows,
        adm=t0,
        dis=dis_first,
        dgn_pal=dgn,
        dgn_rel="",
        ghm=ghm_first,
        ent_mod="8",
        ent_prv="5",
        sor_mod=np.where(transfer, "7", np.where(last_dies, "9", "8")),
        sor_des=np.where(transfer, "1", ""),
        eta=eta_a,
    )
    # second stay in the PCI centre for transferred patients
    tr = np.flatnonzero(transfer)
    los_second = rng.integers(3, 9, size=len(tr))
    keys_second = ev.add_stays(
        person=rows[tr],
        adm=dis_first[tr],
        dis=dis_first[tr] + los_second,
        dgn_pal=dgn[tr],
        dgn_rel="",
        ghm=np.where(stent[tr], _pick(rng, ref.MI_GHM_PCI, len(tr)), ref.MI_GHM_MEDICAL[1]),
        ent_mod="7",
        ent_prv="1",
        sor_mod=np.where(last_dies[tr], "9", "8"),
        sor_des="",
        eta=eta_b[tr],
    )
    pci_key = keys_first.copy()
    pci_key[tr] = keys_second
    discharge = dis_first.copy()
    discharge[tr] = dis_first[tr] + los_second
    for mask, code in (
        (angio, ref.CCAM_CORONARY_ANGIOGRAPHY),
        (stent, ref.CCAM_CORONARY_STENT),
        (dilatation, ref.CCAM_CORONARY_DILATATION),
    ):
        ev.stay_acts.add(key=pci_key[mask], code=code, delay=np.where(transfer[mask], 0, 1))
    hypertensive = rng.random(n) < 0.5
    ev.stay_diagnoses.add(key=keys_first[hypertensive], code="I10")

    _bring_death_forward(pop, rows[in_hospital_death], discharge[in_hospital_death], "I219")
    survivors = ~in_hospital_death
    # excess one-year mortality after discharge
    late_death = survivors & (rng.random(n) < 0.09)
    _bring_death_forward(
        pop,
        rows[late_death],
        (discharge[late_death] + rng.integers(1, 365, size=int(late_death.sum()))).astype(np.int32),
        "I219",
    )
    # 30-day readmission
    readm = np.flatnonzero(survivors & (rng.random(n) < 0.13))
    r_adm = discharge[readm] + rng.integers(2, 31, size=len(readm))
    ev.add_stays(
        person=rows[readm],
        adm=r_adm,
        dis=r_adm + rng.integers(1, 7, size=len(readm)),
        dgn_pal=_pick(rng, ("I200", "I509", "R074", "I220"), len(readm)),
        dgn_rel="",
        ghm=_pick(rng, ("05M061", "05M092", "05M09T"), len(readm)),
        ent_mod="8",
        ent_prv="5",
        sor_mod="8",
        sor_des="",
        eta=eta_a[readm],
    )
    # secondary prevention: most start within weeks, some late, some never
    treated = survivors & (rng.random(n) < 0.88)
    late_start = survivors & ~treated & (rng.random(n) < 0.4)
    for role, share in SECONDARY_PREVENTION:
        takes = np.flatnonzero((treated | late_start) & (rng.random(n) < share))
        delay = np.where(
            treated[takes],
            1 + np.minimum(rng.exponential(6, size=len(takes)), 60),
            rng.integers(120, 300, size=len(takes)),
        ).astype(np.int64)
        first = discharge[takes] + delay
        stop = np.minimum(first + rng.exponential(900, size=len(takes)).astype(np.int64), win.end)
        person, day, pack = refill_series(
            rng, rows[takes], first, stop, _choose_pack(rng, role, len(takes))
        )
        ev.dispensings.add(person=person, day=day, pack=pack)
    return rows


# --- heart failure ----------------------------------------------------------------


TELEMETRY_DRIFT_DAYS = 14


def heart_failure(
    pop: Population, rng: np.random.Generator, win: Window, ev: ChunkEvents
) -> np.ndarray:
    age = pop.age_at(win.start)
    p = np.clip(0.0015 * (age - 50), 0, 0.09)
    onset = _uniform_days(rng, win.start, win.end - 30, pop.n)
    rows = np.flatnonzero((rng.random(pop.n) < p) & (onset < pop.death))
    n = len(rows)
    adm0 = onset[rows]
    etas = ref.establishments()
    eta = etas[rng.integers(0, len(etas), size=n)]
    dis0 = adm0 + rng.integers(4, 13, size=n)
    has_device = rng.random(n) < 0.45
    keys = ev.add_stays(
        person=rows,
        adm=adm0,
        dis=dis0,
        dgn_pal=_pick(rng, ref.HF_DIAGNOSES, n),
        dgn_rel="",
        ghm=_pick(rng, ref.HF_GHM, n),
        ent_mod="8",
        ent_prv="5",
        sor_mod="8",
        sor_des="",
        eta=eta,
    )
    dev = np.flatnonzero(has_device)
    ev.stay_acts.add(key=keys[dev], code=_pick(rng, ref.CCAM_DEVICE_IMPLANT, len(dev)), delay=2)

    # mortality: about 12% a year after the first stay
    _bring_death_forward(pop, rows, (dis0 + rng.exponential(2400, size=n)).astype(np.int32), "I509")
    # rehospitalisations: successive exponential gaps after discharge
    max_rehosp = 6
    gaps = rng.exponential(420, size=(n, max_rehosp)).astype(np.int64) + 15
    adm_k = dis0[:, None] + np.cumsum(gaps + 7, axis=1)
    valid = adm_k < np.minimum(pop.death[rows], win.end)[:, None]
    r_person_local = np.nonzero(valid)[0]
    r_adm = adm_k[valid].astype(np.int32)
    m = len(r_adm)
    r_los = rng.integers(3, 11, size=m)
    dies_here = rng.random(m) < 0.05
    ev.add_stays(
        person=rows[r_person_local],
        adm=r_adm,
        dis=r_adm + r_los,
        dgn_pal=_pick(rng, ref.HF_DIAGNOSES, m),
        dgn_rel="",
        ghm=_pick(rng, ref.HF_GHM, m),
        ent_mod="8",
        ent_prv="5",
        sor_mod=np.where(dies_here, "9", "8"),
        sor_des="",
        eta=eta[r_person_local],
    )
    _bring_death_forward(
        pop, rows[r_person_local[dies_here]], (r_adm + r_los)[dies_here].astype(np.int32), "I509"
    )

    # drugs: loop diuretic for nearly all, MRA and ARNI for some
    for role, share in (("hf_loop", 0.95), ("hf_mra", 0.4), ("hf_arni", 0.2)):
        takes = np.flatnonzero(rng.random(n) < share)
        first = dis0[takes] + rng.integers(1, 11, size=len(takes))
        person, day, pack = refill_series(
            rng,
            rows[takes],
            first,
            np.full(len(takes), win.end),
            _choose_pack(rng, role, len(takes)),
        )
        ev.dispensings.add(person=person, day=day, pack=pack)

    # device telemetry from the day after discharge to death or end of window
    device_index = np.full(n, -1, dtype=np.int64)
    device_index[dev] = np.arange(len(dev))
    ev.telemetry = _telemetry(
        pop, rng, win, rows[dev], dis0[dev] + 1, device_index[r_person_local], r_adm
    )
    return rows


def _telemetry(
    pop: Population,
    rng: np.random.Generator,
    win: Window,
    device_rows: np.ndarray,
    first_day: np.ndarray,
    rehosp_device: np.ndarray,
    rehosp_adm: np.ndarray,
) -> dict[str, np.ndarray]:
    """Daily device measurements; ``rehosp_device`` is -1 for patients without a device."""
    n = len(device_rows)
    last_day = np.minimum(pop.death[device_rows], win.end)
    ndays = np.maximum(last_day.astype(np.int64) - first_day + 1, 0)
    offsets = np.cumsum(ndays) - ndays
    rank = _group_rank(ndays)
    owner = np.repeat(np.arange(n), ndays)
    total = len(owner)
    day = (first_day[owner] + rank).astype(np.int32)
    sex = pop.sex[device_rows]
    base_weight = rng.normal(np.where(sex == 1, 82, 68), 12, size=n).clip(40, 160)
    base_hr = rng.normal(68, 7, size=n).clip(45, 100)
    base_imp = rng.normal(70, 8, size=n).clip(40, 110)
    base_steps = rng.lognormal(np.log(3500), 0.5, size=n)
    weight = base_weight[owner] + rng.normal(0, 0.4, size=total)
    hr = base_hr[owner] + rng.normal(0, 3, size=total)
    imp = base_imp[owner] + rng.normal(0, 1.5, size=total)
    steps = base_steps[owner] * rng.lognormal(0, 0.35, size=total)

    # drift in the days before each rehospitalisation of a device patient
    has_dev = rehosp_device >= 0
    d_idx = rehosp_device[has_dev]
    d_adm = rehosp_adm[has_dev].astype(np.int64)
    k = np.arange(1, TELEMETRY_DRIFT_DAYS + 1)
    drift_day = d_adm[:, None] - TELEMETRY_DRIFT_DAYS - 1 + k[None, :]
    pos = drift_day - first_day[d_idx][:, None]
    ok = (pos >= 0) & (pos < ndays[d_idx][:, None])
    row = (offsets[d_idx][:, None] + pos)[ok]
    kk = np.broadcast_to(k, drift_day.shape)[ok]
    np.add.at(weight, row, 0.2 * kk)
    np.add.at(hr, row, 0.9 * kk)
    np.add.at(imp, row, -1.2 * kk)
    np.multiply.at(steps, row, 1 - 0.04 * kk)

    transmitted = rng.random(total) < 0.97
    return {
        "person": device_rows[owner],
        "device": owner,
        "day": day,
        "weight": np.round(weight, 1),
        "heart_rate": np.round(hr).astype(np.int64),
        "impedance": np.round(imp, 1),
        "steps": np.round(steps).astype(np.int64),
        "transmitted": transmitted,
    }


# --- Parkinson disease ----------------------------------------------------------------


def parkinson(
    pop: Population, rng: np.random.Generator, win: Window, ev: ChunkEvents
) -> np.ndarray:
    age = pop.age_at(win.start)
    p = np.clip(0.0012 * (age - 50), 0, 0.045)
    onset = _uniform_days(rng, win.start - 6 * 365, win.end - 180, pop.n)
    rows = np.flatnonzero((rng.random(pop.n) < p) & (onset < pop.death))
    n = len(rows)
    t0 = onset[rows].astype(np.int64)
    pd_onset = np.full(pop.n, NEVER, dtype=np.int32)
    pd_onset[rows] = t0

    ald = rng.random(n) < 0.8
    ev.ald.add(
        person=rows[ald],
        number=16,
        icd="G20",
        start=(t0[ald] + rng.integers(30, 400, size=int(ald.sum()))).astype(np.int32),
    )
    # treatment lines: young onset starts with an agonist or a MAO-B inhibitor
    onset_age = (t0 - pop.birth[rows]) / 365.25
    young = onset_age < 70
    first_role = np.where(rng.random(n) < 0.6, "pd_agonist", "pd_maob")
    levodopa_start = np.where(young, t0 + rng.integers(365, 4 * 365, size=n), t0 + 30)
    addon = rng.random(n) < np.where(young, 0.5, 0.4)
    addon_start = levodopa_start + rng.integers(2 * 365, 5 * 365, size=n)
    lines = [
        (young & (first_role == "pd_agonist"), t0 + 30, "pd_agonist"),
        (young & (first_role == "pd_maob"), t0 + 30, "pd_maob"),
        (np.ones(n, dtype=bool), levodopa_start, "pd_levodopa"),
        (addon, addon_start, "pd_addon"),
    ]
    for mask, start, role in lines:
        take = np.flatnonzero(mask & (start < win.end))
        first = np.maximum(start[take], win.start + rng.integers(0, 30, size=len(take)))
        person, day, pack = refill_series(
            rng, rows[take], first, np.full(len(take), win.end), _choose_pack(rng, role, len(take))
        )
        ev.dispensings.add(person=person, day=day, pack=pack)
    # some PD-specific stays (main diagnosis G20)
    stay = np.flatnonzero(rng.random(n) < 0.25)
    adm = _uniform_days(rng, np.maximum(t0[stay], win.start), win.end, len(stay))
    etas = ref.establishments()
    ev.add_stays(
        person=rows[stay],
        adm=adm,
        dis=adm + rng.integers(2, 8, size=len(stay)),
        dgn_pal=ref.PD_DIAGNOSIS,
        dgn_rel="",
        ghm="01M212",
        ent_mod="8",
        ent_prv="",
        sor_mod="8",
        sor_des="",
        eta=etas[rng.integers(0, len(etas), size=len(stay))],
    )
    ev.pd_onset = pd_onset
    return rows


# --- breast-cancer screening ----------------------------------------------------------


def breast_screening(
    pop: Population, rng: np.random.Generator, win: Window, ev: ChunkEvents
) -> np.ndarray:
    """Mammograms for women 50-74 and breast cancers; returns rows of women with cancer."""
    women = np.flatnonzero(pop.sex == 2)
    age0 = pop.age_at(win.start, women)
    eligible = women[(age0 >= 46) & (age0 <= 74)]
    n = len(eligible)
    birth = pop.birth[eligible].astype(np.int64)
    from_day = np.maximum(win.start, birth + int(50 * 365.25))
    to_day = np.minimum(win.end, birth + int(75 * 365.25))
    behaviour = rng.random(n)
    organised = behaviour < 0.52
    opportunistic = (behaviour >= 0.52) & (behaviour < 0.64)

    # up to 4 screens per woman; organised ~ every 24 months, opportunistic irregular
    k = 4
    first = from_day + rng.integers(0, 730, size=n)
    gaps = np.where(
        organised[:, None],
        rng.integers(690, 800, size=(n, k)),
        rng.integers(300, 1100, size=(n, k)),
    )
    gaps[:, 0] = 0
    days = first[:, None] + np.cumsum(gaps, axis=1)
    takes = (organised | opportunistic)[:, None] & (days <= to_day[:, None])
    code = np.where(organised, ref.CCAM_SCREENING_MAMMOGRAPHY, ref.CCAM_BILATERAL_MAMMOGRAPHY)

    # breast cancer: screen-detected (weeks after a screen) or interval (3-24 months after)
    cancer = rng.random(n) < 0.03  # enriched ~2x over the real 5-year incidence
    screened = takes[:, 0]
    anchor = days[:, 0]
    detected = cancer & screened & (rng.random(n) < 0.65)
    interval = cancer & screened & ~detected
    diag = np.where(
        detected,
        anchor + rng.integers(10, 60, size=n),
        np.where(
            interval,
            anchor + rng.integers(90, 700, size=n),
            _uniform_days(rng, win.start, win.end, n),
        ),
    )
    cancer &= (diag < win.end) & (diag < pop.death[eligible])
    # no screening after a cancer diagnosis (except the detecting one)
    takes &= ~(cancer[:, None] & (days > diag[:, None]))
    wi, si = np.nonzero(takes)
    ev.outpatient_acts.add(
        person=eligible[wi], day=days[wi, si].astype(np.int32), code=code[wi].astype(object)
    )

    c = np.flatnonzero(cancer)
    rows = eligible[c]
    adm = diag[c].astype(np.int32)
    etas = ref.establishments()
    keys = ev.add_stays(
        person=rows,
        adm=adm,
        dis=adm + rng.integers(1, 5, size=len(c)),
        dgn_pal=_pick(rng, ref.BREAST_CANCER_DIAGNOSES, len(c)),
        dgn_rel="",
        ghm=_pick(rng, ref.BREAST_CANCER_GHM, len(c)),
        ent_mod="8",
        ent_prv="",
        sor_mod="8",
        sor_des="",
        eta=etas[rng.integers(0, len(etas), size=len(c))],
    )
    ev.stay_acts.add(
        key=keys,
        code=np.where(rng.random(len(c)) < 0.7, ref.CCAM_LUMPECTOMY, ref.CCAM_LUMPECTOMY_NODES),
        delay=1,
    )
    ev.ald.add(person=rows, number=30, icd="C509", start=(adm + 20).astype(np.int32))
    dies = rng.random(len(c)) < 0.05
    _bring_death_forward(
        pop,
        rows[dies],
        (adm[dies] + rng.integers(180, 1500, size=int(dies.sum()))).astype(np.int32),
        "C509",
    )
    return rows


# --- death rule, pharmacovigilance --------------------------------------------------------


def apply_death_rule(
    pop: Population, rng: np.random.Generator, win: Window, ev: ChunkEvents
) -> dict[str, dict[str, np.ndarray]]:
    """Build all logs, drop care after death and outside the window, inject the exceptions."""
    death = pop.death
    built: dict[str, dict[str, np.ndarray]] = {}
    stays = ev.stays.build()
    keep = (stays["adm"] >= win.start) & (stays["dis"] <= win.end)
    keep &= (stays["dis"] < death[stays["person"]]) | (
        (stays["sor_mod"] == "9") & (stays["dis"] == death[stays["person"]])
    )
    built["stays"] = {k: v[keep] for k, v in stays.items()}
    kept_keys = built["stays"]["key"]
    for name in ("stay_acts", "stay_diagnoses"):
        log = getattr(ev, name).build()
        built[name] = {k: v[np.isin(log["key"], kept_keys)] for k, v in log.items()}
    for name in ("consultations", "dispensings", "outpatient_acts"):
        log = getattr(ev, name).build()
        ok = (
            (log["day"] >= win.start)
            & (log["day"] <= win.end)
            & (log["day"] <= death[log["person"]])
        )
        built[name] = {k: v[ok] for k, v in log.items()}
    built["ald"] = ev.ald.build()
    ok = built["ald"]["start"] <= np.minimum(death[built["ald"]["person"]], win.end)
    built["ald"] = {k: v[ok] for k, v in built["ald"].items()}

    # injected: one dispensing 5-60 days after death for a few deceased persons
    dead = np.flatnonzero((death >= win.start) & (death <= win.end - 60))
    ghosts = dead[rng.random(len(dead)) < CARE_AFTER_DEATH_SHARE]
    if len(ghosts) == 0 and len(dead) >= 20:  # at least one per chunk for checks to find
        ghosts = dead[rng.integers(0, len(dead), size=1)]
    disp = built["dispensings"]
    built["dispensings"] = {
        "person": np.concatenate([disp["person"], ghosts]),
        "day": np.concatenate(
            [disp["day"], (death[ghosts] + rng.integers(5, 61, size=len(ghosts))).astype(np.int32)]
        ),
        "pack": np.concatenate([disp["pack"], _choose_pack(rng, "background", len(ghosts))]),
    }

    # Parkinson: G20 as an associated diagnosis of stays after onset
    if ev.pd_onset is not None:
        s = built["stays"]
        pd_stay = (s["adm"] >= ev.pd_onset[s["person"]]) & (s["dgn_pal"] != ref.PD_DIAGNOSIS)
        sd = built["stay_diagnoses"]
        built["stay_diagnoses"] = {
            "key": np.concatenate([sd["key"], s["key"][pd_stay]]),
            "code": np.concatenate([sd["code"], np.full(int(pd_stay.sum()), "G20", dtype=object)]),
        }
    return built


REPORTER_TYPES = ("physician", "pharmacist", "other_hcp", "patient")
OUTCOMES = (
    "recovered",
    "recovering",
    "not_recovered",
    "recovered_with_sequelae",
    "fatal",
    "unknown",
)


def pharmacovigilance(
    pop: Population, rng: np.random.Generator, win: Window, dispensings: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Cases reported after a first dispensing, at a per-drug x effect-class rate."""
    person, day, pack = dispensings["person"], dispensings["day"], dispensings["pack"]
    legit = day <= pop.death[person]
    order = np.lexsort((day[legit], pack[legit], person[legit]))
    p_s, d_s, k_s = person[legit][order], day[legit][order], pack[legit][order]
    first = np.ones(len(p_s), dtype=bool)
    first[1:] = (p_s[1:] != p_s[:-1]) | (k_s[1:] != k_s[:-1])
    p_f, d_f, k_f = p_s[first], d_s[first].astype(np.int64), k_s[first]
    rates, profiles = ref.pv_rates()
    case = rng.random(len(p_f)) < rates[k_f]
    p_c, d_c, k_c = p_f[case], d_f[case], k_f[case]
    m = len(p_c)
    onset = d_c + 1 + np.minimum(rng.exponential(35, size=m), 300).astype(np.int64)
    report = onset + rng.integers(1, 120, size=m)
    ok = onset <= np.minimum(pop.death[p_c], win.end)
    p_c, k_c, onset, report = p_c[ok], k_c[ok], onset[ok], report[ok]
    m = len(p_c)
    cum = np.cumsum(profiles[k_c], axis=1)
    effect = (rng.random(m)[:, None] > cum).sum(axis=1).clip(0, len(ref.EFFECT_CLASSES) - 1)
    serious = rng.random(m) < 0.3
    died_soon = pop.death[p_c].astype(np.int64) - onset <= 60
    outcome = np.where(
        serious & died_soon,
        OUTCOMES.index("fatal"),
        rng.choice([0, 1, 2, 3, 5], size=m, p=[0.5, 0.2, 0.1, 0.05, 0.15]),
    )
    return {
        "person": p_c,
        "pack": k_c,
        "onset": onset.astype(np.int32),
        "report": report.astype(np.int32),
        "effect": effect,
        "serious": serious,
        "outcome": outcome,
        "reporter": rng.choice(len(REPORTER_TYPES), size=m, p=[0.55, 0.25, 0.1, 0.1]),
    }
