"""The cohort toolkit: clean SNDS tables, merge stays, build events, match codes, count.

Written once over narwhals, so every function takes a native frame of pandas (Arrow
backed), Polars (eager or lazy), DuckDB, PyArrow or PySpark and returns one of the same
library, with the same result on each::

    from hdh import cohort
    c = cohort.drop_failed_linkage(c)
    stays = cohort.drop_duplicate_stays(cohort.drop_error_stays(cohort.mco_stays(b, c)))
    mi = cohort.match_codes(stays, "DGN_PAL", ["I21", "I22"])
    episodes = cohort.merge_episodes(stays, gap_days=1)
    lines = cohort.drop_regularisations(cohort.drop_information_lines(
        cohort.dcir_lines(prs, pha)))
    events = cohort.event_table(cohort.stay_events(stays),
                                cohort.dispensing_events(lines, ir_pha_r))

Modules: ``cleaning`` (the SNDS filters and joins), ``episodes`` (stays → episodes),
``events`` (the event table), ``codes`` (prefix matching), ``attrition`` (flowcharts).
Imports narwhals only; an engine is imported by narwhals when a frame of it is passed.
Docs: ``docs/notebook-library.md``, section "Cohort toolkit".
"""

from __future__ import annotations

from .attrition import DISCLOSURE_THRESHOLD, Attrition
from .cleaning import (
    DCIR_KEYS,
    MCO_STAY_KEY,
    dcir_lines,
    drop_duplicate_stays,
    drop_error_stays,
    drop_failed_linkage,
    drop_information_lines,
    drop_regularisations,
    link_persons,
    mco_acts,
    mco_stays,
)
from .codes import code_matches, match_codes, normalise_code
from .episodes import merge_episodes
from .events import EVENT_COLUMNS, act_events, dispensing_events, event_table, stay_events

__all__ = [
    "DCIR_KEYS",
    "DISCLOSURE_THRESHOLD",
    "EVENT_COLUMNS",
    "MCO_STAY_KEY",
    "Attrition",
    "act_events",
    "code_matches",
    "dcir_lines",
    "dispensing_events",
    "drop_duplicate_stays",
    "drop_error_stays",
    "drop_failed_linkage",
    "drop_information_lines",
    "drop_regularisations",
    "event_table",
    "link_persons",
    "match_codes",
    "mco_acts",
    "mco_stays",
    "merge_episodes",
    "normalise_code",
    "stay_events",
]
