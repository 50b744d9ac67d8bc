"""Safe reading of output tables (CSV, Parquet, XLSX) and the checks on a finished table.

Reading never trusts the file: sizes and cell counts are bounded before parsing, XLSX archives
are inspected (entry sizes, compression ratio) before openpyxl opens them in read-only mode,
text must be UTF-8 (or UTF-16 with a byte-order mark) without NUL bytes. A CSV is read in its
own dialect (``csv.Sniffer``: ``,`` ``;`` tab ``|``, quoting; decimal commas), and a CSV whose
columns could not be told apart is refused. Every table becomes a :class:`Table` of string
cells.

Checks on a finished table (no per-cell contributions available): formula injection,
identifier columns (by name and by value), individual dates, minimum threshold and zeros on
count columns, secondary suppression recoverable from margins, and a ``no-evidence`` review for
magnitude columns (dominance needs the contributions: see ``evidence.py``).
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .config import CheckConfig
from .report import Flag


class TableReadError(Exception):
    """The file cannot be read safely as a table; ``rule`` says which flag to raise."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule


@dataclass
class Table:
    """A table of string cells: ``columns`` are the header, ``data`` has positional columns."""

    columns: list[str]
    data: pd.DataFrame  # object dtype, columns 0..n-1, "" for empty cells
    sheet: str | None = None
    hidden: list[str] = field(default_factory=list)  # content a viewer of the table won't see
    _layout: tuple[CheckConfig, Layout] | None = field(default=None, repr=False, compare=False)

    @property
    def n_cells(self) -> int:
        return int(self.data.shape[0] * self.data.shape[1])


# --------------------------------------------------------------------------- reading


def read_tables(path: Path, ext: str, config: CheckConfig) -> list[Table]:
    """The tables in ``path`` (one per XLSX sheet); :class:`TableReadError` when unsafe."""
    if ext == "csv":
        return [read_csv(path, config)]
    if ext == "parquet":
        return [read_parquet(path, config)]
    if ext == "xlsx":
        return read_xlsx(path, config)
    raise TableReadError("file-type", f"not a table type: .{ext}")


#: Separators a CSV may use: R's ``write.csv2`` and French Excel write ``;``, tab-separated
#: exports are often named ``.csv``, some SAS and database exports use ``|``.
CSV_SEPARATORS = ",;\t|"
_SNIFF_BYTES = 64 * 1024
_SEPARATOR_NAMES = {",": "','", ";": "';'", "\t": "tab", "|": "'|'"}
# a number written the French way: decimal comma, digits grouped by (no-break) spaces
_FRENCH_NUMBER = re.compile(
    r"\s*[+-]?(?:\d{1,3}(?:[ \u00a0\u202f]\d{3})+|\d+)(?:,\d+)?(?:[eE][+-]?\d+)?\s*"
)
_GROUPED_HINT = re.compile(r"\d[ \u00a0\u202f]\d{3}")
_FRENCH_HINT = re.compile(r"\d,\d|\d[ \u00a0\u202f]\d{3}")
_GROUPED_NUMBER = re.compile(r"\s*[+-]?\d{1,3}(?:[ \u00a0\u202f]\d{3})+(?:\.\d+)?\s*")


def _decode_csv(raw: bytes) -> str:
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):  # Excel's "Unicode text"
        try:
            text = raw.decode("utf-16")
        except UnicodeDecodeError:
            raise TableReadError("unreadable", "CSV is not valid UTF-16 text") from None
    elif b"\x00" in raw:
        raise TableReadError("unreadable", "CSV holds NUL bytes: binary content, not text")
    else:
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise TableReadError(
                "unreadable", f"CSV is not UTF-8 text (byte {exc.start}): re-export it as UTF-8"
            ) from None
    if "\x00" in text:
        raise TableReadError("unreadable", "CSV holds NUL characters: binary content, not text")
    return text.lstrip("\ufeff")


def sniff_csv(text: str) -> type[csv.Dialect] | None:
    """The dialect (separator, quote) of ``text`` by :class:`csv.Sniffer` on its first whole
    lines, among :data:`CSV_SEPARATORS`; ``None`` when it cannot tell (one column, or an
    unknown separator)."""
    sample = text[:_SNIFF_BYTES]
    if len(text) > _SNIFF_BYTES and "\n" in sample:
        sample = sample[: sample.rindex("\n")]
    try:
        return csv.Sniffer().sniff(sample, delimiters=CSV_SEPARATORS)
    except csv.Error:
        return None


