"""Safe rendering of airlock files for reviewers: one inert HTML fragment per file.

Owns turning untrusted bytes (a requester's notebook, HTML, table, image or
anything else) into HTML a reviewer's browser can show without running any of
it, and without letting anything hide. Rules:

* every string from the file is escaped; the only HTML kept from the file is
  ``text/html`` passed through nh3 (an allow-list sanitiser: no scripts, event
  handlers, styles, forms, frames, ``<base>``/``<meta>``, nor any URL but
  ``http(s)``/``mailto`` links and ``data:`` PNG/JPEG images), and its raw
  source is always shown escaped beside it;
* notebooks are read with nbformat and never trusted: every cell's source,
  metadata and attachments, and **every** mime bundle of every output (not only
  the one a notebook front-end would pick) are shown, so nothing can hide in a
  non-displayed alternative; ``image/svg+xml``, ``application/javascript`` and
  unknown types are shown as escaped text;
* images are inlined only as ``data:`` URLs of PNG/JPEG that Pillow decodes,
  with their dimensions and metadata (text chunks, EXIF) shown;
* tables (CSV/TSV/Parquet/XLSX) are escaped HTML tables of the first rows,
  with spreadsheet-formula cells marked; Parquet key-value metadata and hidden
  XLSX sheets are shown too;
* invisible and bidirectional-control characters are made visible.

Nothing here reads the store or the network; :func:`render_file` is pure.
:func:`review_page` assembles a whole reviewer page (a request view from
``manager.get_request`` and the snapshots); it must be served with
:data:`PAGE_CSP` (no script at all); :func:`file_page` is one file alone, as a whole
document for the review widget's sandboxed frame, served with :data:`FILE_CSP`. Only
reviewers and administrators (the view's ``viewer``: :data:`RENDERED_FOR`) get the files
rendered; for anyone else (project members, the requester) the page is their request's
state, check results (as ``manager.requester_report`` left them) and
comments, and no snapshot is even read: a rendering shown to the requester
would carry out of the sandbox whatever a kernel put in the file.

Limits (:class:`RenderLimits`) keep a hostile file from making a page huge;
whatever is cut is announced on the page, never dropped silently.
"""

from __future__ import annotations

import base64
import binascii
import csv
import hashlib
import html
import io
import json
import re
import zipfile
from collections.abc import Callable, Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import nh3

__all__ = [
    "RenderLimits",
    "render_file",
    "render_notebook",
    "sanitise_html",
    "is_formula",
    "review_page",
    "file_page",
    "PAGE_CSP",
    "FILE_CSP",
    "RENDERED_FOR",
]

#: The viewers (``manager.get_request``'s ``viewer``) whose page renders the files.
RENDERED_FOR = frozenset({"reviewer", "operator"})


@dataclass(frozen=True)
class RenderLimits:
    """How much of a file a reviewer page shows (the rest is summarised, never dropped silently)."""

    max_rows: int = 50
    max_columns: int = 60
    max_text_chars: int = 200_000
    max_hex_bytes: int = 4096
    max_image_pixels: int = 40_000_000
    max_xlsx_uncompressed: int = 200 * 2**20
    max_notebook_bytes: int = 50 * 2**20
    max_cells: int = 5000


DEFAULT_LIMITS = RenderLimits()

# --- escaping -------------------------------------------------------------------------------------

#: Characters a reviewer could not see: bidi controls (Trojan Source), zero-width ones, BOM,
#: other C0/C1 controls except tab and newline.
_INVISIBLE = re.compile(
    "[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff"
    "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]"
)
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")


#: The page's gettext while :func:`review_page` renders (English outside it): the notes and
#: labels around a rendered file (``_t``) are translated with the page's own labels.
_GETTEXT: ContextVar[Callable[[str], str]] = ContextVar("hdh_render_gettext", default=str)


def _t(message: str) -> str:
    """``message`` (a msgid of the control plane's catalogue) in the page's language."""
    return _GETTEXT.get()(message)


def _n(number: int) -> str:
    return f"{number:,}"


def _esc(text: str) -> str:
    """Escape for HTML text or attribute, showing invisible characters as ``⟦U+XXXX⟧``."""
    escaped = html.escape(text, quote=True)
    return _INVISIBLE.sub(
        lambda m: f'<span class="hdh-invisible">⟦U+{ord(m.group()):04X}⟧</span>', escaped
    )


def _pre(text: str, limits: RenderLimits, cls: str = "hdh-text") -> str:
    note = ""
    if len(text) > limits.max_text_chars:
        note = _note(
            _t("showing the first %(shown)s of %(total)s characters")
            % {"shown": _n(limits.max_text_chars), "total": _n(len(text))}
        )
        text = text[: limits.max_text_chars]
    return f'<pre class="{cls}">{_esc(text)}</pre>{note}'


def _note(text: str, cls: str = "hdh-note") -> str:
    return f'<p class="{cls}">{_esc(text)}</p>'


def _warn(text: str) -> str:
    return _note(text, "hdh-warning")


def _json(value: Any, limits: RenderLimits) -> str:
    return _pre(
        json.dumps(value, ensure_ascii=False, indent=1, sort_keys=True, default=str), limits
    )


# --- HTML -----------------------------------------------------------------------------------------

