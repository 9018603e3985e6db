"""Readers for the published dataset formats, shared by the task modules (one module per format family)."""
