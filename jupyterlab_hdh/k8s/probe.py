"""The isolation probe: proof, on the live cluster, that a project pod reaches nothing.

``hdh k8s probe SLUG | kubectl apply -f -`` starts a Job in the project's namespace whose
pod carries a sandbox's labels (so the project's NetworkPolicies apply to it exactly as to
a sandbox) and runs ``python -m jupyterlab_hdh.k8s.probe``: it tries every way out a
sandbox must not have (a DNS lookup, the internet, the cloud metadata address, the
Kubernetes API, the hub, the control plane, the database, the guard's proxy side) and
exits 0 only if every attempt failed; it prints one line per attempt. The Job succeeding
is the proof; a ``REACHED`` line names the hole. Standard library only: it runs in any of
HDH's images.
"""

from __future__ import annotations

import argparse
import socket
import sys
from collections.abc import Sequence
from typing import Any

from jupyterlab_hdh.k8s.pod import LABEL_PREFIX
from jupyterlab_hdh.k8s.profiles import BASE_IMAGE
from jupyterlab_hdh.k8s.project import GUARD_HTTP_PORT, SYSTEM_NAMESPACE

#: what a sandbox must never reach (host:port); names need DNS, which it must not have
DEFAULT_TARGETS = (
    "1.1.1.1:443",
    "8.8.8.8:53",
    "169.254.169.254:80",
    "10.96.0.1:443",  # the usual address of the Kubernetes API service
    f"hub.{SYSTEM_NAMESPACE}.svc.cluster.local:8081",
    f"hdh-api.{SYSTEM_NAMESPACE}.svc.cluster.local:8080",
    f"hdh-postgres.{SYSTEM_NAMESPACE}.svc.cluster.local:5432",
    f"hdh-guard.{SYSTEM_NAMESPACE}.svc.cluster.local:{GUARD_HTTP_PORT}",
    "example.org:443",
)
DNS_NAMES = ("example.org", "kubernetes.default.svc.cluster.local")


def attempt(target: str, timeout: float) -> tuple[bool, str]:
    """(reached, what happened) for one ``host:port``."""
    host, _, port = target.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return True, "connected"
    except socket.gaierror as exc:
        return False, f"no name resolution ({exc.strerror})"
    except TimeoutError:
        return False, "timed out"
    except OSError as exc:
        return False, exc.strerror or type(exc).__name__


def resolve(name: str) -> tuple[bool, str]:
    try:
        infos = socket.getaddrinfo(name, None)
    except OSError as exc:
        return False, f"no answer ({exc.strerror})"
    return True, "resolved to " + ", ".join(sorted({str(i[4][0]) for i in infos}))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jupyterlab_hdh.k8s.probe")
    parser.add_argument("--target", action="append", help="host:port that must be unreachable")
    parser.add_argument("--name", action="append", help="a DNS name that must not resolve")
    parser.add_argument("--timeout", type=float, default=3.0)
    args = parser.parse_args(argv)
    holes = 0
    for name in args.name if args.name is not None else DNS_NAMES:
        reached, what = resolve(name)
        holes += reached
        print(f"{'REACHED' if reached else 'blocked'}  dns {name}: {what}", flush=True)
    for target in args.target if args.target is not None else DEFAULT_TARGETS:
        reached, what = attempt(target, args.timeout)
        holes += reached
        print(f"{'REACHED' if reached else 'blocked'}  tcp {target}: {what}", flush=True)
    print("isolated: nothing reached" if not holes else f"NOT ISOLATED: {holes} reached")
    return 1 if holes else 0


def probe_job(slug: str, image: str = BASE_IMAGE) -> dict[str, Any]:
    """The Job that runs the probe as a sandbox of project ``slug`` would run."""
    from jupyterlab_hdh.k8s.pod import IMAGE_PYTHON_PREFIX
    from jupyterlab_hdh.k8s.project import project_job

    return project_job(
        slug,
        {"name": "hdh-isolation-probe"},
        {f"{LABEL_PREFIX}role": "sandbox", f"{LABEL_PREFIX}project": slug},
        {
            "name": "probe",
            "image": image,
            "command": [f"{IMAGE_PYTHON_PREFIX}/bin/python", "-m", "jupyterlab_hdh.k8s.probe"],
            "resources": {
                "requests": {"cpu": "50m", "memory": "64Mi"},
                "limits": {"cpu": "200m", "memory": "128Mi"},
            },
        },
        run_as=(65534, 65534),
        ttlSecondsAfterFinished=3600,
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
