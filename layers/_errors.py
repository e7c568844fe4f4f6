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


class CaseError(SanigridError):
    """A change to a case that the case rules (``layers.cases``) do not allow."""


class IllegalTransition(CaseError):
    """A status change the lifecycle does not allow (HTTP 409)."""


class StepForbidden(CaseError):
    """A step or action the account's role may not take (HTTP 403)."""


class PhotoRequired(CaseError):
    """Handing in (处置 → 核查) without a photo taken after handling began (HTTP 409)."""
