"""The page at `/` and its two static files (static/): no API key needed, nothing fetched from
elsewhere. `OPEN_PATHS` are the paths the API key does not guard (the page, /health, the docs)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from .limits import LimitError

STATIC = Path(__file__).parent / "static"
PAGE_FILES = frozenset({"page.js", "page.css"})
OPEN_PATHS = frozenset({"/", "/static/page.js", "/static/page.css", "/health", "/docs", "/docs/oauth2-redirect",
                        "/redoc", "/openapi.json"})

router = APIRouter(include_in_schema=False)


@router.get("/")
async def page() -> FileResponse:
    """The page: score text (tokens coloured by surprisal, hover for the numbers), generate."""
    return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")


@router.get("/static/{name}")
async def static(name: str) -> FileResponse:
    if name not in PAGE_FILES:
        raise LimitError(404, "", f"no file {name[:100]!r}")
    kind = "text/javascript" if name.endswith(".js") else "text/css"
    return FileResponse(STATIC / name, media_type=f"{kind}; charset=utf-8")
