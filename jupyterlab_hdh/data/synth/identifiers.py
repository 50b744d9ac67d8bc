"""Person identifiers of a synthetic extract: direct (raw) and pseudonymised.

Owns: building NIR-like numbers (sex, birth year and month, department,
commune, order, key = 97 - number mod 97), the raw source of ``BEN_NIR_PSA``
(policy-holder NIR + birth date YYYYMMDD + sex), and the keyed pseudonym that
replaces every direct identifier in a non-raw extract. The pseudonym is a
function of the raw value only (HMAC-SHA256 keyed by the seed), so the same
person gets the same pseudonym in every table, exactly as if the raw extract
had been pseudonymised at ingestion.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

import numpy as np

PSEUDONYM_LENGTH = 17

#: Placeholder ``NIR_ANO_17`` of stays whose linkage failed (documented SNDS values).
FAILED_LINKAGE_NIR_ANO_17 = ("xxxxxxxxxxxxxxxxx", "XXXXXXXXXXXXXXXXS")


def nir_numbers(
    sex: np.ndarray,
    birth_year: np.ndarray,
    birth_month: np.ndarray,
    department: np.ndarray,
    serial: np.ndarray,
) -> np.ndarray:
    """NIR-like 15-character numbers (13 digits + 2-digit key), as a numpy unicode array.

    ``serial`` (0..999_999) fills the commune and order digits; callers pass a
    distinct serial per person so that numbers do not collide.
    """
    dept = department.astype(np.int64)
    serial = serial.astype(np.int64) % 1_000_000
    commune = serial // 1000 % 999 + 1
    order = serial % 1000
    body = (
        sex.astype(np.int64) * 10**12
        + (birth_year.astype(np.int64) % 100) * 10**10
        + birth_month.astype(np.int64) * 10**8
        + dept * 10**6
        + commune * 10**3
        + order
    )
    key = 97 - body % 97
    return np.char.add(
        np.char.zfill(body.astype(str), 13), np.char.zfill(key.astype(str), 2)
    ).astype("U15")


def nir_psa_sources(holder_nir: np.ndarray, birth_days: np.ndarray, sex: np.ndarray) -> np.ndarray:
    """Raw source of ``BEN_NIR_PSA``: policy-holder NIR + birth date YYYYMMDD + sex."""
    dob = np.char.replace(np.datetime_as_string(birth_days.astype("datetime64[D]")), "-", "")
    return np.char.add(np.char.add(holder_nir.astype("U15"), dob), sex.astype("U1"))


class Pseudonymiser:
    """Keyed, deterministic pseudonyms (17 characters, base32 alphabet)."""

    def __init__(self, seed: int) -> None:
        self._key = hashlib.sha256(f"hdh-synth-pseudonym-key:{seed}".encode()).digest()

    def one(self, value: str) -> str:
        digest = hmac.new(self._key, value.encode(), "sha256").digest()
        return base64.b32encode(digest).decode()[:PSEUDONYM_LENGTH]

    def many(self, values: np.ndarray) -> np.ndarray:
        """Pseudonymise an array of raw identifiers; empty strings stay empty."""
        uniques, inverse = np.unique(values, return_inverse=True)
        mapped = np.array(
            [self.one(v) if v else "" for v in uniques.tolist()], dtype=f"U{PSEUDONYM_LENGTH}"
        )
        return mapped[inverse.reshape(-1)]
