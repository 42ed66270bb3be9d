"""Repository adapters and the SPI they implement. Depends on schema/, never on hub/."""

from adapters.spi import (
    Adapter,
    AdapterError,
    Capabilities,
    Page,
    PageResult,
    PagingStyle,
    SourceSettings,
    TerminalSourceError,
    TransientSourceError,
    Translation,
)

__all__ = [
    "Adapter",
    "AdapterError",
    "Capabilities",
    "Page",
    "PageResult",
    "PagingStyle",
    "SourceSettings",
    "TerminalSourceError",
    "TransientSourceError",
    "Translation",
]
