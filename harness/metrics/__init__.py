"""Paper-faithful metric profiles (issue 3): ``get_profile(name).score(examples, responses, language)``.

Profiles are registered lazily, so ``dialbench list profiles`` and importing this package start no
JVM and load no model; those start on first use.
"""
from __future__ import annotations

from typing import Any

from harness.plugins import PROFILES

def profile_names() -> list[str]:
    """Return the registered profile names."""
    return PROFILES.names()


def get_profile(name: str, **options: Any):
    """Return the profile ``name`` (a UserError listing the choices when unknown), rebuilt with
    ``options`` when given (e.g. ``get_profile("spt", bertscore_model="/path", bertscore_layers=12)``).

    ``name`` may carry options as the command line writes them, ``NAME:KEY=VALUE,KEY=VALUE``
    (``--profile convai2_persona=spt:rouge_aggregate=bootstrap_median,distinct_split=space``); keyword
    ``options`` win over those.
    """
    base, _, written = name.partition(":")
    profile = PROFILES.get(base)
    return profile.with_options(**{**parse_profile_options(profile, written), **options})


def parse_profile_options(profile: Any, written: str) -> dict[str, Any]:
    """Return ``KEY=VALUE,...`` as keyword options of ``profile``'s factory, each value converted to
    the type of that option's default (bool from true/false, None from none)."""
    import inspect

    from harness.errors import UserError

    if not written.strip():
        return {}
    if profile.factory is None:
        raise UserError(f"profile '{profile.name}' takes no options")
    defaults = {k: p.default for k, p in inspect.signature(profile.factory).parameters.items()}
    options: dict[str, Any] = {}
    for part in written.split(","):
        key, eq, value = (x.strip() for x in part.partition("="))
        if not eq or not key:
            raise UserError(f"profile '{profile.name}': option '{part}' is not KEY=VALUE")
        if key not in defaults:
            raise UserError(f"profile '{profile.name}' has no option '{key}' "
                            f"({'options: ' + ', '.join(defaults) if defaults else 'it takes none'})")
        options[key] = _converted(profile.name, key, value, defaults[key])
    return options


def _converted(profile: str, key: str, value: str, default: Any) -> Any:
    from harness.errors import UserError
    from harness.task import truth

    if value.lower() == "none":
        return None
    try:
        if isinstance(default, bool):
            flag = truth(value)
            if flag is None:
                raise ValueError(value)
            return flag
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
    except ValueError:
        raise UserError(f"profile '{profile}' option {key}: '{value}' is not a {type(default).__name__}") from None
    return value


def table_scale(signature: str, metric: str) -> float:
    """Return the factor from a stored value to the unit of the papers' tables, given its signature
    (x100 for nlgeval/parlai/dolphin/basic values, x1 for spt and memorybank, never for ``ppl``)."""
    from harness.metrics.signature import parse

    name = parse(signature).get("profile", "")
    if metric == "ppl" or name not in PROFILES:
        return 1.0
    return float(PROFILES.get(name).table_factor)


def __getattr__(name: str):
    # ScoreReport and Profile live in profiles.py, which imports numpy/scipy: load it only when asked.
    if name in ("ScoreReport", "Profile"):
        from harness.metrics import profiles

        return getattr(profiles, name)
    raise AttributeError(f"module 'harness.metrics' has no attribute {name!r}")


__all__ = ["PROFILES", "get_profile", "profile_names", "table_scale", "ScoreReport", "Profile"]
