"""``hdh k8s``: HDH's Kubernetes objects, printed for ``kubectl apply -f -``.

``hdh k8s workspace sweep|verify|purge`` archives the workspace claims of projects whose
permit ended (:mod:`jupyterlab_hdh.k8s.workspaces`).
``hdh k8s review`` prints the namespace of the reviewers' own workspaces.
``hdh k8s guard`` runs the cluster's guard (:mod:`jupyterlab_hdh.k8s.guard`).
``hdh k8s probe SLUG`` prints the isolation probe (:mod:`jupyterlab_hdh.k8s.probe`).
``hdh k8s project SLUG`` prints a project's namespace and everything that isolates it
(:func:`jupyterlab_hdh.k8s.project.project_manifests`: Pod Security labels, quota, limit
range, network policies, workspace claim, the read-only datasets volume). Run it before
the project's first pod on a cluster: the spawner refuses a namespace it did not make.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import click
import yaml

from jupyterlab_hdh.cli.common import HdhGroup, say
from jupyterlab_hdh.cli_context import actor, open_installation

if TYPE_CHECKING:
    from jupyterlab_hdh.context import Installation
    from jupyterlab_hdh.k8s.workspaces import ClaimJobs

_T = TypeVar("_T")


def _json_object(_ctx: click.Context, _param: click.Parameter, value: str | None) -> object:
    if value is None:
        return None
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc.msg}") from None
    if not isinstance(parsed, dict) or len(parsed) != 1:
        raise click.BadParameter(
            'one PersistentVolume source, e.g. {"nfs": {"server": "…", "path": "/datasets"}}'
        )
    return parsed


def _slug(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    """A project slug as projects are named (reserved ones refused), else a usage error."""
    from jupyterlab_hdh.governance.projects import ProjectError, check_slug

    try:
        return check_slug(value)
    except ProjectError as exc:
        raise click.BadParameter(str(exc)) from None


@click.group()
def k8s() -> None:
    """HDH's Kubernetes objects (print them; apply them with kubectl)."""


@k8s.command("project")
@click.argument("slug", callback=_slug)
@click.option("--cpu", default="16", show_default=True, help="CPU cores the project may use")
@click.option("--memory", default="64Gi", show_default=True, help="memory the project may use")
@click.option("--gpus", default=1, show_default=True, type=click.IntRange(0, 64))
@click.option("--pods", default=20, show_default=True, type=click.IntRange(1, 1000))
@click.option("--workspace", default="50Gi", show_default=True, help="workspace claim size")
@click.option("--storage-class", default="", help="a ReadWriteMany storage class")
@click.option(
    "--datasets-source",
    callback=_json_object,
    help="the datasets' PersistentVolume source as JSON (default: the NFS export"
    " hdh-datasets.hdh-system.svc:/datasets)",
)
def project(
    slug: str,
    cpu: str,
    memory: str,
    gpus: int,
    pods: int,
    workspace: str,
    storage_class: str,
    datasets_source: dict[str, object] | None,
) -> None:
    """Print project SLUG's namespace and its isolation, as YAML."""
    from jupyterlab_hdh.k8s.project import ProjectQuota, project_manifests

    quota = ProjectQuota(
        cpu=cpu,
        memory=memory,
        gpus=gpus,
        pods=pods,
        workspace=workspace,
        storage_class=storage_class,
    )
    docs = project_manifests(slug, quota, datasets_source)
    click.echo(yaml.safe_dump_all(docs, sort_keys=False), nl=False)


@k8s.command("review")
@click.option("--cpu", default="16", show_default=True, help="CPU cores of all review workspaces")
@click.option("--memory", default="64Gi", show_default=True, help="their memory")
@click.option("--pods", default=50, show_default=True, type=click.IntRange(1, 1000))
@click.option("--workspaces", default=200, show_default=True, type=click.IntRange(1, 10000))
@click.option("--storage", default="500Gi", show_default=True, help="their claims together")
def review(cpu: str, memory: str, pods: int, workspaces: int, storage: str) -> None:
    """Print the namespace of the reviewers' own workspaces (server "review"), as YAML."""
    from jupyterlab_hdh.k8s.project import ReviewQuota, review_manifests

    quota = ReviewQuota(cpu=cpu, memory=memory, pods=pods, workspaces=workspaces, storage=storage)
    click.echo(yaml.safe_dump_all(review_manifests(quota), sort_keys=False), nl=False)


@k8s.command("probe")
@click.argument("slug", callback=_slug)
@click.option("--image", default=None, help="the image to run it in (default: the base image)")
def probe(slug: str, image: str | None) -> None:
    """Print the isolation probe Job of project SLUG, as YAML.

    Apply it, then `kubectl -n hdh-p-SLUG logs job/hdh-isolation-probe`: the Job succeeds
    only if a pod with a sandbox's labels reached nothing (no DNS, internet, metadata
    address, Kubernetes API, hub, control plane, database)."""
    from jupyterlab_hdh.k8s.probe import probe_job
    from jupyterlab_hdh.k8s.profiles import BASE_IMAGE

    click.echo(yaml.safe_dump(probe_job(slug, image or BASE_IMAGE), sort_keys=False), nl=False)


