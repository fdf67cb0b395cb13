"""Housekeeping: the periodic cleanup tick and its steps (projection-semantics 9-10)."""

from .tick import Housekeeping, TickReport

__all__ = ["Housekeeping", "TickReport"]
