"""The extension's own translations reach JupyterLab: the `jupyterlab.locale` entry point
(pyproject.toml) names the package, jupyterlab_server's translation utilities find
jupyterlab_hdh/locale/fr_FR/LC_MESSAGES/jupyterlab_hdh.json, merge it into the French
language pack (jupyterlab-language-pack-fr-FR, a dependency) and the .json agrees with its
source, the .po (scripts/po2json)."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

from jupyterlab_server import translation_utils as tu

import jupyterlab_hdh

ROOT = Path(__file__).resolve().parent.parent
DOMAIN = "jupyterlab_hdh"


def test_entry_point_names_the_package() -> None:
    eps = {ep.name: ep for ep in entry_points(group=tu.JUPYTERLAB_LOCALE_ENTRY)}
    assert DOMAIN in eps, sorted(eps)
    assert eps[DOMAIN].load() is jupyterlab_hdh


def test_french_catalogue_found_by_jupyterlab_server() -> None:
    found, message = tu.get_installed_packages_locale("fr_FR")
    assert not message.strip(), message
    data = found[DOMAIN]
    assert data[""]["domain"] == DOMAIN
    assert data[""]["plural_forms"] == "nplurals=2; plural=(n > 1);"
    assert data["My data"] == ["Mes données"]
    assert data["%1 file"] == ["%1 fichier", "%1 fichiers"]
    # no English catalogue is shipped: English is the source strings
    assert DOMAIN not in tu.get_installed_packages_locale("en_US")[0]


def test_french_language_pack_merges_the_extension() -> None:
    """What `GET /lab/api/translations/fr_FR` answers: JupyterLab's French pack (installed
    as a dependency) with the extension's domain in it."""
    packs, _ = tu.get_language_packs()
    assert "fr_FR" in packs, sorted(packs)
    data, message = tu.get_language_pack("fr_FR")
    assert not message.strip(), message
    assert "jupyterlab" in data  # JupyterLab itself in French
    assert data[DOMAIN]["Export requests"] == ["Demandes d'export"]


def test_json_agrees_with_po() -> None:
    run = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "po2json"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