def read_csv(path: Path, config: CheckConfig) -> Table:
    """Read a CSV of any common dialect: ``,`` ``;`` or tab separators, quoted cells, a UTF-8
    byte-order mark (or UTF-16 with one), decimal commas and space-grouped digits where the
    separator is not a comma. A single column whose header holds a separator is refused: the
    file was not split into its columns, and checking it as one label column would pass it."""
    text = _decode_csv(path.read_bytes())
    if not text.strip():
        raise TableReadError("unreadable", "CSV is empty")
    dialect = sniff_csv(text)
    sep = dialect.delimiter if dialect is not None else ","
    quote = dialect.quotechar if dialect is not None and dialect.quotechar else '"'
    first_line = text.split("\n", 1)[0]
    n_lines = text.count("\n") + 1
    n_fields = first_line.count(sep) + 1
    if n_lines * n_fields > config.max_cells:
        raise TableReadError(
            "too-large",
            f"about {n_lines * n_fields:,} cells, more than max_cells={config.max_cells:,}",
        )
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            sep=sep,
            quotechar=quote,
            header=None,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=True,
            engine="c",
        )
    except (pd.errors.ParserError, ValueError) as exc:
        msg = str(exc).strip().splitlines()[-1][:200] if str(exc).strip() else type(exc).__name__
        raise TableReadError("unreadable", f"CSV cannot be parsed: {msg}") from None
    if frame.shape[0] * frame.shape[1] > config.max_cells:
        raise TableReadError("too-large", f"more than max_cells={config.max_cells:,} cells")
    if frame.shape[1] == 1 and frame.shape[0] > 0:
        header = str(frame.iat[0, 0])
        held = [s for s in CSV_SEPARATORS if s in header]
        if held:
            raise TableReadError(
                "unreadable",
                f"CSV read as one column whose header {header[:60]!r} holds a separator"
                f" ({', '.join(_SEPARATOR_NAMES[s] for s in held)}): its columns could not be"
                " told apart; re-export it with ',' or ';' between columns",
            )
    if sep != "," and _FRENCH_HINT.search(text):
        frame = frame.apply(_french_numbers)
    elif _GROUPED_HINT.search(text):
        frame = frame.apply(_grouped_numbers)
    return _table_from_rows(frame, None)


def _french_numbers(col: pd.Series) -> pd.Series:
    """``3,5`` → ``3.5`` and ``1 234`` → ``1234`` (a file not separated by commas)."""
    if not _FRENCH_HINT.search("\n".join(col.tolist())):  # one C-level scan per column
        return col
    hits = col.str.fullmatch(_FRENCH_NUMBER).fillna(False).astype(bool)
    if not hits.any():
        return col
    fixed = col[hits].str.replace(r"[ \u00a0\u202f]", "", regex=True).str.replace(",", ".")
    return col.where(~hits, fixed)


def _grouped_numbers(col: pd.Series) -> pd.Series:
    """``1 234`` → ``1234`` (digits grouped by spaces are a number in any dialect)."""
    if not _GROUPED_HINT.search("\n".join(col.tolist())):
        return col
    hits = col.str.fullmatch(_GROUPED_NUMBER).fillna(False).astype(bool)
    if not hits.any():
        return col
    return col.where(~hits, col[hits].str.replace(r"[ \u00a0\u202f]", "", regex=True))


def _table_from_rows(frame: pd.DataFrame, sheet: str | None) -> Table:
    if frame.shape[0] == 0:
        raise TableReadError("unreadable", "table has no header row")
    header = [str(v) for v in frame.iloc[0].tolist()]
    data = frame.iloc[1:].reset_index(drop=True)
    data.columns = range(data.shape[1])
    data = data.astype(object)
    return Table(columns=header, data=data, sheet=sheet)


