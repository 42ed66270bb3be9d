"""Find adapters through the entry-point group `imaging_hub.adapters`.

Built-in and third-party adapters are found the same way. A plugin that fails to
import, or is not an `Adapter` subclass, is warned about and skipped: one broken
package must not take the hub down.
"""

from __future__ import annotations

import logging
from importlib.metadata import entry_points

from adapters.spi import Adapter

GROUP = "imaging_hub.adapters"
log = logging.getLogger(__name__)


def discover_adapters() -> dict[str, type[Adapter]]:
    """Adapter classes by entry-point name."""
    found: dict[str, type[Adapter]] = {}
    for ep in entry_points(group=GROUP):
        try:
            cls = ep.load()
        except Exception as exc:  # a broken plugin is skipped, never fatal
            log.warning("skipping adapter plugin %r: %s: %s", ep.name, type(exc).__name__, exc)
            continue
        if not (isinstance(cls, type) and issubclass(cls, Adapter)):
            log.warning("skipping adapter plugin %r: %r is not an Adapter subclass", ep.name, cls)
            continue
        found[ep.name] = cls
    return found
