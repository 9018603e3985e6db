"""Signatures in the style of sacreBLEU: every setting that moves a number, as ``key:value|key:value``.

Fields are named explicitly by each metric's ``describe()`` (never read from ``__dict__``), so a
signature changes exactly when a number could. Leaderboards compare only numbers whose signatures
match.
"""
from __future__ import annotations

from importlib import metadata
from typing import Iterable

from harness.metrics.base import Metric


def package_version(name: str) -> str:
    """Return the installed version of distribution ``name``, or ``none``."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "none"


def build(profile: str, language: str, hypothesis: str, unit: str, metrics: Iterable[Metric]) -> str:
    """Return the signature of a profile run: profile, language, hypothesis processing, unit, one
    fragment per metric, then the versions of dialbench and every library used."""
    metrics = list(metrics)
    fields = [f"profile:{profile}", f"lang:{language}", f"hyp:{hypothesis}", f"unit:{unit}"]
    fields += [m.describe(language) for m in metrics]
    libraries = sorted({lib for m in metrics for lib in m.libraries})
    versions = ",".join(f"{lib}={package_version(lib)}" for lib in ["dialbench"] + libraries)
    fields.append(f"version:{versions}")
    return "|".join(fields)


def parse(signature: str) -> dict[str, str]:
    """Return the fields of a signature as ``{key: value}`` (metric fragments keep their inner colons)."""
    out: dict[str, str] = {}
    for field in signature.split("|"):
        key, _, value = field.partition(":")
        out.setdefault(key, value)
    return out