def read_parquet(path: Path, config: CheckConfig) -> Table:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
        meta = pf.metadata
    except Exception as exc:  # noqa: BLE001 - any parse error of hostile bytes is "unreadable"
        raise TableReadError("unreadable", f"not a readable Parquet file: {exc}") from None
    cells = meta.num_rows * meta.num_columns
    if cells > config.max_cells:
        raise TableReadError(
            "too-large", f"{cells:,} cells, more than max_cells={config.max_cells:,}"
        )
    uncompressed = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    if uncompressed > config.max_xlsx_uncompressed_bytes:
        raise TableReadError(
            "too-large",
            f"Parquet expands to {uncompressed:,} bytes"
            f" (limit {config.max_xlsx_uncompressed_bytes:,})",
        )
    try:
        frame = pf.read().to_pandas(ignore_metadata=True)
    except Exception as exc:  # noqa: BLE001
        raise TableReadError("unreadable", f"Parquet data cannot be read: {exc}") from None
    header = [str(c) for c in frame.columns]
    data = pd.DataFrame({i: _as_strings(frame.iloc[:, i]) for i in range(frame.shape[1])})
    keys = {k.decode("utf-8", "replace") for k in (pf.schema_arrow.metadata or {})}
    extra = sorted(keys - {"pandas", "ARROW:schema"})
    hidden = [f"Parquet metadata key {k[:60]!r}" for k in extra]
    return Table(columns=header, data=data.astype(object), hidden=hidden)


def _as_strings(col: pd.Series) -> pd.Series:
    null = col.isna()
    if pd.api.types.is_datetime64_any_dtype(col):
        out = col.dt.strftime("%Y-%m-%d %H:%M:%S").str.replace(" 00:00:00", "", regex=False)
    else:
        out = col.astype(str)
    return out.where(~null, "")


_XLSX_HIDDEN_PARTS = {
    "xl/comments": "cell comments",
    "xl/threadedComments": "threaded comments",
    "xl/externalLinks/": "external links",
    "xl/embeddings/": "embedded objects",
    "xl/vbaProject": "macros",
    "xl/pivotCache/": "pivot cache (a copy of the source data)",
    "docProps/custom.xml": "custom document properties",
    "xl/media/": "images",
}


