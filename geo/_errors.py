"""Errors raised by the analyses (all ``ValueError`` via :class:`layers._errors.SanigridError`)."""

from __future__ import annotations

from sanigrid.layers._errors import SanigridError


class AnalysisError(SanigridError):
    """An analysis cannot run on the data it was given; the message says why and what to do."""


class AnalysisCRSError(AnalysisError):
    """Inputs not in one projected CRS in metres."""
