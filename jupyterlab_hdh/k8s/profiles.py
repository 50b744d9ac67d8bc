"""Compute profiles of project pods on Kubernetes: what a sandbox may ask of a node.

A profile names an image and the resources of the pod (CPU, memory, GPUs) and where it may
be scheduled (node selector, tolerations). The three defaults follow ``images/``: ``cpu``
(the base image), ``gpu`` (RAPIDS cuDF on CUDA, one ``nvidia.com/gpu`` on a GPU node) and
``spark`` (the base image sized for a Spark driver, and ``executors`` worker pods of the
project that the hub starts beside it: :mod:`jupyterlab_hdh.k8s.spark`).
An operator replaces them in the hub's configuration (``ProjectKubeSpawner.profiles``);
:func:`parse_profiles` checks what they wrote and names the bad key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jupyterlab_hdh.errors import HdhError

NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
#: Kubernetes quantities as KubeSpawner writes them (``2``, ``500m``; ``4G``, ``512Mi``)
CPU_RE = re.compile(r"^(?:\d+(?:\.\d+)?|\d+m)$")
MEMORY_RE = re.compile(r"^\d+(?:\.\d+)?(?:[KMGT]i?)?$")
#: the label node pools with GPUs carry (NVIDIA's GPU feature discovery)
GPU_NODE_LABEL = "nvidia.com/gpu.present"
GPU_RESOURCE = "nvidia.com/gpu"


class ProfileError(HdhError):
    """A compute profile the configuration got wrong (the message names it and the key)."""


@dataclass(frozen=True)
class ComputeProfile:
    """One choice of compute for a project pod."""

    name: str
    display_name: str
    image: str
    cpu_limit: float
    cpu_guarantee: float
    mem_limit: str
    mem_guarantee: str
    gpus: int = 0
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Mapping[str, str], ...] = ()
    #: Spark: worker pods started with the server (0: none; Spark then runs in the pod)
    executors: int = 0
    executor_cpu: float = 4
    executor_memory: str = "16G"
    executor_image: str = ""  # default: SPARK_IMAGE

    @property
    def spark(self) -> bool:
        return self.executors > 0

    @property
    def spark_image(self) -> str:
        return self.executor_image or SPARK_IMAGE

    def __post_init__(self) -> None:
        object.__setattr__(self, "node_selector", dict(self.node_selector))
        object.__setattr__(self, "tolerations", tuple(dict(t) for t in self.tolerations))
        self.check()

    def check(self) -> None:
        where = f"compute profile {self.name!r}"
        if not NAME_RE.match(self.name):
            raise ProfileError(f"{where}: name must be lowercase letters, digits and '-'")
        if not self.image or any(c.isspace() for c in self.image):
            raise ProfileError(f"{where}: image must be an image reference")
        if ":" not in self.image.rsplit("/", 1)[-1] and "@" not in self.image:
            raise ProfileError(f"{where}: image {self.image!r} must be pinned (a tag or digest)")
        if not 0 < self.cpu_guarantee <= self.cpu_limit:
            raise ProfileError(f"{where}: needs 0 < cpu_guarantee <= cpu_limit")
        for key in ("mem_limit", "mem_guarantee"):
            if not MEMORY_RE.match(str(getattr(self, key))):
                raise ProfileError(f"{where}: {key} {getattr(self, key)!r} is not a quantity")
        if not 0 <= self.gpus <= 8:
            raise ProfileError(f"{where}: gpus is between 0 and 8")
        if not 0 <= self.executors <= MAX_EXECUTORS:
            raise ProfileError(f"{where}: executors is between 0 and {MAX_EXECUTORS}")
        if self.spark:
            if not 0 < self.executor_cpu <= 64:
                raise ProfileError(f"{where}: executor_cpu is between 0 and 64")
            if not MEMORY_RE.match(str(self.executor_memory)):
                raise ProfileError(
                    f"{where}: executor_memory {self.executor_memory!r} is not a quantity"
                )
            image = self.spark_image
            if any(c.isspace() for c in image) or (
                ":" not in image.rsplit("/", 1)[-1] and "@" not in image
            ):
                raise ProfileError(f"{where}: executor_image {image!r} must be pinned")

    def resource_limits(self) -> dict[str, str]:
        """Extra resources (GPUs) as KubeSpawner's ``extra_resource_limits``."""
        return {GPU_RESOURCE: str(self.gpus)} if self.gpus else {}

    def scheduling(self) -> tuple[dict[str, str], list[dict[str, str]]]:
        """Node selector and tolerations: a GPU profile lands only on GPU nodes, and
        tolerates their taint."""
        selector = dict(self.node_selector)
        tolerations = [dict(t) for t in self.tolerations]
        if self.gpus:
            selector.setdefault(GPU_NODE_LABEL, "true")
            if not any(t.get("key") == GPU_RESOURCE for t in tolerations):
                tolerations.append(
                    {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}
                )
        return selector, tolerations


BASE_IMAGE = "ghcr.io/hdh-open/hdh-base:0.1.0"
GPU_IMAGE = "ghcr.io/hdh-open/hdh-gpu:0.1.0"
SPARK_IMAGE = "ghcr.io/hdh-open/hdh-spark:0.1.0"
MAX_EXECUTORS = 32

DEFAULT_PROFILES = (
    ComputeProfile("cpu", "CPU (2 cores, 8 GiB)", BASE_IMAGE, 2, 0.5, "8G", "2G"),
    ComputeProfile("gpu", "GPU (1 NVIDIA GPU, cuDF)", GPU_IMAGE, 8, 2, "64G", "16G", gpus=1),
    ComputeProfile(
        "spark",
        "Spark (driver 4 cores, 16 GiB; 2 executors of 4 cores, 16 GiB)",
        BASE_IMAGE,
        4,
        1,
        "16G",
        "4G",
        executors=2,
    ),
)

#: a reviewer's own workspace (server ``review``): no data, small; not a person's choice
REVIEW_PROFILE = ComputeProfile("review", "Review workspace", BASE_IMAGE, 1, 0.25, "4G", "1G")

_KEYS = {f for f in ComputeProfile.__dataclass_fields__}


def parse_profiles(raw: Iterable[Mapping[str, Any]]) -> tuple[ComputeProfile, ...]:
    """The profiles of a configuration (a list of mappings), checked; names are unique."""
    out: list[ComputeProfile] = []
    for i, entry in enumerate(raw):
        unknown = set(entry) - _KEYS
        if unknown:
            raise ProfileError(f"compute profile #{i + 1}: unknown key {sorted(unknown)[0]!r}")
        missing = {
            "name",
            "display_name",
            "image",
            "cpu_limit",
            "cpu_guarantee",
            "mem_limit",
            "mem_guarantee",
        } - set(entry)
        if missing:
            raise ProfileError(f"compute profile #{i + 1}: missing {sorted(missing)[0]!r}")
        values = dict(entry)
        values["tolerations"] = tuple(values.get("tolerations") or ())
        try:
            out.append(ComputeProfile(**values))
        except TypeError as exc:
            raise ProfileError(f"compute profile #{i + 1}: {exc}") from None
    names = [p.name for p in out]
    if len(set(names)) != len(names):
        raise ProfileError("compute profile names must be unique")
    if not out:
        raise ProfileError("at least one compute profile is needed")
    return tuple(out)


def profile_named(profiles: Iterable[ComputeProfile], name: str) -> ComputeProfile:
    by_name = {p.name: p for p in profiles}
    try:
        return by_name[name]
    except KeyError:
        raise ProfileError(
            f"no compute profile {name!r} (there are: {', '.join(by_name)})"
        ) from None