def check_xlsx_archive(path: Path, config: CheckConfig) -> list[str]:
    """Refuse an XLSX whose zip entries would expand too far, before any XML is parsed;
    return the parts that hold content a reader of the cells does not see."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise TableReadError("unreadable", f"not a valid XLSX (zip) file: {exc}") from None
    if len(infos) > 10_000:
        raise TableReadError("too-large", f"XLSX archive has {len(infos):,} entries")
    total = 0
    for info in infos:
        if info.flag_bits & 0x1:
            raise TableReadError("unreadable", "XLSX holds an encrypted entry")
        total += info.file_size
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > 1_000_000 and ratio > config.max_compression_ratio:
            raise TableReadError(
                "too-large",
                f"XLSX entry {info.filename!r} expands {ratio:.0f}x"
                f" (limit {config.max_compression_ratio:.0f}x): zip bomb refused",
            )
    if total > config.max_xlsx_uncompressed_bytes:
        raise TableReadError(
            "too-large",
            f"XLSX expands to {total:,} bytes (limit {config.max_xlsx_uncompressed_bytes:,})",
        )
    return sorted(
        {
            what
            for info in infos
            for prefix, what in _XLSX_HIDDEN_PARTS.items()
            if info.filename.startswith(prefix)
        }
    )


def read_xlsx(path: Path, config: CheckConfig) -> list[Table]:
    hidden = check_xlsx_archive(path, config)
    import openpyxl

    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=False)
    except Exception as exc:  # noqa: BLE001 - hostile XML: any failure is "unreadable"
        raise TableReadError("unreadable", f"XLSX cannot be opened: {exc}") from None
    tables: list[Table] = []
    budget = config.max_cells
    try:
        for ws in wb.worksheets:
            if getattr(ws, "sheet_state", "visible") != "visible":
                hidden.append(f"{ws.sheet_state} sheet {ws.title!r}")
            rows: list[list[str]] = []
            for row in ws.iter_rows(values_only=True):
                budget -= len(row)
                if budget < 0:
                    raise TableReadError(
                        "too-large", f"more than max_cells={config.max_cells:,} cells"
                    )
                rows.append(["" if v is None else _xlsx_str(v) for v in row])
            while rows and not any(rows[-1]):
                rows.pop()
            if not rows:
                continue
            width = max(len(r) for r in rows)
            frame = pd.DataFrame([r + [""] * (width - len(r)) for r in rows], dtype=object)
            tables.append(_table_from_rows(frame, ws.title))
    except TableReadError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise TableReadError("unreadable", f"XLSX cannot be read: {exc}") from None
    finally:
        wb.close()
    if not tables:
        raise TableReadError("unreadable", "XLSX holds no non-empty sheet")
    tables[0].hidden = hidden
    return tables


def _xlsx_str(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if hasattr(v, "isoformat"):
        return str(v.isoformat())
    return str(v)


# --------------------------------------------------------------------------- column roles

_LABEL_NAME = re.compile(
    r"(^|_|\b)(year|annee|année|an|age|age_?(band|group|class)|classe_?age|month|mois|week|"
    r"semaine|date|code|dept|departement|département|region|région|sex|sexe|category|"
    r"categorie|catégorie|group|groupe|label|libelle|libellé)($|_|\b)",
    re.IGNORECASE,
)
_MAGNITUDE_NAME = re.compile(
    r"(mean|average|avg|moy|moyenne|sum|somme|montant|amount|cost|cout|coût|price|prix|rate|"
    r"taux|pct|percent|pourcent|%|ratio|prop|median|mediane|médiane|std|stdev|sd|var|min|max|"
    r"value|valeur|score|duree|durée|duration)",
    re.IGNORECASE,
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_WHOLE = re.compile(r"[+-]?\d+(?:\.0*)?")
_INTEGER = re.compile(r"[+-]?\d+")
_COUNT_NAME = re.compile(
    r"(^|_|\b)(n|nb|count|counts|freq|frequency|frequence|fréquence|effectif|effectifs|nombre|"
    r"number|cases|cas|patients|persons|personnes|individus|beneficiaires|bénéficiaires)"
    r"($|_|\b)",
    re.IGNORECASE,
)
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
_NIR = r"^\s*[0-9]{13}(?:[0-9]{2})?\s*$"
_DAY_DATE = r"^\s*(?:\d{4}-\d{2}-\d{2}|\d{2}/\d{2}/\d{4}|\d{8})(?:[ T]\d{2}:\d{2}.*)?\s*$"


@dataclass
class Layout:
    """Which columns hold labels, counts and magnitudes; which rows and columns are margins."""

    numbers: pd.DataFrame  # float, NaN where not numeric or suppressed
    suppressed: pd.DataFrame  # bool: a suppression marker in a value column
    label_cols: list[int]
    count_cols: list[int]
    magnitude_cols: list[int]
    total_rows: list[int]
    total_cols: list[int]
    # count columns of whole numbers written as decimals ("150.0") not named like counts:
    # checked as counts, and as magnitudes (they may be whole amounts)
    float_cols: list[int] = field(default_factory=list)


def layout(table: Table, config: CheckConfig) -> Layout:
    """The table's column roles and margins (computed once per table and configuration)."""
    if table._layout is not None and table._layout[0] is config:
        return table._layout[1]
    lay = _compute_layout(table, config)
    table._layout = (config, lay)
    return lay


