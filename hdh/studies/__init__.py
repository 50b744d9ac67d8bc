"""The computations of the template studies, engine-agnostic and tested.

Each module computes one study's headline numbers from native frames of one library
(pandas, Polars, DuckDB, PyArrow, PySpark, cuDF), built on :mod:`hdh.cohort`; the template
notebooks in ``notebooks/templates/`` call them, and the tests check them against an
independent DuckDB SQL computation and the effects the synthetic generator planted.

Modules: ``mi_pathway`` (care after a myocardial infarction), ``breast_screening``
(mammography coverage by age band and area), ``parkinson_trajectories`` (the first
treatment line of new antiparkinsonian users), ``adr_reporting`` (adverse-drug-reaction
reports per 1 000 new users), ``hf_readmission`` (heart-failure rehospitalisation within
30 days: the index stays and features of its model).

Each module's ``read_tables`` reads on :data:`STUDY_ENGINE` unless told otherwise: DuckDB,
whose relations stay lazy, so a whole study is one query plan (the eager engines
materialise every step; ``docs/benchmarks.md`` has the figures).
"""

from __future__ import annotations

from . import adr_reporting, breast_screening, hf_readmission, mi_pathway, parkinson_trajectories
from ._common import STUDY_ENGINE

__all__ = [
    "STUDY_ENGINE",
    "adr_reporting",
    "breast_screening",
    "hf_readmission",
    "mi_pathway",
    "parkinson_trajectories",
]
