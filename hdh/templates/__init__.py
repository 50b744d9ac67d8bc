"""Template studies: parameterised notebooks run with papermill and reported with nbconvert.

Each template is ``notebooks/<name>.ipynb`` here (``notebooks/templates/`` in the repository
is a link to it), with a cell tagged ``parameters`` and its title and description in the
notebook metadata (``hdh.template``). A template computes its numbers with a tested
function of :mod:`hdh.studies`, writes ``headline.json`` and its tables through the
airlock's disclosure-aware writer (CSV plus ``.sdc.json`` sidecar) into ``output_dir``.

:func:`run` executes one in the current environment (a sandbox terminal, or any machine
with ``HDH_DATA_ROOT`` set) into a new folder: ``NAME.ipynb`` executed, ``report.html``
(no input cells, no external assets), ``headline.json`` and the tables. It writes into a
hidden sibling folder renamed at the end, so a failed run leaves nothing behind. Inside a
sandbox it then opens a draft export request holding the tables (outputs), their sidecars
(supporting) and the executed notebook (code). ``hdh template list`` / ``hdh template run``
are the command line.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hdh.errors import BadArgument, HDHError

TEMPLATE_DIR = Path(__file__).resolve().parent / "notebooks"
_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script\s*>", re.IGNORECASE | re.DOTALL)
#: Parameters every template has, set by :func:`run` (not by ``-p``).
RESERVED = ("output_dir", "interactive")


class TemplateFailed(HDHError):
    """A template's notebook raised: the cell and the error, in one line."""


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str  # papermill's inferred type name: int, float, str, bool, None…
    default: str  # as written in the parameters cell
    help: str = ""


@dataclass(frozen=True)
class Template:
    name: str
    title: str
    description: str
    path: Path
    parameters: dict[str, Parameter] = field(default_factory=dict)


def _load(path: Path) -> Template:
    """The template at ``path``, read once per version of the file (papermill's import and
    the notebook's parsing cost about two seconds the first time)."""
    return _parse(path, path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _parse(path: Path, mtime_ns: int) -> Template:
    import nbformat
    import papermill

    nb = nbformat.read(path, as_version=4)
    meta = nb.metadata.get("hdh", {}).get("template", {})
    inspected = papermill.inspect_notebook(str(path))
    params = {
        name: Parameter(
            name, str(p.get("inferred_type_name") or "None"), str(p["default"]), p.get("help", "")
        )
        for name, p in inspected.items()
        if name not in RESERVED
    }
    return Template(
        name=path.stem,
        title=str(meta.get("title", path.stem)),
        description=str(meta.get("description", "")),
        path=path,
        parameters=params,
    )


def templates() -> list[Template]:
    """Every template, by name."""
    return [_load(p) for p in sorted(TEMPLATE_DIR.glob("*.ipynb"))]


def template_path(name: str) -> Path:
    """The notebook of template ``name``, or :class:`hdh.BadArgument` listing the templates."""
    path = TEMPLATE_DIR / f"{name}.ipynb"
    if not isinstance(name, str) or "/" in name or not path.is_file():
        names = ", ".join(p.stem for p in sorted(TEMPLATE_DIR.glob("*.ipynb")))
        raise BadArgument(f"no template {name!r}; templates: {names}")
    return path


def get(name: str) -> Template:
    """The template ``name``, or :class:`hdh.BadArgument` listing the templates there are."""
    return _load(template_path(name))


def _convert(param: Parameter, text: Any) -> Any:
    """A ``-p`` value (text) as the parameter's type; non-text values are kept."""
    if not isinstance(text, str):
        return text
    kind = param.type.lower()
    try:
        if text == "None" and (kind == "none" or "none" in param.default.lower()):
            return None
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
        if kind == "bool":
            if text.lower() in ("true", "1", "yes"):
                return True
            if text.lower() in ("false", "0", "no"):
                return False
            raise ValueError(text)
    except ValueError:
        article = "an" if kind[:1] in "aeiou" else "a"
        raise BadArgument(
            f"parameter {param.name} takes {article} {kind} (default {param.default}), not {text!r}"
        ) from None
    return text


def parameters_for(template: Template, given: dict[str, Any]) -> dict[str, Any]:
    """``given`` checked against the template's parameters and converted to their types."""
    out = {}
    for key, value in given.items():
        if key not in template.parameters:
            known = ", ".join(template.parameters) or "none"
            raise BadArgument(
                f"template {template.name} has no parameter {key!r} (it has: {known})"
            )
        out[key] = _convert(template.parameters[key], value)
    return out


@dataclass
class RunResult:
    template: str
    output: Path
    notebook: Path
    report: Path
    headline: dict[str, Any]
    tables: list[Path]
    request_id: int | None = None


def _in_sandbox() -> bool:
    """A bridge to the control plane is there (the socket on one machine, the guard's URL
    on a cluster): a run then opens an export request."""
    from hdh._bridge import bridge_configured

    return bridge_configured()


def report_html(notebook: Path) -> str:
    """The executed notebook as one HTML page without input cells or external assets."""
    import nbformat
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        embed_images=True,
    )
    body, _ = exporter.from_notebook_node(nbformat.read(notebook, as_version=4))
    # a static report runs no script: the template's loaders (require.js, MathJax, Mermaid,
    # widgets) would fetch from CDNs; figures are embedded images, tables plain HTML
    return _SCRIPT.sub("", str(body))