def _compute_layout(table: Table, config: CheckConfig) -> Layout:
    data = table.data
    stripped = data.apply(lambda c: c.str.strip()) if data.shape[1] else data
    markers = {m.lower() for m in config.suppression_markers}
    is_marker = stripped.apply(lambda c: c.str.lower().isin(markers)) if data.shape[1] else stripped
    numbers = (
        stripped.apply(lambda c: pd.to_numeric(c, errors="coerce")).astype(float)
        if data.shape[1]
        else stripped
    )
    label_cols: list[int] = []
    count_cols: list[int] = []
    magnitude_cols: list[int] = []
    float_cols: list[int] = []
    for j, name in enumerate(table.columns):
        if j == 0 and len(table.columns) > 1 and _row_index(name, stripped[0]):
            label_cols.append(j)  # R's write.csv row names, pandas' index: not counts
            continue
        col_num = numbers[j]
        content = ~is_marker[j]
        numeric = bool(content.any()) and bool(col_num[content].notna().all())
        if not numeric and bool(content.any()):
            label_cols.append(j)
            continue
        if not content.any():  # all suppressed or empty: a value column if named like one
            if _LABEL_NAME.search(name):
                label_cols.append(j)
            else:
                count_cols.append(j)
            continue
        leading = len(label_cols) == j  # every column before this one is a label
        if leading and _LABEL_NAME.search(name) and not _MAGNITUDE_NAME.search(name):
            label_cols.append(j)
            continue
        vals = col_num[content].to_numpy()
        if leading and j + 1 < len(table.columns) and _consecutive(vals):
            label_cols.append(j)  # 0, 1, 2, ... down a leading column: categories, not counts
            continue
        integral = bool(np.all(np.isfinite(vals)) and np.all(vals == np.round(vals)))
        # "3.0" is a count from a float column (pandas writes an integer column with a
        # missing value so); "1.5e2" was computed, and "150.25" is no count
        integral = integral and bool(stripped[j][content].str.fullmatch(_WHOLE).all())
        plausible = integral and vals.min() >= 0 and vals.max() <= config.max_plausible_count
        if plausible and not _MAGNITUDE_NAME.search(name):
            count_cols.append(j)
            written_as_floats = not stripped[j][content].str.fullmatch(_INTEGER).all()
            if written_as_floats and not _COUNT_NAME.search(name):
                float_cols.append(j)  # whole amounts or counts: checked as both
        else:
            magnitude_cols.append(j)
    value_cols = count_cols + magnitude_cols
    suppressed = pd.DataFrame(False, index=data.index, columns=data.columns)
    for j in value_cols:
        suppressed[j] = is_marker[j]
    totals = {t.lower() for t in config.total_labels}
    total_rows: list[int] = []
    if label_cols:
        lab = stripped[label_cols].apply(lambda c: c.str.lower().isin(totals))
        total_rows = [int(i) for i in np.flatnonzero(lab.any(axis=1).to_numpy())]
    total_cols = [j for j in value_cols if table.columns[j].strip().lower() in totals]
    return Layout(
        numbers,
        suppressed,
        label_cols,
        count_cols,
        magnitude_cols,
        total_rows,
        total_cols,
        float_cols,
    )


def _row_index(name: str, col: pd.Series) -> bool:
    """An unnamed column numbering the rows 1..n (R's ``write.csv``) or 0..n-1 (pandas)."""
    if name.strip() or not len(col) or not bool(col.str.fullmatch(r"\d{1,9}").all()):
        return False
    vals = col.astype(int).to_numpy()
    return bool(np.array_equal(vals - vals[0], np.arange(len(vals))) and vals[0] in (0, 1))


def _consecutive(vals: np.ndarray) -> bool:
    """At least three integers, each one more than the previous."""
    return (
        len(vals) >= 3
        and bool(np.all(np.isfinite(vals)))
        and bool(np.all(np.diff(vals) == 1))
        and bool(vals[0] == np.round(vals[0]))
    )


# --------------------------------------------------------------------------- checks


class FlagSink:
    """Collects flags, capping each rule at ``cap`` entries plus one summary flag."""

    def __init__(self, cap: int = 100) -> None:
        self.flags: list[Flag] = []
        self.cap = cap
        self._counts: dict[str, int] = {}
        self._severity: dict[str, str] = {}

    def add(self, flag: Flag) -> None:
        n = self._counts.get(flag.rule, 0) + 1
        self._counts[flag.rule] = n
        self._severity.setdefault(flag.rule, flag.severity)
        if n <= self.cap:
            self.flags.append(flag)

    def add_cells(self, rule: str, cells: np.ndarray, make: Any, severity: str = "fail") -> None:
        """Add ``make(i, k)`` for each (i, k) row of ``cells``, building flags only up to the
        cap (a table with a million small cells costs a count, not a million flags)."""
        n = self._counts.get(rule, 0)
        room = max(self.cap - n, 0)
        for i, k in cells[:room]:
            self.flags.append(make(int(i), int(k)))
        self._counts[rule] = n + len(cells)
        self._severity.setdefault(rule, severity)

    def done(self) -> list[Flag]:
        for rule, n in self._counts.items():
            if n > self.cap:
                self.flags.append(
                    Flag(
                        rule,
                        f"{n - self.cap:,} more {rule} flag(s) not listed",
                        {},
                        self._severity[rule],
                    )
                )
        return self.flags


def cell_location(table: Table, lay: Layout, row: int, col: int) -> dict[str, Any]:
    loc: dict[str, Any] = {"row": row + 1, "column": table.columns[col]}
    if lay.label_cols:
        loc["labels"] = {table.columns[j]: str(table.data.iat[row, j]) for j in lay.label_cols}
    if table.sheet is not None:
        loc["sheet"] = table.sheet
    return loc


