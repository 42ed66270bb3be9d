"""Serve the cohort builder: `GET /` is the page, `/web/...` its scripts and styles.

The static files ship as package data (hub/web/static). Only `/` and the `/web` prefix
are claimed, so every other route of the app (GraphQL, REST export, probes) is
untouched whichever order routers are added in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).parent / "static"
"""index.html, app.css and js/*.js."""

NO_CACHE = {"cache-control": "no-cache"}
"""Revalidate on every load (ETag makes that cheap), so an upgraded hub never serves a
page whose modules disagree with each other."""

router = APIRouter(include_in_schema=False)


@router.get("/")
async def index() -> FileResponse:
    """The cohort builder page."""
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html", headers=NO_CACHE)


class _StaticFiles(StaticFiles):
    """StaticFiles that asks browsers to revalidate (see NO_CACHE)."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers.update(NO_CACHE)
        return response


def mount_web(app: FastAPI) -> None:
    """Add the page at `/` and its assets under `/web` to `app`."""
    app.include_router(router)
    app.mount("/web", _StaticFiles(directory=STATIC_DIR), name="web")
