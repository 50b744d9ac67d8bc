"""The synthetic population of one chunk: who the patients are.

Owns: sex, birth date, residence, baseline death date (Gompertz hazard), the
direct identifiers (own NIR, policy holders' NIR, one or two ``BEN_NIR_PSA``
sources per person and the day the second one takes over). Clinical pathways
(``pathways.py``) add disease and may bring a death forward.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .identifiers import nir_numbers, nir_psa_sources
from .reference import DEPARTMENTS

#: Sentinel "never" day (year 4707): larger than any generated date.
NEVER = np.int32(1_000_000)

#: Share of persons with a second ``BEN_NIR_PSA`` (change of policy holder).
SEVERAL_PSEUDONYMS_SHARE = 0.10


@dataclass(frozen=True)
class Window:
    """The extract's observation window, in days since 1970-01-01."""

    start_year: int
    end_year: int

    @property
    def start(self) -> int:
        return int(np.datetime64(f"{self.start_year}-01-01", "D").astype(np.int64))

    @property
    def end(self) -> int:
        return int(np.datetime64(f"{self.end_year}-12-31", "D").astype(np.int64))

    @property
    def years(self) -> range:
        return range(self.start_year, self.end_year + 1)


@dataclass
class Population:
    """Chunk-local person arrays, all of length ``n``."""

    person_id: np.ndarray  # global index, int64
    sex: np.ndarray  # 1 = male, 2 = female (int64)
    birth: np.ndarray  # day, int32
    department: np.ndarray  # "01".."95"
    death: np.ndarray  # day or NEVER, int32 (mutable: pathways bring it forward)
    death_cause: np.ndarray  # ICD-10 of the underlying cause (object)
    nir: np.ndarray  # own NIR (U15)
    holder_nir: np.ndarray  # (n, 2) policy holders' NIR (U15)
    psa_source: np.ndarray  # (n, 2) raw BEN_NIR_PSA; second empty when single
    psa_switch: np.ndarray  # day the second BEN_NIR_PSA takes over, NEVER if none

    @property
    def n(self) -> int:
        return len(self.person_id)

    def birth_year(self) -> np.ndarray:
        return self.birth.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970

    def age_at(self, day: np.ndarray | int, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Completed years of age at ``day`` for persons ``rows``."""
        return ((np.asarray(day) - self.birth[rows]) / 365.25).astype(np.int64)

    def psa_slot(self, rows: np.ndarray, days: np.ndarray) -> np.ndarray:
        """Which of the person's ``BEN_NIR_PSA`` (0 or 1) is in force on ``days``."""
        return (days >= self.psa_switch[rows]).astype(np.int64)


def _age_weights() -> np.ndarray:
    ages = np.arange(1, 100)
    weights = np.where(ages < 60, 1.0, np.clip((100 - ages) / 40, 0.02, 1.0))
    return weights / weights.sum()


def annual_death_probability(age: np.ndarray) -> np.ndarray:
    hazard = 0.00004 * np.exp(0.088 * np.clip(age, 0, 110))
    return 1 - np.exp(-hazard)


def make_population(rng: np.random.Generator, first_id: int, n: int, window: Window) -> Population:
    person_id = np.arange(first_id, first_id + n, dtype=np.int64)
    sex = rng.choice(np.array([1, 2]), size=n, p=[0.485, 0.515])
    age = rng.choice(np.arange(1, 100), size=n, p=_age_weights())
    birth = (window.start - age * 365.25 - rng.integers(1, 365, size=n)).astype(np.int32)
    department = DEPARTMENTS[rng.integers(0, len(DEPARTMENTS), size=n)]

    # baseline death: one Bernoulli per calendar year of the window
    death = np.full(n, NEVER, dtype=np.int32)
    for year in window.years:
        y0 = int(np.datetime64(f"{year}-01-01", "D").astype(np.int64))
        alive = death == NEVER
        p = annual_death_probability((y0 - birth) / 365.25)
        dies = alive & (rng.random(n) < p)
        death[dies] = y0 + rng.integers(0, 365, size=int(dies.sum()))
    death_cause = np.full(n, "", dtype=object)

    birth_dt = birth.astype("datetime64[D]")
    birth_year = birth_dt.astype("datetime64[Y]").astype(np.int64) + 1970
    birth_month = (birth_dt.astype("datetime64[M]").astype(np.int64) % 12) + 1
    nir = nir_numbers(sex, birth_year, birth_month, department, person_id)

    # policy holders: self for most adults, a parent for children, a spouse for some adults
    adult = age >= 20
    holder_is_self = adult & (rng.random(n) < 0.8)
    other_year = np.where(adult, birth_year + rng.integers(-5, 6, size=n), birth_year - 30)
    other_nir = nir_numbers(
        3 - sex,
        other_year,
        rng.integers(1, 13, size=n),
        DEPARTMENTS[rng.integers(0, len(DEPARTMENTS), size=n)],
        person_id + 500_000,
    )
    holder0 = np.where(holder_is_self, nir, other_nir)
    # a second pseudonym: the person changes policy holder during the window
    several = rng.random(n) < SEVERAL_PSEUDONYMS_SHARE
    holder1 = np.where(holder_is_self, other_nir, nir)
    holder_nir = np.stack([holder0, holder1], axis=1)
    psa0 = nir_psa_sources(holder0, birth, sex)
    psa1 = np.where(several, nir_psa_sources(holder1, birth, sex), "")
    psa_source = np.stack([psa0, psa1], axis=1)
    psa_switch = np.where(
        several, rng.integers(window.start + 60, window.end - 60, size=n), NEVER
    ).astype(np.int32)
    return Population(
        person_id=person_id,
        sex=sex.astype(np.int64),
        birth=birth,
        department=department,
        death=death,
        death_cause=death_cause,
        nir=nir,
        holder_nir=holder_nir,
        psa_source=psa_source,
        psa_switch=psa_switch,
    )
