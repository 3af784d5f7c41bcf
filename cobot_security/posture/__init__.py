"""Posture: the controls catalog, attestations, and fail-closed evaluation of health evidence."""
