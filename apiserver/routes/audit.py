"""Placeholder: filled in by its resource work."""

ENDPOINTS: list = []