def run(
    name: str,
    output: str | os.PathLike[str],
    parameters: dict[str, Any] | None = None,
    *,
    export: bool | None = None,
    progress: bool = False,
) -> RunResult:
    """Run template ``name`` into the new folder ``output`` (see the module docstring).

    ``parameters``: values for the parameters cell (text from the command line is converted
    to each parameter's type). ``export``: open a draft export request with the outputs;
    by default when running in a sandbox.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    template = get(name)
    values = parameters_for(template, parameters or {})
    out = Path(output).absolute()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BadArgument(f"{out} already exists and is not an empty folder: choose a new one")
    if not out.parent.is_dir():
        raise BadArgument(f"{out.parent} is not a folder")
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        notebook = work / f"{template.name}.ipynb"
        try:  # the notebook writes into its working folder, renamed to ``out`` at the end
            papermill.execute_notebook(
                str(template.path),
                str(notebook),
                parameters={**values, "output_dir": ".", "interactive": False},
                kernel_name="python3",
                progress_bar=progress,
                cwd=str(work),
                report_mode=False,
                # quiet kernel: its transport warning is noise on a researcher's terminal
                extra_arguments=["--IPKernelApp.log_level=ERROR"],
            )
        except PapermillExecutionError as exc:
            raise TemplateFailed(
                f"template {template.name} failed in cell {exc.exec_count}:"
                f" {exc.ename}: {exc.evalue}".replace("\n", " ")
            ) from None
        (work / "report.html").write_text(report_html(notebook), encoding="utf-8")
        if out.exists():
            out.rmdir()  # empty (checked above): replaced by the finished folder
        headline_path = work / "headline.json"
        if not headline_path.is_file():
            raise TemplateFailed(f"template {template.name} wrote no headline.json")
        headline = json.loads(headline_path.read_text())
        umask = os.umask(0)
        os.umask(umask)
        work.chmod(0o777 & ~umask)  # mkdtemp made it private
        work.rename(out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    result = RunResult(
        template=template.name,
        output=out,
        notebook=out / f"{template.name}.ipynb",
        report=out / "report.html",
        headline=headline,
        tables=sorted(out.glob("*.csv")),
    )
    if export if export is not None else _in_sandbox():
        result.request_id = _open_request(template, result)
    return result


def _open_request(template: Template, result: RunResult) -> int:
    """A draft export request with the run's tables, their sidecars and the notebook."""
    from hdh import airlock

    request = airlock.new_request(f"{template.title} ({dt.date.today().isoformat()})")
    for table in result.tables:
        request.add(table, role="output", context=f"template {template.name}")
        sidecar = table.with_name(table.name + ".sdc.json")
        if sidecar.exists():
            request.add(sidecar, role="supporting")
    request.add(result.notebook, role="code")
    return request.id
