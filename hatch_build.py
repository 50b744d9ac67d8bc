"""Hatch build hook: a wheel ships the built JupyterLab extension where any JupyterLab finds it.

Only standard wheels (``python -m build``) get ``share/jupyter/labextensions/jupyterlab-hdh``;
an editable install must not, or a stale copy taken at install time would shadow the bundle
that ``scripts/build-labextension`` rebuilds in ``jupyterlab_hdh/labextension/`` (the
sandboxes name that folder through ``--LabApp.extra_labextensions_path``).
"""

from __future__ import annotations

from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

BUNDLE = "jupyterlab_hdh/labextension/jupyterlab-hdh"
TARGET = "share/jupyter/labextensions/jupyterlab-hdh"


class LabExtensionDataHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name == "wheel" and version == "standard":
            build_data["shared_data"][BUNDLE] = TARGET