def check_formula_injection(table: Table, sink: FlagSink) -> None:
    """Cells (header included) a spreadsheet would run as a formula: = + - @ tab CR."""
    where = {"sheet": table.sheet} if table.sheet is not None else {}
    for name in table.columns:
        if name.startswith(_FORMULA_START) and pd.isna(pd.to_numeric(name, errors="coerce")):
            sink.add(
                Flag(
                    "formula-injection",
                    f"header {name[:40]!r} starts with a formula character",
                    {"row": 0, "column": name, **where},
                )
            )
    data = table.data
    for j in range(data.shape[1]):
        col = data[j]
        starts = col.str[:1].isin(_FORMULA_START)
        if not starts.any():
            continue
        # a lone "-" or "+" (a suppression or no-data marker) is text in every spreadsheet
        hits = starts & pd.to_numeric(col.str.strip(), errors="coerce").isna()
        hits &= ~col.isin(["-", "+", "--"])
        for i in np.flatnonzero(hits.to_numpy())[:100]:
            value = str(col.iat[i])
            sink.add(
                Flag(
                    "formula-injection",
                    f"cell {value[:40]!r} would run as a spreadsheet formula",
                    {"row": int(i) + 1, "column": table.columns[j], **where},
                )
            )


def _name_is_identifier(name: str, config: CheckConfig) -> bool:
    clean = name.strip()
    if clean.upper() in {c.upper() for c in config.identifier_columns}:
        return True
    return any(re.search(p, clean, re.IGNORECASE) for p in config.identifier_column_patterns)


def check_identifiers(table: Table, lay: Layout, config: CheckConfig, sink: FlagSink) -> None:
    """Identifier columns by name, and values that look like pseudonyms or NIRs (a numeric
    column is only searched for NIRs when it holds numbers of 13 digits or more)."""
    where = {"sheet": table.sheet} if table.sheet is not None else {}
    for j, name in enumerate(table.columns):
        if _name_is_identifier(name, config):
            sink.add(
                Flag(
                    "identifier-column",
                    f"column {name!r} is an identifier or pseudonym column",
                    {"column": name, **where},
                )
            )
            continue
        col = table.data[j]
        searches = []
        if j in lay.label_cols:
            searches.append((_HEX64.pattern, 64, 64, "64-hex pseudonym"))
        if j in lay.label_cols or np.nanmax(np.abs(lay.numbers[j].to_numpy()), initial=0) >= 1e12:
            searches.append((_NIR, 13, 17, "NIR-like number"))
        for pattern, shortest, longest, what in searches:
            hits = col.str.len().between(shortest, longest) & col.str.fullmatch(pattern)
            hits = hits.fillna(False).astype(bool)
            if hits.any():
                first = int(np.flatnonzero(hits.to_numpy())[0])
                sink.add(
                    Flag(
                        "identifier-column",
                        f"column {name!r} holds {int(hits.sum()):,} {what} value(s)",
                        {"column": name, "row": first + 1, **where},
                    )
                )


def check_dates(table: Table, lay: Layout, config: CheckConfig, sink: FlagSink) -> None:
    """A day-precision date column with small (or uncounted) groups: individual dates."""
    for j in lay.label_cols:
        col = table.data[j]
        filled = col.str.strip() != ""
        if not filled.any():
            continue
        is_day = col.str.fullmatch(_DAY_DATE).fillna(False).astype(bool)
        if is_day[filled].mean() < 0.5:
            continue
        name = table.columns[j]
        if lay.count_cols:
            counts = lay.numbers[lay.count_cols]
            small = (counts < config.safe_threshold).any(axis=1) & is_day
            if not small.any():
                continue
            first = int(np.flatnonzero(small.to_numpy())[0])
            sink.add(
                Flag(
                    "individual-date",
                    f"column {name!r} has day-precision dates on {int(small.sum()):,}"
                    f" row(s) with counts below {config.safe_threshold}",
                    cell_location(table, lay, first, j),
                )
            )
        else:
            first = int(np.flatnonzero(is_day.to_numpy())[0])
            sink.add(
                Flag(
                    "individual-date",
                    f"column {name!r} holds day-precision dates with no counts:"
                    " possibly individual-level dates",
                    {"column": name, "row": first + 1},
                )
            )


