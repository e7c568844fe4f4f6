"""Errors raised by ``layers``: every one says what was found and how to fix it."""

from __future__ import annotations


class SanigridError(ValueError):
    """Base of all sanigrid errors; the CLI prints them, the web layer turns them into 4xx."""


class CatalogueError(SanigridError):
    """An unknown layer kind or field."""


class CRSError(SanigridError):
    """A layer in the wrong or an unknown coordinate system."""


class SettingsError(SanigridError):
    """The project settings file is missing or wrong."""


class StoreError(SanigridError):
    """The store cannot be opened, read or written."""


class ImportError_(SanigridError):
    """A file cannot be read as a layer (format, encoding, columns)."""


class ValidationFailed(SanigridError):
    """A file was refused as a whole (``--strict``, or no row was usable)."""