@k8s.command("guard")
@click.option("--ip", default="0.0.0.0", show_default=True)  # noqa: S104 - a pod's address
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--bridge-port", default=8090, show_default=True, type=click.IntRange(1, 65535))
@click.option("--api-url", envvar="HDH_API_URL", default="", help="the control plane's URL")
@click.option(
    "--bridge-token-file", envvar="HDH_BRIDGE_TOKEN_FILE", default="", help="the bridge token"
)
@click.option("--kubeconfig", default=None, help="default: the pod's service account")
@click.pass_obj
def guard(
    obj: dict[str, object],
    ip: str,
    port: int,
    bridge_port: int,
    api_url: str,
    bridge_token_file: str,
    kubeconfig: str | None,
) -> None:
    """Run the guard of a cluster (the Deployment hdh-guard, k8s/system/guard.yaml).

    Every project server is reached through it (port 8000, from the proxy), and the
    sandboxes reach the control plane only through its API bridge (port 8090)."""
    from jupyterlab_hdh.k8s.guard import serve
    from jupyterlab_hdh.paths import DataDir

    data_dir = obj["data_dir"]
    assert isinstance(data_dir, DataDir)
    serve(
        data_dir,
        api_url=api_url,
        bridge_token_file=bridge_token_file,
        ip=ip,
        port=port,
        bridge_port=bridge_port,
        kubeconfig=kubeconfig,
    )


@k8s.group("workspace", cls=HdhGroup)
def k8s_workspace() -> None:
    """Project workspace claims whose permit ended: archived, verified, purged.

    What `hdh workspace` does on one machine, through a Job in each project's namespace
    (:mod:`jupyterlab_hdh.k8s.workspaces`); `hdh workspace list` lists both."""


_image = click.option("--image", default=None, help="the Jobs' image (default: the base image)")
_host_id_base = click.option(
    "--host-id-base",
    default=None,
    type=click.IntRange(1, 2**31 - 1),
    help="the hub's ProjectKubeSpawner.host_id_base (project N's files are uid base + N)",
)
_kubeconfig = click.option("--kubeconfig", default=None, help="default: the pod's account")


def _claims(
    ctx: click.Context,
    image: str | None,
    host_id_base: int | None,
    kubeconfig: str | None,
    work: Callable[[Installation, ClaimJobs], Awaitable[_T]],
) -> _T:
    """Run ``work`` with the installation and a Kubernetes client, then close both."""
    from kubernetes_asyncio.config import ConfigException

    from jupyterlab_hdh.k8s.guard import api_client
    from jupyterlab_hdh.k8s.profiles import BASE_IMAGE
    from jupyterlab_hdh.k8s.workspaces import ClaimJobs
    from jupyterlab_hdh.sandbox.spec import HOST_ID_BASE

    inst = open_installation(ctx)

    async def run() -> _T:
        try:
            api = await api_client(kubeconfig)
        except (ConfigException, OSError) as exc:
            raise click.ClickException(
                f"no Kubernetes API to use ({exc}): give --kubeconfig, or run it in a pod with"
                " its service account (the CronJob hdh-retention, k8s/system/retention.yaml)"
            ) from None
        try:
            jobs = ClaimJobs(
                api, image=image or BASE_IMAGE, host_id_base=host_id_base or HOST_ID_BASE
            )
            return await work(inst, jobs)
        finally:
            await api.close()

    return asyncio.run(run())


@k8s_workspace.command("sweep")
@_image
@_host_id_base
@_kubeconfig
@click.pass_context
def k8s_workspace_sweep(
    ctx: click.Context, image: str | None, host_id_base: int | None, kubeconfig: str | None
) -> None:
    """Archive the claims of projects with no active permit, reopen renewed ones, and name
    those past their retention (the CronJob hdh-retention runs it)."""
    from jupyterlab_hdh.k8s import workspaces

    outcomes = _claims(
        ctx,
        image,
        host_id_base,
        kubeconfig,
        lambda inst, jobs: workspaces.sweep(inst, jobs, actor=actor()),
    )
    for o in outcomes:
        click.echo(f"{o.project}\t{o.action}\t{o.detail}")
    if not outcomes:
        say("nothing to do")
    failed = [o.project for o in outcomes if o.action == "failed"]
    if failed:
        raise click.ClickException(f"the workspace of {', '.join(failed)} could not be handled")


@k8s_workspace.command("verify")
@click.argument("slug", callback=_slug)
@_image
@_host_id_base
@_kubeconfig
@click.pass_context
def k8s_workspace_verify(
    ctx: click.Context,
    slug: str,
    image: str | None,
    host_id_base: int | None,
    kubeconfig: str | None,
) -> None:
    """Check that an archived claim is as it was archived (every file's SHA-256)."""
    from jupyterlab_hdh.k8s import workspaces

    changes = _claims(
        ctx, image, host_id_base, kubeconfig, lambda i, j: workspaces.verify(i, j, slug)
    )
    for line in changes:
        click.echo(line)
    if changes:
        raise click.ClickException(f"the archive of {slug} changed")
    click.echo(f"the archive of {slug} is as it was archived")


@k8s_workspace.command("purge")
@click.argument("slug", callback=_slug)
@_kubeconfig
@click.pass_context
def k8s_workspace_purge(ctx: click.Context, slug: str, kubeconfig: str | None) -> None:
    """Delete an archived claim whose retention period is over (audited first)."""
    from jupyterlab_hdh.k8s import workspaces

    marker = _claims(
        ctx, None, None, kubeconfig, lambda i, j: workspaces.purge(i, j, slug, actor=actor())
    )
    click.echo(
        f"workspace claim of {slug} deleted ({marker['files']} files, kept until {marker['until']})"
    )
