"""Attrition (flowchart) tables: how many persons each selection step keeps and excludes.

::

    flow = Attrition(person="NIR_ANO_17")
    stays = flow.step("MCO stays 2019-2023", stays)
    stays = flow.step("error GHM 90* removed", drop_error_stays(stays))
    flow.to_native()   # step, label, remaining, excluded (+ which counts are small)
    print(flow)        # the same as text

A count ``n`` with ``0 < n < threshold`` is small: it is disclosive outside the sandbox.
By default (``suppress=True``) a small count is never shown: it is null in the frame and
``<10`` in the text, and the ``*_small`` columns mark it; a neighbouring count from which
it could be recovered by one subtraction is hidden too (secondary suppression, ``hidden``
in the text). ``suppress=False`` shows small counts marked with ``*``, for one's own
eyes. A flowchart meant for export still goes through the airlock's disclosure checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import narwhals as nw

from hdh.errors import BadArgument

from ._frames import names, scalar, wrap

#: Smallest count shown: the default ``CheckConfig.safe_threshold`` of
#: ``hdh/disclosure/config.py`` (the airlock's default, ACRO's threshold 10), written out
#: so that the toolkit does not load pandas with the disclosure package (a test compares).
DISCLOSURE_THRESHOLD = 10


@dataclass(frozen=True)
class Step:
    label: str
    remaining: int
    excluded: int | None  # None for the first step


class Attrition:
    """Records each step of a cohort selection (label, remaining persons, excluded)."""

    def __init__(
        self,
        person: str | None = "BEN_IDT_ANO",
        *,
        threshold: int = DISCLOSURE_THRESHOLD,
        suppress: bool = True,
    ) -> None:
        if not isinstance(threshold, int) or isinstance(threshold, bool) or threshold < 1:
            raise BadArgument(f"threshold must be a whole number >= 1, got {threshold!r}")
        self.person = person
        self.threshold = threshold
        self.suppress = suppress
        self.steps: list[Step] = []
        self._like: Any = None

    def count(self, frame: Any, person: str | None = None) -> int:
        """Distinct persons in ``frame`` (rows when the table counts rows: ``person=None``)."""
        nwf = wrap(frame)
        column = person if person is not None else self.person
        if column is None:
            return int(scalar(nwf.select(nw.len())) or 0)
        if column not in names(nwf):
            raise BadArgument(f"the frame has no person column {column!r}; pass person= to step()")
        return int(scalar(nwf.select(nw.col(column).n_unique())) or 0)

    def step(self, label: str, frame: Any, *, person: str | None = None) -> Any:
        """Record ``label`` with the persons left in ``frame``; returns ``frame`` unchanged."""
        remaining = self.count(frame, person)
        if self._like is None:
            self._like = wrap(frame)
        previous = self.steps[-1].remaining if self.steps else None
        excluded = None if previous is None else previous - remaining
        self.steps.append(Step(str(label), remaining, excluded))
        return frame

    def add(self, label: str, remaining: int) -> None:
        """Record a step from a count computed elsewhere."""
        previous = self.steps[-1].remaining if self.steps else None
        self.steps.append(
            Step(str(label), int(remaining), None if previous is None else previous - remaining)
        )

    def small(self, n: int | None) -> bool:
        return n is not None and 0 < n < self.threshold

    def hidden(self) -> list[tuple[bool, bool]]:
        """Per step, whether (remaining, excluded) is suppressed.

        Small counts first; then, since each step says ``remaining[i-1] = remaining[i] +
        excluded[i]``, any such sum with exactly one hidden term gets a second one hidden
        (the excluded count if still shown, else the remaining), until none is left:
        no suppressed count can be recovered by one subtraction.
        """
        if not self.suppress:
            return [(False, False) for _ in self.steps]
        rem = [self.small(s.remaining) for s in self.steps]
        exc = [self.small(s.excluded) for s in self.steps]
        changed = True
        while changed:
            changed = False
            for i in range(1, len(self.steps)):
                if rem[i - 1] + rem[i] + exc[i] == 1:
                    if not exc[i]:
                        exc[i] = True
                    else:
                        rem[i] = True
                    changed = True
        return list(zip(rem, exc, strict=True))

    def rows(self) -> dict[str, list[Any]]:
        hidden = self.hidden()
        return {
            "step": list(range(1, len(self.steps) + 1)),
            "label": [s.label for s in self.steps],
            "remaining": [
                None if h[0] else s.remaining for s, h in zip(self.steps, hidden, strict=True)
            ],
            "excluded": [
                None if h[1] else s.excluded for s, h in zip(self.steps, hidden, strict=True)
            ],
            "remaining_small": [self.small(s.remaining) for s in self.steps],
            "excluded_small": [self.small(s.excluded) for s in self.steps],
        }

    def to_native(self, backend: str | None = None) -> Any:
        """The table as a native frame: ``backend`` ``"pandas"`` (Arrow dtypes), ``"polars"``,
        ``"pyarrow"``, ``"duckdb"``, ``"cudf"`` or ``"pyspark"``; by default the library of the
        first frame recorded (Polars eager for Polars lazy), pandas when steps were only added
        by count."""
        schema = {
            "step": nw.Int64(),
            "label": nw.String(),
            "remaining": nw.Int64(),
            "excluded": nw.Int64(),
            "remaining_small": nw.Boolean(),
            "excluded_small": nw.Boolean(),
        }
        table = nw.from_dict(self.rows(), schema, backend="pyarrow")
        if backend is None:
            impl = self._like.implementation if self._like is not None else None
            backend = next(
                (
                    name
                    for name in ("polars", "duckdb", "pyarrow", "cudf", "pyspark")
                    if impl is not None and getattr(impl, f"is_{name}")()
                ),
                "pandas",
            )
        if backend == "pyarrow":
            return table.to_native()
        if backend == "pandas":
            import pandas as pd

            return table.to_native().to_pandas(types_mapper=pd.ArrowDtype)
        if backend == "polars":
            return table.to_polars()
        if backend == "duckdb":
            return table.lazy(backend="duckdb").to_native()
        if backend == "cudf":
            import cudf

            return cudf.DataFrame.from_arrow(table.to_native())
        if backend == "pyspark":
            from pyspark.sql import SparkSession

            session = SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
            return session.createDataFrame(table.to_native())
        raise BadArgument(
            "backend must be 'pandas', 'polars', 'pyarrow', 'duckdb', 'cudf' or 'pyspark',"
            f" got {backend!r}"
        )

    def _text(self, n: int | None, hidden: bool) -> str:
        if n is None:
            return "-"
        if self.small(n):
            return f"<{self.threshold}" if hidden else f"{n}*"
        return "hidden" if hidden else f"{n:,}"

    def __str__(self) -> str:
        hidden = self.hidden()
        width = max([len(s.label) for s in self.steps] + [5])
        lines = [f"{'#':>2}  {'step':<{width}}  {'remaining':>10}  {'excluded':>10}"]
        for i, (s, h) in enumerate(zip(self.steps, hidden, strict=True), 1):
            lines.append(
                f"{i:>2}  {s.label:<{width}}  {self._text(s.remaining, h[0]):>10}"
                f"  {self._text(s.excluded, h[1]):>10}"
            )
        if any(self.small(s.remaining) or self.small(s.excluded) for s in self.steps):
            mark = f"<{self.threshold}" if self.suppress else "*"
            lines.append(
                f"{mark}: fewer than {self.threshold} persons (disclosive; not for export)"
            )
        if any(
            (h[0] and not self.small(s.remaining)) or (h[1] and not self.small(s.excluded))
            for s, h in zip(self.steps, hidden, strict=True)
        ):
            lines.append(
                "hidden: suppressed so that no small count can be recovered by subtraction"
            )
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"Attrition({len(self.steps)} steps)\n{self}"