_HTML_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "code", "col", "colgroup", "dd", "del",
    "details", "div", "dl", "dt", "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5",
    "h6", "hr", "i", "img", "ins", "kbd", "li", "ol", "p", "pre", "q", "s", "samp", "small",
    "span", "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th", "thead",
    "tr", "u", "ul", "var",
}  # fmt: skip
_HTML_ATTRS = {
    "a": {"href"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan", "align"},
    "th": {"colspan", "rowspan", "align", "scope"},
    "ol": {"start"},
    "*": {"title"},
}
_DATA_IMAGE = re.compile(r"data:image/(?:png|jpeg);base64,[A-Za-z0-9+/=\s]*\Z")
_LINK = re.compile(r"(?:https?://|mailto:)[^\s]", re.IGNORECASE)


def _attribute_filter(tag: str, attr: str, value: str) -> str | None:
    if tag == "img" and attr == "src":
        # only inline PNG/JPEG: a remote src would be a beacon fired when the reviewer looks
        return value if _DATA_IMAGE.match(value) else None
    if tag == "a" and attr == "href":
        # absolute web and mail links only: no data:, javascript:, nor relative control-plane URLs
        return value if _LINK.match(value) else None
    return value


def sanitise_html(source: str) -> str:
    """``source`` with everything executable or fetching removed (nh3 allow-list)."""
    return nh3.clean(
        source,
        tags=_HTML_TAGS,
        clean_content_tags={"script", "style", "template", "noscript", "iframe", "object"},
        attributes=_HTML_ATTRS,
        attribute_filter=_attribute_filter,
        url_schemes={"http", "https", "mailto", "data"},
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


def _html_block(source: str, limits: RenderLimits) -> str:
    """Sanitised rendering, then the raw source escaped (comments, stripped tags stay visible)."""
    return (
        '<div class="hdh-html">'
        f'<div class="hdh-sanitised">{sanitise_html(source)}</div>'
        '<details open class="hdh-source"><summary>'
        f"{_esc(_t('HTML source (as written)'))}</summary>"
        f"{_pre(source, limits)}</details></div>"
    )


# --- images ---------------------------------------------------------------------------------------

_IMAGE_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg"}


def _image_block(data: bytes, limits: RenderLimits, declared: str | None = None) -> str:
    """An inline ``<img>`` of a PNG/JPEG Pillow decodes, with its size and metadata; else hex."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as probe:
            fmt, size = probe.format, probe.size
            if size[0] * size[1] > limits.max_image_pixels:
                raise ValueError(f"{size[0]}x{size[1]} pixels is over the limit")
            probe.verify()
        with Image.open(io.BytesIO(data)) as full:
            full.load()  # verify() does not decode the pixels; a truncated image fails here
            info = {k: v for k, v in full.info.items() if k not in ("exif", "icc_profile")}
            exif = {str(k): v for k, v in full.getexif().items()}
            applist = list(getattr(full, "applist", []))  # JPEG APPn/COM segments
    except Exception as exc:  # Pillow raises many types for hostile input
        return _warn(
            _t("not a valid PNG/JPEG image (%(error)s)") % {"error": f"{type(exc).__name__}: {exc}"}
        ) + _hex(data, limits)
    mime = _IMAGE_FORMATS.get(fmt or "")
    if mime is None or (declared is not None and declared != mime):
        return _warn(
            _t("image format %(format)s (declared %(declared)s) is not shown")
            % {"format": fmt, "declared": declared or _t("by extension")}
        )
    meta = ""
    shown: dict[str, Any] = {str(k): v for k, v in info.items()}
    shown.update({f"exif:{k}": v for k, v in exif.items()})
    if shown:
        meta = (
            f'<div class="hdh-meta"><p>{_esc(_t("Image metadata"))}</p>'
            + _json(shown, limits)
            + "</div>"
        )
    hidden = (
        _png_structure(data, limits) if fmt == "PNG" else _jpeg_structure(data, applist, limits)
    )
    b64 = base64.b64encode(data).decode("ascii")
    return (
        f'<figure class="hdh-image"><img src="data:{mime};base64,{b64}" alt="image"'
        f' width="{size[0]}" height="{size[1]}">'
        f"<figcaption>{_esc(fmt or '?')} {size[0]}×{size[1]} px, "
        f"{_esc(_t('%(size)s bytes') % {'size': _n(len(data))})}"
        f"</figcaption></figure>{meta}{hidden}"
    )


#: PNG chunks whose content is pixels or standard metadata Pillow reports (``info``).
_PNG_KNOWN = {
    b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tEXt", b"zTXt", b"iTXt", b"pHYs", b"gAMA", b"cHRM",
    b"sRGB", b"iCCP", b"bKGD", b"tIME", b"sBIT", b"eXIf", b"tRNS", b"hIST", b"sPLT", b"acTL",
    b"fcTL", b"fdAT",
}  # fmt: skip


def _trailer(data: bytes, end: int, what: str, limits: RenderLimits) -> str:
    if end >= len(data):
        return ""
    extra = data[end:]
    return _warn(
        _t("%(size)s bytes after the end of the %(what)s: shown below")
        % {"size": _n(len(extra)), "what": _t(what)}
    ) + _hex(extra, limits)


def _png_structure(data: bytes, limits: RenderLimits) -> str:
    """Chunks Pillow does not report (private ones) and bytes after IEND: where data hides."""
    parts = []
    pos = 8
    while pos + 8 <= len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind not in _PNG_KNOWN:
            name = kind.decode("latin-1")
            parts.append(
                _warn(
                    _t("non-standard PNG chunk %(name)r of %(size)s bytes:")
                    % {"name": name, "size": _n(length)}
                )
            )
            parts.append(_hex(body, limits))
        pos += 12 + length
        if kind == b"IEND":
            break
    parts.append(_trailer(data, pos, N_("PNG image (IEND)"), limits))
    return "".join(parts)


def _jpeg_structure(data: bytes, applist: list[Any], limits: RenderLimits) -> str:
    """APPn/COM segments other than EXIF/ICC, and bytes after the last end-of-image marker."""
    parts = []
    for marker, body in applist:
        raw = body if isinstance(body, bytes) else str(body).encode()
        if marker == "APP1" and raw.startswith(b"Exif"):
            continue  # shown decoded above
        if marker == "APP2" and raw.startswith(b"ICC_PROFILE"):
            continue
        if marker == "APP0" and raw.startswith((b"JFIF", b"JFXX")):
            continue
        parts.append(
            _warn(
                _t("JPEG %(marker)s segment of %(size)s bytes:")
                % {"marker": marker, "size": _n(len(raw))}
            )
        )
        parts.append(_hex(raw, limits))
    eoi = data.rfind(b"\xff\xd9")
    if eoi >= 0:
        parts.append(_trailer(data, eoi + 2, N_("JPEG image (EOI)"), limits))
    return "".join(parts)


# --- hex ------------------------------------------------------------------------------------------


def _hex(data: bytes, limits: RenderLimits) -> str:
    shown = data[: limits.max_hex_bytes]
    lines = []
    for off in range(0, len(shown), 16):
        chunk = shown[off : off + 16]
        hexes = " ".join(f"{b:02x}" for b in chunk)
        text = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in chunk)
        lines.append(f"{off:08x}  {hexes:<47}  {text}")
    note = ""
    if len(data) > len(shown):
        note = _note(
            _t("hex preview of the first %(shown)s of %(total)s bytes")
            % {"shown": _n(len(shown)), "total": _n(len(data))}
        )
    return _pre("\n".join(lines), limits, "hdh-hex") + note


# --- tables ---------------------------------------------------------------------------------------

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\Z")


def is_formula(value: Any) -> bool:
    """Would a spreadsheet treat this cell as a formula (CSV/formula injection)?"""
    if not isinstance(value, str) or not value:
        return False
    return value.startswith(_FORMULA_START) and not _NUMBER.match(value.strip())


def _cell(value: Any, tag: str = "td") -> str:
    text = "" if value is None else str(value)
    if is_formula(text):
        return (
            f'<{tag} class="hdh-formula" title="{_esc(_t("would run as a spreadsheet formula"))}">'
            f"⚠ {_esc(text)}</{tag}>"
        )
    return f"<{tag}>{_esc(text)}</{tag}>"


def _table(
    header: Sequence[Any] | None,
    rows: Iterable[Sequence[Any]],
    *,
    total_rows: int | None,
    limits: RenderLimits,
) -> str:
    out = ['<table class="hdh-table">']
    formulas = 0
    ncols = 0
    if header is not None:
        ncols = len(header)
        out.append("<thead><tr>")
        out.extend(_cell(h, "th") for h in header[: limits.max_columns])
        out.append("</tr></thead>")
        formulas += sum(is_formula(h) for h in header)
    out.append("<tbody>")
    shown = 0
    for row in rows:
        if shown >= limits.max_rows:
            break
        ncols = max(ncols, len(row))
        formulas += sum(is_formula(v) for v in row)
        out.append("<tr>" + "".join(_cell(v) for v in row[: limits.max_columns]) + "</tr>")
        shown += 1
    out.append("</tbody></table>")
    notes = []
    if total_rows is not None and total_rows > shown:
        notes.append(
            _note(
                _t("showing the first %(shown)s of %(total)s rows")
                % {"shown": _n(shown), "total": _n(total_rows)}
            )
        )
    if ncols > limits.max_columns:
        notes.append(
            _note(
                _t("showing the first %(shown)s of %(total)s columns")
                % {"shown": limits.max_columns, "total": ncols}
            )
        )
    if formulas:
        notes.insert(
            0,
            _warn(
                _t(
                    "%(count)s cell(s) shown would run as spreadsheet formulas (marked ⚠):"
                    " formula injection"
                )
                % {"count": formulas}
            ),
        )
    return "".join(notes) + "".join(out)


def _csv_block(data: bytes, name: str, limits: RenderLimits) -> str:
    text = _decode(data)
    if text is None:
        return _warn(_t("not UTF-8 text: shown as hex")) + _hex(data, limits)
    delimiter = "\t" if name.lower().endswith(".tsv") else ","
    if delimiter == ",":
        try:
            delimiter = csv.Sniffer().sniff(text[:8192], delimiters=",;\t|").delimiter
        except csv.Error:
            delimiter = ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = next(reader, None)
    if header is None:
        return _note(_t("empty table"))
    body: list[list[str]] = []
    total = hidden_formulas = 0
    for row in reader:  # stream: keep the first rows, but look at every cell
        total += 1
        if len(body) < limits.max_rows:
            body.append(row)
        else:
            hidden_formulas += sum(is_formula(v) for v in row)
    parts = [
        _note(
            _t("%(rows)s rows × %(columns)s columns, delimiter %(delimiter)r")
            % {"rows": _n(total), "columns": len(header), "delimiter": delimiter}
        )
    ]
    if hidden_formulas:
        parts.append(
            _warn(
                _t("%(count)s more formula cell(s) in the rows not shown (⚠ below)")
                % {"count": hidden_formulas}
            )
        )
    parts.append(_table(header, body, total_rows=total, limits=limits))
    return "".join(parts)


def _parquet_block(data: bytes, limits: RenderLimits) -> str:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(io.BytesIO(data))
        schema = pf.schema_arrow
        total = pf.metadata.num_rows
        rows: list[list[Any]] = []
        for batch in pf.iter_batches(batch_size=limits.max_rows):
            rows = [list(r.values()) for r in batch.to_pylist()][: limits.max_rows]
            break
        kv = {
            k.decode("utf-8", "replace"): v.decode("utf-8", "replace")
            for k, v in (pf.metadata.metadata or {}).items()
        }
    except Exception as exc:  # pyarrow raises several types on corrupt files
        return _warn(
            _t("not a readable Parquet file (%(error)s)")
            % {"error": f"{type(exc).__name__}: {exc}"}
        ) + _hex(data, limits)
    parts = [
        _note(
            _t("%(rows)s rows × %(columns)s columns")
            % {"rows": _n(total), "columns": len(schema.names)}
        ),
        _table(schema.names, rows, total_rows=total, limits=limits),
        '<div class="hdh-meta"><p>Column types</p>',
        _json({f.name: str(f.type) for f in schema}, limits),
        "</div>",
    ]
    if kv:
        parts += ['<div class="hdh-meta"><p>Parquet key-value metadata</p>', _json(kv, limits)]
        parts.append("</div>")
    return "".join(parts)


def _xlsx_block(data: bytes, limits: RenderLimits) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            unpacked = sum(i.file_size for i in zf.infolist())
    except zipfile.BadZipFile as exc:
        return _warn(_t("not an XLSX (zip) file: %(error)s") % {"error": exc}) + _hex(data, limits)
    if unpacked > limits.max_xlsx_uncompressed:
        return _warn(
            _t("XLSX unpacks to %(size)s bytes (limit %(limit)s): not opened (zip bomb?)")
            % {"size": _n(unpacked), "limit": _n(limits.max_xlsx_uncompressed)}
        ) + _hex(data, limits)
    from openpyxl import load_workbook

    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    except Exception as exc:  # openpyxl raises many types on hostile workbooks
        return _warn(
            _t("not a readable XLSX file (%(error)s)") % {"error": f"{type(exc).__name__}: {exc}"}
        ) + _hex(data, limits)
    parts = []
    try:
        for ws in wb.worksheets:
            state = getattr(ws, "sheet_state", "visible")
            title = _t("Sheet %(title)r") % {"title": ws.title}
            parts.append(f"<h4>{_esc(title)}</h4>")
            if state != "visible":
                parts.append(_warn(_t("this sheet is %(state)s in Excel") % {"state": state}))
            it = ws.iter_rows(values_only=True)
            head = next(it, None)
            body: list[tuple[Any, ...]] = []
            count = 0
            hidden_formulas = 0
            for row in it:
                count += 1
                if len(body) < limits.max_rows:
                    body.append(row)
                else:
                    hidden_formulas += sum(is_formula(v) for v in row)
            if hidden_formulas:
                parts.append(
                    _warn(
                        _t("%(count)s more formula cell(s) in the rows not shown")
                        % {"count": hidden_formulas}
                    )
                )
            parts.append(
                _table(list(head) if head else None, body, total_rows=count, limits=limits)
            )
    finally:
        wb.close()
    parts.append(_xlsx_parts(data, limits))
    return "".join(parts)


#: Workbook parts a spreadsheet does not show in its cells: comments, embedded files, macros,
#: links to other workbooks, custom XML — where data can hide.
_XLSX_UNUSUAL = re.compile(
    r"(comments|threadedComments|embeddings|vbaProject|externalLinks|customXml|activeX|"
    r"oleObject|persons|people)",
    re.IGNORECASE,
)


def _xlsx_parts(data: bytes, limits: RenderLimits) -> str:
    """Every part of the workbook (name, size); unusual ones flagged, comments' text shown."""
    rows: list[tuple[str, str]] = []
    notes = []
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for info in zf.infolist():
            unusual = bool(_XLSX_UNUSUAL.search(info.filename))
            rows.append((("⚠ " if unusual else "") + info.filename, f"{info.file_size:,} bytes"))
            if unusual and "comments" in info.filename.lower():
                # the text runs of a comments part, read without an XML parser (no entities)
                xml = zf.read(info).decode("utf-8", "replace")
                runs = re.findall(r"<(?:\w+:)?t(?:\s[^>]*)?>([^<]*)</(?:\w+:)?t>", xml)
                text = " | ".join(html.unescape(r) for r in runs if r.strip())
                notes.append(f"<p>{_esc(info.filename)}</p>" + _pre(text, limits))
    flagged = sum(1 for name, _ in rows if name.startswith("⚠"))
    summary = _t("Workbook parts (%(count)s)") % {"count": len(rows)}
    head = f"<details{' open' if flagged else ''}><summary>{_esc(summary)}</summary>"
    out = [head, _kv_table(rows), "</details>"]
    if flagged:
        out.insert(
            0,
            _warn(
                _t("%(count)s workbook part(s) a spreadsheet does not show in cells")
                % {"count": flagged}
            ),
        )
    return "".join(out + notes)


# --- notebooks ------------------------------------------------------------------------------------

_CELL_KEYS = {"cell_type", "source", "metadata", "outputs", "execution_count", "attachments", "id"}
_OUTPUT_KEYS = {
    "output_type", "data", "metadata", "execution_count", "name", "text", "ename", "evalue",
    "traceback",
}  # fmt: skip


def _join(value: Any) -> str:
    if isinstance(value, list):
        return "".join(str(v) for v in value)
    return "" if value is None else str(value)


def _mime_block(mime: str, value: Any, limits: RenderLimits) -> str:
    """One representation of an output or attachment, shown without ever being interpreted."""
    head = f'<div class="hdh-mime"><p class="hdh-mimetype">{_esc(mime)}</p>'
    if mime == "text/html":
        body = _html_block(_join(value), limits)
    elif mime in ("image/png", "image/jpeg"):
        raw = _join(value)
        try:
            data = base64.b64decode(raw.encode("ascii"), validate=False)
        except (binascii.Error, UnicodeEncodeError) as exc:
            body = _warn(_t("undecodable base64 image: %(error)s") % {"error": exc}) + _pre(
                raw, limits
            )
        else:
            body = _image_block(data, limits, declared=mime)
    elif isinstance(value, dict | list) and not (
        isinstance(value, list) and all(isinstance(v, str) for v in value)
    ):
        body = _json(value, limits)  # application/json, widget state, ...
    else:
        text = _join(value)
        if mime == "image/svg+xml":
            body = _note(_t("SVG is shown as its source, never rendered")) + _pre(text, limits)
        elif mime in ("application/javascript", "text/javascript"):
            body = _warn(_t("JavaScript output: shown as text, never run")) + _pre(text, limits)
        else:
            body = _pre(text, limits)
    return head + body + "</div>"


def _extra(obj: dict[str, Any], known: set[str], limits: RenderLimits) -> str:
    extra = {k: v for k, v in obj.items() if k not in known}
    if not extra:
        return ""
    return _warn(_t("fields a notebook front-end would not show:")) + _json(extra, limits)


def _meta(value: Any, label: str, limits: RenderLimits) -> str:
    if not value:
        return ""
    return f'<div class="hdh-meta"><p>{_esc(_t(label))}</p>{_json(value, limits)}</div>'


def _output_block(i: int, out: dict[str, Any], limits: RenderLimits) -> str:
    kind = str(out.get("output_type", "?"))
    label = _t("output %(number)s: %(kind)s") % {"number": i + 1, "kind": kind}
    parts = [f'<div class="hdh-output"><p class="hdh-label">{_esc(label)}</p>']
    if kind == "stream":
        stream = _t("stream %(name)s") % {"name": out.get("name", "")}
        parts.append(f"<p>{_esc(stream)}</p>")
        parts.append(_pre(_join(out.get("text")), limits))
    elif kind == "error":
        parts.append(_pre(f"{out.get('ename', '')}: {out.get('evalue', '')}", limits))
        trace = "\n".join(_ANSI.sub("", str(line)) for line in out.get("traceback") or [])
        parts.append(_pre(trace, limits))
    data = out.get("data")
    if isinstance(data, dict):
        if len(data) > 1:
            parts.append(
                _note(
                    _t("%(count)s representations, all shown: %(types)s")
                    % {"count": len(data), "types": ", ".join(data)}
                )
            )
        parts.extend(_mime_block(str(m), v, limits) for m, v in data.items())
    parts.append(_meta(out.get("metadata"), N_("output metadata"), limits))
    parts.append(_extra(out, _OUTPUT_KEYS, limits))
    parts.append("</div>")
    return "".join(parts)


def _cell_block(i: int, cell: dict[str, Any], limits: RenderLimits) -> str:
    kind = str(cell.get("cell_type", "?"))
    count = cell.get("execution_count")
    label = _t("cell %(number)s: %(kind)s") % {"number": i + 1, "kind": kind} + (
        f" [{count}]" if count is not None else ""
    )
    parts = [
        f'<section class="hdh-cell hdh-cell-{_esc(kind)}"><p class="hdh-label">{_esc(label)}</p>',
        _pre(_join(cell.get("source")), limits, "hdh-source"),
    ]
    attachments = cell.get("attachments") or {}
    if attachments:
        parts.append(_warn(_t("%(count)s attachment(s), all shown") % {"count": len(attachments)}))
        for name, bundle in attachments.items():
            attachment = _t("attachment %(name)s") % {"name": name}
            parts.append(f'<div class="hdh-attachment"><p>{_esc(attachment)}</p>')
            if isinstance(bundle, dict):
                parts.extend(_mime_block(str(m), v, limits) for m, v in bundle.items())
            else:
                parts.append(_json(bundle, limits))
            parts.append("</div>")
    for j, out in enumerate(cell.get("outputs") or []):
        if isinstance(out, dict):
            parts.append(_output_block(j, out, limits))
        else:
            parts.append(_json(out, limits))
    parts.append(_meta(cell.get("metadata"), N_("cell metadata"), limits))
    parts.append(_extra(cell, _CELL_KEYS, limits))
    parts.append("</section>")
    return "".join(parts)


def render_notebook(data: bytes, limits: RenderLimits = DEFAULT_LIMITS) -> str:
    """A notebook, untrusted: every cell, output, mime bundle, metadata and attachment."""
    import nbformat

    if len(data) > limits.max_notebook_bytes:
        return _warn(
            _t("notebook of %(size)s bytes is over the rendering limit") % {"size": _n(len(data))}
        ) + _hex(data, limits)
    text = _decode(data)
    if text is None:
        return _warn(_t("not UTF-8: not a notebook")) + _hex(data, limits)
    problems = ""
    try:
        raw = json.loads(text)
        if not isinstance(raw, dict):
            raise ValueError("a notebook is a JSON object")
        nb = nbformat.reads(text, as_version=4)  # upgrades v3; never marks anything trusted
        try:
            nbformat.validate(nb)
        except nbformat.ValidationError as exc:
            problems = _warn(_t("notebook does not validate: %(error)s") % {"error": exc.message})
    except Exception as exc:  # JSON or nbformat errors: show the raw file instead
        return _warn(
            _t("not a readable notebook (%(error)s)") % {"error": f"{type(exc).__name__}: {exc}"}
        ) + _pre(text, limits)
    cells = nb.get("cells") or []
    parts = [
        '<div class="hdh-notebook">',
        problems,
        _note(
            _t("notebook format %(version)s")
            % {"version": f"{nb.get('nbformat')}.{nb.get('nbformat_minor')}"}
        ),
        _note(_t("%(count)s cells") % {"count": len(cells)}),
        _meta(nb.get("metadata"), N_("notebook metadata"), limits),
        _extra(dict(nb), {"cells", "metadata", "nbformat", "nbformat_minor"}, limits),
    ]
    if len(cells) > limits.max_cells:
        parts.append(
            _warn(
                _t(
                    "only the first %(shown)s of %(total)s cells are shown:"
                    " too large to review here in full"
                )
                % {"shown": _n(limits.max_cells), "total": _n(len(cells))}
            )
        )
    parts.extend(_cell_block(i, c, limits) for i, c in enumerate(cells[: limits.max_cells]))
    parts.append("</div>")
    return "".join(parts)


# --- dispatch -------------------------------------------------------------------------------------

_TEXT_SUFFIXES = {
    ".txt", ".md", ".py", ".r", ".sql", ".json", ".yaml", ".yml", ".toml", ".log", ".tex",
    ".rmd", ".qmd", ".sh", ".do", ".sas", ".ini", ".cfg", ".svg", ".js", ".xml",
}  # fmt: skip


def _decode(data: bytes) -> str | None:
    if b"\x00" in data[:65536]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def render_file(name: str, data: bytes, limits: RenderLimits = DEFAULT_LIMITS) -> str:
    """One HTML fragment showing ``data`` (the file called ``name``) to a reviewer, inertly.

    The kind is chosen from the name's suffix; content that does not match its
    suffix is shown as text or hex with a warning, never interpreted otherwise.
    """
    suffix = PurePosixPath(name).suffix.lower()
    if suffix == ".ipynb":
        body = render_notebook(data, limits)
    elif suffix in (".html", ".htm"):
        text = _decode(data)
        body = (
            _html_block(text, limits)
            if text is not None
            else _warn(_t("not UTF-8 text")) + _hex(data, limits)
        )
    elif suffix in (".csv", ".tsv"):
        body = _csv_block(data, name, limits)
    elif suffix == ".parquet":
        body = _parquet_block(data, limits)
    elif suffix == ".xlsx":
        body = _xlsx_block(data, limits)
    elif suffix in (".png", ".jpg", ".jpeg"):
        body = _image_block(data, limits)
    else:
        text = _decode(data)
        if text is not None and (suffix in _TEXT_SUFFIXES or text.isprintable() or "\n" in text):
            if suffix == ".svg":
                body = _note(_t("SVG is shown as its source, never rendered")) + _pre(text, limits)
            else:
                body = _pre(text, limits)
        else:
            body = _note(_t("binary file: hex preview")) + _hex(data, limits)
    return (
        f'<article class="hdh-file"><h3 class="hdh-filename">{_esc(name)}</h3>'
        f'<p class="hdh-note">{_esc(_t("%(size)s bytes") % {"size": _n(len(data))})}</p>'
        f"{body}</article>"
    )


# --- the reviewer page ----------------------------------------------------------------------------

PAGE_STYLE = "\n".join(
    [
        "body{font-family:system-ui,sans-serif;margin:1.5rem;max-width:80rem;color:#1b1b1b}",
        "pre{white-space:pre-wrap;word-break:break-word;background:#f6f6f6;padding:.5rem;"
        "border:1px solid #ddd;max-height:40rem;overflow:auto}",
        "table{border-collapse:collapse;margin:.5rem 0}",
        "td,th{border:1px solid #ccc;padding:.2rem .4rem;text-align:left;vertical-align:top}",
        ".hdh-warning{color:#8a1c00;font-weight:600}.hdh-note{color:#555}",
        ".hdh-formula{background:#ffe3d6}.hdh-invisible{background:#ffd400;color:#000}",
        ".hdh-file,.hdh-cell,.hdh-output,.hdh-mime{border-left:3px solid #ccc;"
        "padding-left:.6rem;margin:.6rem 0}",
        ".hdh-sanitised{border:1px dashed #999;padding:.4rem}",
        ".hdh-actions form{margin:.4rem 0;padding:.4rem;border:1px solid #ccc}",
        ".hdh-error{color:#8a1c00;font-weight:600;border:2px solid #8a1c00;padding:.4rem}",
        ".hdh-label,.hdh-mimetype{font-family:monospace;color:#444}",
        ".status-pass{color:#1d6b1d}.status-fail{color:#8a1c00}.status-review{color:#8a5a00}",
        "img{max-width:100%;height:auto;border:1px solid #ccc}",
    ]
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(PAGE_STYLE.encode()).digest()).decode()
#: The reviewer page's Content-Security-Policy: no script at all, only this page's own
#: stylesheet (by hash), images only from data: URLs, nothing fetched, no forms, no framing.
PAGE_CSP = (
    f"default-src 'none'; img-src data:; style-src 'sha256-{_STYLE_HASH}'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


#: The CSP of one file's page (:func:`file_page`, in the review widget's frame): the same as
#: :data:`PAGE_CSP`, plus ``sandbox`` (an opaque origin), and framable by the same origin only.
FILE_CSP = (
    f"sandbox; default-src 'none'; img-src data:; style-src 'sha256-{_STYLE_HASH}'; "
    "frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
)


def file_page(
    name: str,
    data: bytes,
    limits: RenderLimits = DEFAULT_LIMITS,
    *,
    gettext: Callable[[str], str] | None = None,
    lang: str = "en",
) -> str:
    """A whole HTML document of one file rendered by :func:`render_file` (its notes in the
    page's language: ``gettext``), with only :data:`PAGE_STYLE` inline. Serve it with
    :data:`FILE_CSP`."""
    token = _GETTEXT.set(gettext or _same)
    try:
        body = render_file(name, data, limits)
    finally:
        _GETTEXT.reset(token)
    return (
        f'<!DOCTYPE html><html lang="{_esc(lang)}"><head><meta charset="utf-8">'
        f"<title>{_esc(name)}</title><style>{PAGE_STYLE}</style></head><body>{body}</body></html>"
    )


def N_(message: str) -> str:  # noqa: N802  (the gettext convention)
    """Mark a label of the review page for the control plane's message catalogue
    (``api/locale/``): :func:`review_page` translates it through its ``gettext``."""
    return message


def _same(message: str) -> str:
    return message


#: The review page's labels of a request's and a file's fields (English: the msgids).
FIELD_LABELS = {
    "project": N_("project"),
    "author": N_("author"),
    "state": N_("state"),
    "round": N_("round"),
    "created_at": N_("created at"),
    "updated_at": N_("updated at"),
    "decided_by": N_("decided by"),
    "viewer": N_("your role"),
    "role": N_("role"),
    "sha256": "sha256",
    "size": N_("size"),
    "mtime": N_("modified at"),
    "snapshot_at": N_("snapshot at"),
    "added_by": N_("added by"),
    "controls": N_("controls"),
    "vote_count": N_("votes"),
}
#: The values of a request's state, a file's role and checks, a vote, as the pages name them.
VALUE_LABELS = {
    "draft": N_("draft"),
    "submitted": N_("submitted"),
    "partially_reviewed": N_("partially reviewed"),
    "reviewed": N_("reviewed"),
    "approved": N_("approved"),
    "returned": N_("returned"),
    "rejected": N_("rejected"),
    "releasing": N_("releasing"),
    "released": N_("released"),
    "withdrawn": N_("withdrawn"),
    "pass": N_("pass"),
    "fail": N_("fail"),
    "review": N_("review"),
    "not checked": N_("not checked"),
    "approve": N_("approve"),
    "changes": N_("changes"),
    "reject": N_("reject"),
    "output": N_("output"),
    "supporting": N_("supporting"),
    "code": N_("code"),
    "reviewer": N_("reviewer"),
    "operator": N_("operator"),
    "member": N_("member"),
    "public": N_("public"),
    "private": N_("private"),
}
#: The fields whose values :data:`VALUE_LABELS` names, and those that are times.
_LABELLED_VALUES = frozenset({"state", "viewer", "role"})
_TIMES = frozenset({"created_at", "updated_at", "mtime", "snapshot_at"})


def _kv_table(
    rows: Iterable[tuple[str, Any]],
    _: Callable[[str], str] = _same,
    *,
    fields: bool = False,
    when: Callable[[Any], str] | None = None,
) -> str:
    """A key-value table; with ``fields``, the keys are fields of :data:`FIELD_LABELS`, labelled
    in the page's language (their values too, for :data:`_LABELLED_VALUES`; times written by
    ``when``, if given)."""

    def key(k: str) -> str:
        return _(FIELD_LABELS[k]) if fields and k in FIELD_LABELS else k

    def value(k: str, v: Any) -> str:
        if fields and k in _LABELLED_VALUES and isinstance(v, str) and v in VALUE_LABELS:
            return _(VALUE_LABELS[v])
        if fields and when is not None and k in _TIMES:
            return when(v)
        return v if isinstance(v, str) else json.dumps(v)

    body = "".join(
        f"<tr><th>{_esc(key(k))}</th><td>{_esc(value(k, v))}</td></tr>"
        for k, v in rows
        if v not in (None, "", [], {})
    )
    return f'<table class="hdh-kv">{body}</table>'


def _checks_block(f: dict[str, Any], limits: RenderLimits, _: Callable[[str], str] = _same) -> str:
    status = str(f.get("check_status") or "not checked")
    report = f.get("check_report") or {}
    shown = _(VALUE_LABELS[status]) if status in VALUE_LABELS else status
    parts = [
        f"<p>{_esc(_('Automated checks:'))}"
        f' <strong class="status-{_esc(status)}">{_esc(shown)}</strong>'
    ]
    if report.get("summary"):
        # as the checks wrote it (English): marked so, like every value the workflow stored
        parts.append(
            f' — <span class="hdh-summary" lang="en">{_esc(str(report["summary"]))}</span>'
        )
    parts.append("</p>")
    if report.get("error"):
        parts.append(_warn(str(report["error"])))
    flags = report.get("flags") or []
    if flags:
        rows = "".join(
            f"<tr><td>{_esc(str(fl.get('severity', '')))}</td><td>{_esc(str(fl.get('rule', '')))}"
            f"</td><td>{_esc(str(fl.get('message', '')))}</td>"
            f"<td>{_esc(json.dumps(fl.get('location') or {}, sort_keys=True))}</td></tr>"
            for fl in flags
            if isinstance(fl, dict)
        )
        heads = "".join(
            f"<th>{_esc(_(h))}</th>"
            for h in (N_("severity"), N_("rule"), N_("message"), N_("where"))
        )
        parts.append(
            f'<table class="hdh-flags"><thead><tr>{heads}</tr></thead><tbody>{rows}</tbody></table>'
        )
    extra = {k: v for k, v in report.items() if k not in ("status", "summary", "flags", "error")}
    if extra:
        parts.append(f"<details><summary>{_esc(_('full check report'))}</summary>")
        parts.append(_json(extra, limits) + "</details>")
    return "".join(parts)


def _provenance_block(
    items: list[dict[str, Any]], limits: RenderLimits, _: Callable[[str], str] = _same
) -> str:
    if not items:
        return ""
    summary = _("Provenance (%(count)s entries)") % {"count": len(items)}
    parts = [f"<details><summary>{_esc(summary)}</summary>"]
    for item in items:
        kind = str(item.get("kind", "?"))
        if kind == "execution":
            label = _("execution #%(seq)s by %(user)s at %(time)s") % {
                "seq": item.get("seq"),
                "user": item.get("user"),
                "time": item.get("time"),
            }
            parts.append(f'<p class="hdh-label">{_esc(label)}</p>')
            parts.append(_pre(str(item.get("code", "")), limits, "hdh-source"))
            if item.get("truncated"):
                parts.append(_note(_("code truncated")))
        else:
            shown = {k: v for k, v in item.items() if k != "kind"}
            parts.append(f'<p class="hdh-label">{_esc(kind)}</p>{_kv_table(shown.items())}')
    parts.append("</details>")
    return "".join(parts)


def review_page(
    view: dict[str, Any],
    read_blob: Callable[[str], bytes | None],
    limits: RenderLimits = DEFAULT_LIMITS,
    *,
    actions_html: str = "",
    gettext: Callable[[str], str] | None = None,
    lang: str = "en",
    when: Callable[[Any], str] | None = None,
) -> str:
    """A whole HTML page for reviewers: a request view (``manager.get_request``), each file
    rendered inertly from its snapshot (``read_blob(sha256)``), checks, provenance, votes
    (as blinded in the view) and comments. Serve it with :data:`PAGE_CSP`.

    The files are rendered only when the view's ``viewer`` is in :data:`RENDERED_FOR`;
    for anyone else ``read_blob`` is never called and each file shows its metadata,
    checks and votes only.

    ``actions_html`` (trusted: built by the caller, everything in it escaped) is placed
    after the summary: the browser UI's forms (votes, decisions) and links.

    ``gettext`` translates the page's own labels (the control plane's catalogue for ``lang``;
    English without it), ``when`` writes its times for that language (ISO 8601 without it);
    what the files, the checks and the people wrote stays as written."""
    _ = gettext or _same
    token = _GETTEXT.set(_)  # the files' notes and labels in the page's language too
    try:
        return _review_page(view, read_blob, limits, actions_html, _, lang, when)
    finally:
        _GETTEXT.reset(token)


def _review_page(
    view: dict[str, Any],
    read_blob: Callable[[str], bytes | None],
    limits: RenderLimits,
    actions_html: str,
    _: Callable[[str], str],
    lang: str,
    when: Callable[[Any], str] | None,
) -> str:
    title = _("Export request #%(id)s: %(title)s") % {
        "id": view.get("id"),
        "title": view.get("title"),
    }
    rendered = view.get("viewer") in RENDERED_FOR
    parts = [
        f'<!DOCTYPE html><html lang="{_esc(lang)}"><head><meta charset="utf-8">',
        f"<title>{_esc(title)}</title><style>{PAGE_STYLE}</style></head><body>",
        f"<h1>{_esc(title)}</h1>",
        _kv_table(
            (
                (k, view.get(k))
                for k in (
                    "project",
                    "author",
                    "state",
                    "round",
                    "created_at",
                    "updated_at",
                    "decided_by",
                    "viewer",
                )
            ),
            _,
            fields=True,
            when=when,
        ),  # fmt: skip
        actions_html,
    ]
    if not rendered and view.get("files"):
        parts.append(
            _note(
                _(
                    "The files themselves are shown to the reviewers only: this page gives the"
                    " request's state, the automated check results (without the flagged values)"
                    " and the comments."
                )
            )
        )
    for f in view.get("files") or []:
        path = str(f.get("path"))
        parts.append(f'<section class="hdh-request-file"><h2>{_esc(path)}</h2>')
        parts.append(
            _kv_table(
                (
                    (k, f.get(k))
                    for k in (
                        "role",
                        "sha256",
                        "size",
                        "mtime",
                        "snapshot_at",
                        "added_by",
                        "controls",
                        "vote_count",
                    )
                ),
                _,
                fields=True,
                when=when,
            )  # fmt: skip
        )
        if f.get("context"):
            parts.append(
                f"<h3>{_esc(_('Context'))}</h3>{_kv_table((f.get('context') or {}).items())}"
            )
        parts.append(_checks_block(f, limits, _))
        votes = f.get("votes") or []
        if votes:
            parts.append(f"<h3>{_esc(_('Votes'))}</h3>")
            parts.append(
                _kv_table(
                    (str(v.get("reviewer")), _(VALUE_LABELS.get(str(v.get("decision")), "?")))
                    if str(v.get("decision")) in VALUE_LABELS
                    else (str(v.get("reviewer")), v.get("decision"))
                    for v in votes
                )
            )
        elif f.get("vote_count"):
            parts.append(
                _note(
                    _("%(count)s vote(s), hidden until both reviewers voted")
                    % {"count": f["vote_count"]}
                )
            )
        for e in f.get("exceptions") or []:
            parts.append(
                _warn(
                    _("exception by %(reviewer)s: %(reason)s")
                    % {"reviewer": e.get("reviewer"), "reason": e.get("reason")}
                )
            )
        if not rendered:
            parts.append("</section>")
            continue
        parts.append(_provenance_block(f.get("provenance") or [], limits, _))
        data = read_blob(str(f.get("sha256")))
        if data is None:
            parts.append(_warn(_("the snapshot of this file is missing")))
        else:
            parts.append(render_file(path, data, limits))
        parts.append("</section>")
    comments = view.get("comments") or []
    if comments:
        parts.append(f"<h2>{_esc(_('Comments'))}</h2>")
        for c in comments:
            visibility = str(c.get("visibility"))
            values = {
                "author": c.get("author"),
                "visibility": _(VALUE_LABELS[visibility])
                if visibility in VALUE_LABELS
                else visibility,
                "round": c.get("round"),
                "path": c.get("path"),
            }
            if c.get("path"):
                head = _("%(author)s (%(visibility)s, round %(round)s) on %(path)s") % values
            else:
                head = _("%(author)s (%(visibility)s, round %(round)s)") % values
            parts.append(f'<p class="hdh-label">{_esc(head)}</p>{_pre(str(c.get("body")), limits)}')
    parts.append("</body></html>")
    return "".join(parts)
