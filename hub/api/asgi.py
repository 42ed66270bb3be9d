"""The app factory uvicorn imports by name: `uvicorn hub.api.asgi:create --factory`.

Several worker processes (`imaging-hub serve --workers N`) need an import string rather
than an app object, because each worker builds its own app (and its own `Hub`, index
and HTTP clients) after the fork. The configuration reaches them through the
environment that `load_config` already reads: `HUB_CONFIG` (the TOML file) and
`HUB_DATA_DIR` (the index directory), which `serve` sets from its options.
"""

from __future__ import annotations

from fastapi import FastAPI

from hub.api.app import create_app
from hub.config import load_config

CONFIG_ENV = "HUB_CONFIG"
DATA_DIR_ENV = "HUB_DATA_DIR"


def create() -> FastAPI:
    """One app for one worker, configured from HUB_CONFIG / HUB_DATA_DIR (or the default).

    The config is read here, in the worker, so a broken file fails the worker's start
    with the config error instead of the first request."""
    return create_app(load_config(), serving=True)
