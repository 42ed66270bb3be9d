"""Cohort exports: canonical records (CSV, NDJSON) and each repository's download manifest,
streamed in chunks with constant memory whatever the cohort's size."""

from hub.export.plan import FORMATS, Export, ExportError, Format, prepare_export

__all__ = ["FORMATS", "Export", "ExportError", "Format", "prepare_export"]
