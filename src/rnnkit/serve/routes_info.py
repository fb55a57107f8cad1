"""`GET /health` (liveness, no API key needed) and `GET /v1/models` (what is served)."""

from __future__ import annotations

from fastapi import APIRouter

from . import schemas as s
from .state import State

router = APIRouter()


@router.get("/health", response_model=s.Health, tags=["info"])
async def health(st: State) -> dict:
    """Liveness: no API key needed."""
    return {"status": "ok", "models": len(st.served)}


@router.get("/v1/models", response_model=s.ModelsResponse, tags=["info"])
async def list_models(st: State) -> dict:
    """The models served: name, directory, engine, vocabulary size, level and configuration."""
    return {"models": [{"name": m.name, "path": None if m.lm.path is None else str(m.lm.path),
                        "engine": m.lm.engine, "vocab_size": len(m.lm.vocab),
                        "level": m.lm.tokenizer_config.level, "config": m.lm.config.to_dict()}
                       for m in st.served.values()]}
