"""The service itself: health, and the Swagger page with its assets (served offline).

The Swagger page's scripts and styles come from the fastapi-offline package, never from
a CDN: an offline installation shows it, and no third-party script runs in this origin.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

from jupyterlab_hdh import __version__
from jupyterlab_hdh.api import models

router = APIRouter()

#: the Swagger page's files, from the fastapi-offline package (name → media type)
SWAGGER_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon.png": "image/png",
}


@router.get("/api/health", tags=["public"])
def health() -> models.HealthOut:
    return models.HealthOut(status="ok", version=__version__)


@router.get("/api/docs", include_in_schema=False, response_class=HTMLResponse)
def swagger_page(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "").rstrip("/")
    return get_swagger_ui_html(
        openapi_url=f"{root}/api/openapi.json",
        title="HDH control plane — API",
        swagger_js_url=f"{root}/api/docs-static/swagger-ui-bundle.js",
        swagger_css_url=f"{root}/api/docs-static/swagger-ui.css",
        swagger_favicon_url=f"{root}/api/docs-static/favicon.png",
    )


@router.get("/api/docs-static/{name}", include_in_schema=False, response_class=FileResponse)
def swagger_asset(name: str) -> FileResponse:
    media = SWAGGER_ASSETS.get(name)
    if media is None:
        raise HTTPException(404, f"no such file: {name}")
    return FileResponse(Path(str(files("fastapi_offline") / "static" / name)), media_type=media)
