"""Helpers of the registry tests: settings tables, keys, counting a collection."""

from __future__ import annotations

from typing import Any

from hub.service import Hub

READER_KEY = "ihk_registry-reader-0123456789abcdefghijklmnopqrstu"
ADMIN_KEY = "ihk_registry-admin-0123456789abcdefghijklmnopqrstuv"
SERIES = 30
CONFIG_SERIES = 12


def dicomweb(url: str, mode: str = "live", **extra: Any) -> dict[str, Any]:
    """The settings table of a DICOMweb source, as a caller would send it."""
    return {
        "adapter": "dicomweb",
        "url": url,
        "mode": mode,
        "collection": "acme_ct",
        "page_size": 10,
        "timeout_s": 2,
        "cache_ttl_s": 0,
        **extra,
    }


ACME = {"=": {"collection": "acme_ct"}}


def series(hub: Hub, filter_json: Any = ACME) -> int:
    return hub.cohort(filter_json, None).view.counts().series
