"""The public register, without login (issue 14, item 3): pages and JSON.

``/ui/register/`` (projects, applications under review, datasets, the audit's checkpoint),
``/ui/register/projects/{slug}``, ``/ui/register/datasets/{name}``, ``/ui/register/opt-out``
(the right to object and how to exercise it), in French or English as the other pages
(``templating.negotiate``); ``/api/register`` (the same as JSON), and the latest signed audit
checkpoint and its public key. Nothing here asks who the reader is. Thin: the content is
:mod:`jupyterlab_hdh.governance.register`, the rendering :mod:`jupyterlab_hdh.api.register_site`.

(No ``from __future__ import annotations``: FastAPI reads the dependency aliases.)
"""

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field

from jupyterlab_hdh.api.deps import ApiConfig, config
from jupyterlab_hdh.api.register_site import Links, render
from jupyterlab_hdh.api.routes.pages import PAGE_HEADERS, _common, _hub_prefix, _message
from jupyterlab_hdh.api.templating import translator
from jupyterlab_hdh.governance import register as rg
from jupyterlab_hdh.paths import DataDir

T = TypeVar("T")

router = APIRouter()
#: the register changes with each decision and release: cached a minute by readers
PUBLIC_HEADERS = {**PAGE_HEADERS, "Cache-Control": "public, max-age=60"}


PUBLIC_DATA = {"Cache-Control": "public, max-age=60"}


async def _published(request: Request, read: Callable[[DataDir], T | None]) -> T:
    """What ``read`` finds of the audit's publication (checkpoint, key), or 404 before the
    first checkpoint."""
    found = await asyncio.to_thread(read, config(request).opened().data_dir)
    if found is None:
        raise HTTPException(404, "no audit checkpoint has been published yet")
    return found


def _snapshot(cfg: ApiConfig) -> dict[str, Any]:
    inst = cfg.opened()
    with inst.sessions() as s:
        return rg.snapshot(s, inst.data_dir)


async def _page(request: Request, page: str, key: str = "") -> Response:
    cfg = config(request)
    register = await asyncio.to_thread(_snapshot, cfg)
    common = _common(cfg, request=request)
    lang = common["lang"]
    found = {"project": rg.project_entry, "dataset": rg.dataset_entry}.get(page)
    if found is not None and found(register, key) is None:
        _ = translator(lang)
        what = (
            _("No project {key} in the register")
            if page == "project"
            else _("No dataset {key} in the register")
        )
        return _message(_("Not in the register"), what.format(key=key), 404, **common)
    html = render(
        page,
        register,
        lang,
        Links(prefix=common["prefix"]),
        key=key,
        hub_prefix=_hub_prefix(),
        here=common["here"],
    )
    return HTMLResponse(html, headers=PUBLIC_HEADERS)


@router.get("/ui/register/", response_class=HTMLResponse, include_in_schema=False)
async def register_index(request: Request) -> Response:
    return await _page(request, "index")


@router.get("/ui/register/projects/{slug}", response_class=HTMLResponse, include_in_schema=False)
async def register_project(request: Request, slug: str) -> Response:
    return await _page(request, "project", slug)


@router.get("/ui/register/datasets/{name}", response_class=HTMLResponse, include_in_schema=False)
async def register_dataset(request: Request, name: str) -> Response:
    return await _page(request, "dataset", name)


@router.get("/ui/register/opt-out", response_class=HTMLResponse, include_in_schema=False)
async def register_optout(request: Request) -> Response:
    return await _page(request, "opt-out")


class RegisterOut(BaseModel):
    """The register (``governance.register.snapshot``; ``format`` names its version)."""

    format: str
    generated_at: str
    publisher: dict[str, str]
    projects: list[dict[str, Any]] = Field(
        description="slug, title, purpose, holder, status, datasets, compute_profile,"
        " created_at, first_permit_at, ends_at, permits, decisions, released_outputs"
    )
    under_review: list[dict[str, Any]]
    datasets: list[dict[str, Any]] = Field(description="each dataset and the projects using it")
    audit: dict[str, Any] = Field(description="the latest signed checkpoint and its public key")


class CheckpointOut(BaseModel):
    """A signed audit checkpoint (``audit.checkpoint``): verify it with the public key."""

    format: str
    seq: int
    head_hash: str
    time: str
    key_id: str
    signature: str


@router.get(
    "/api/register",
    tags=["register"],
    summary="The public register (no login)",
    response_class=JSONResponse,
    responses={200: {"model": RegisterOut}},
)
async def register_json(request: Request) -> JSONResponse:
    """Every project granted data or applying for it (holder, purpose, datasets, status,
    dates, decisions, titles of released outputs), the datasets and the projects using them,
    new applications under review, and the latest signed audit checkpoint with its public key.
    Public: no token."""
    register = await asyncio.to_thread(_snapshot, config(request))
    return JSONResponse(register, headers=PUBLIC_DATA)


@router.get(
    "/ui/register/audit/checkpoint.json",
    tags=["register"],
    summary="The latest signed audit checkpoint (no login)",
    response_class=JSONResponse,
    responses={200: {"model": CheckpointOut}},
)
async def register_checkpoint(request: Request) -> JSONResponse:
    """404 until an administrator takes one (``hdh audit checkpoint``)."""
    checkpoint = await _published(request, rg.latest_checkpoint)
    return JSONResponse(checkpoint, headers=PUBLIC_DATA)


@router.get(
    "/ui/register/audit/public-key.pem",
    tags=["register"],
    summary="The public key of the audit checkpoints (no login)",
    response_class=PlainTextResponse,
    responses={200: {"content": {"application/x-pem-file": {}}}},
)
async def register_public_key(request: Request) -> Response:
    pem = await _published(request, rg.public_key)
    return PlainTextResponse(pem, media_type="application/x-pem-file", headers=PUBLIC_DATA)