def check_counts(table: Table, lay: Layout, config: CheckConfig, sink: FlagSink) -> None:
    """Threshold (0 < n < safe_threshold) and zeros on every count column."""
    if not lay.count_cols:
        return
    counts = lay.numbers[lay.count_cols].to_numpy()
    t = config.safe_threshold
    small = np.argwhere((counts > 0) & (counts < t))
    sink.add_cells(
        "threshold",
        small,
        lambda i, k: Flag(
            "threshold",
            f"count {int(counts[i, k])} is below the threshold {t}",
            cell_location(table, lay, i, lay.count_cols[k]),
        ),
    )
    if config.zeros_are_disclosive:
        sink.add_cells(
            "zeros",
            np.argwhere(counts == 0),
            lambda i, k: Flag(
                "zeros",
                "zero count (zeros are disclosive in this configuration)",
                cell_location(table, lay, i, lay.count_cols[k]),
            ),
        )


def check_secondary_suppression(table: Table, lay: Layout, sink: FlagSink) -> None:
    """A suppressed cell recoverable from a margin (total row or column) by subtraction.

    Solves, until nothing changes, every margin equation with exactly one unknown cell, so
    chains of recoveries (one recovered cell unlocking another line) are found too.
    """
    value_cols = sorted(lay.count_cols + lay.magnitude_cols)
    if not lay.suppressed.to_numpy().any() or not (lay.total_rows or lay.total_cols):
        return
    unknown = lay.suppressed.to_numpy().copy()
    suppressed = lay.suppressed.to_numpy()
    equations: list[tuple[list[tuple[int, int]], tuple[int, int], str]] = []
    # column equations: each block of rows ending at a total row sums to that row
    prev = -1
    members_cols = [j for j in value_cols if j not in lay.total_cols]
    for t in sorted(lay.total_rows):
        rows = [i for i in range(prev + 1, t) if i not in lay.total_rows]
        if len(lay.total_rows) == 1:
            rows = [i for i in range(table.data.shape[0]) if i != t]
        for j in value_cols:
            equations.append(([(i, j) for i in rows], (t, j), f"total row {t + 1}"))
        prev = t
    for tc in lay.total_cols:
        for i in range(table.data.shape[0]):
            equations.append(
                ([(i, j) for j in members_cols], (i, tc), f"total column {table.columns[tc]!r}")
            )
    recovered: set[tuple[int, int]] = set()
    changed = True
    while changed:
        changed = False
        for members, total, margin in equations:
            if not members:  # a margin over nothing (e.g. a grand total after subtotals)
                continue
            cells = [*members, total]
            unknowns = [c for c in cells if unknown[c]]
            if len(unknowns) != 1:
                continue
            cell = unknowns[0]
            unknown[cell] = False
            changed = True
            if cell not in recovered and suppressed[cell]:
                recovered.add(cell)
                sink.add(
                    Flag(
                        "secondary-suppression",
                        f"suppressed cell can be recovered from the {margin}",
                        cell_location(table, lay, cell[0], cell[1]),
                    )
                )


def check_magnitudes(table: Table, lay: Layout, sink: FlagSink) -> None:
    evidence = "per-cell evidence (ACRO results.json or an .sdc.json sidecar)"
    for j in sorted(lay.magnitude_cols + lay.float_cols):
        name = table.columns[j]
        message = (
            f"column {name!r} holds whole numbers written as decimals, checked as counts;"
            f" if they are amounts, dominance (nk, p-ratio) needs {evidence}"
            if j in lay.float_cols
            else f"column {name!r} holds magnitudes: dominance (nk, p-ratio) needs {evidence}"
        )
        sink.add(Flag("no-evidence", message, {"column": name}, severity="review"))


def check_table(
    table: Table, config: CheckConfig, sink: FlagSink, *, cell_evidence: bool = False
) -> Layout:
    """Run every finished-table check; with ``cell_evidence`` the cell rules are skipped
    (the caller applies the evidence's verdicts instead)."""
    lay = layout(table, config)
    if table.hidden:
        sink.add(
            Flag(
                "hidden-content",
                "content not visible in the table: " + "; ".join(table.hidden[:20]),
                {"hidden": table.hidden[:50]},
                severity="review",
            )
        )
    check_formula_injection(table, sink)
    check_identifiers(table, lay, config, sink)
    check_dates(table, lay, config, sink)
    if not cell_evidence:
        check_counts(table, lay, config, sink)
        check_magnitudes(table, lay, sink)
    check_secondary_suppression(table, lay, sink)
    return lay
