"""``dialbench regress BASELINE CANDIDATE``: fail (exit 1) when a metric dropped, for CI.

A metric *regresses* when it moved the wrong way by more than its tolerance AND the paired
bootstrap 95% interval of ``candidate - baseline`` excludes zero (both conditions: a tolerance alone
fails on noise, significance alone fails on negligible drops); a metric without a valid bootstrap
interval (corpus Distinct-n, whose value depends on corpus size) is judged by its tolerance alone,
so a gate is never silently blind to it. Perplexity is lower-is-better; every
other metric higher-is-better. Tolerances are in the unit the leaderboard shows (papers' units):
``--tolerance BLEU=0.5`` allows half a BLEU point, ``--relative BLEU=2%`` 2% of the baseline value;
``*`` names every metric. Exit 2 (one line) on unusable input: a baseline task missing from the
candidate, or one whose signature, protocol, task options, data hash, limit or example ids differ: a regression check never
compares numbers made by different recipes or on different data.

Both sides are re-scored from their rows (``harness/baseline.py``); a baseline whose own rows no
longer score its recorded numbers means the scorer changed under an unchanged signature, which is
reported and fails like a regression.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from typing import Any

from harness.baseline import ScoredTask, baseline_json, dumps, load_scored
from harness.cliargs import assignments, comma_list
from harness.errors import UserError

DRIFT = 1e-6
"""Largest relative difference between a baseline's recorded and re-scored value that is rounding."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("baseline", metavar="BASELINE", nargs="?", help="run directory or baseline file")
    parser.add_argument("candidate", metavar="CANDIDATE", nargs="?", help="run directory checked against BASELINE")
    parser.add_argument("--write-baseline", metavar="RUN", help="print the baseline file of run directory RUN and exit")
    parser.add_argument("--tolerance", action="append", metavar="METRIC=X",
                        help="allowed absolute drop in the table's unit (METRIC may be '*'; default 0)")
    parser.add_argument("--relative", action="append", metavar="METRIC=P%",
                        help="allowed drop as a percentage of the baseline value")
    parser.add_argument("--metrics", help="comma-separated metrics to gate (default: all)")
    parser.add_argument("--two-sided", action="store_true",
                        help="also fail on significant rises beyond tolerance (a deterministic suite that must not move)")
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of markdown")


@dataclass(frozen=True)
class Tolerances:
    """Allowed absolute and relative movement per metric (``*`` = every metric)."""

    absolute: dict[str, float]
    relative: dict[str, float]

    def allowed(self, metric: str, baseline_value: float) -> float:
        absolute = self.absolute.get(metric, self.absolute.get("*", 0.0))
        relative = self.relative.get(metric, self.relative.get("*", 0.0))
        return max(absolute, abs(baseline_value) * relative / 100)


def parse_tolerances(absolute: list[str] | None, relative: list[str] | None) -> Tolerances:
    """Return the tolerances of ``--tolerance``/``--relative``; a malformed value is a UserError."""
    def numbers(values: list[str] | None, flag: str, percent: bool) -> dict[str, float]:
        out = {}
        for metric, text in assignments(values, flag).items():
            raw = text[:-1] if percent and text.endswith("%") else text
            try:
                out[metric] = float(raw)
            except ValueError:
                raise UserError(f"{flag} {metric}={text}: expected a number{' (optionally with %)' if percent else ''}") from None
            if out[metric] < 0:
                raise UserError(f"{flag} {metric}={text}: must not be negative")
        return out
    return Tolerances(numbers(absolute, "--tolerance", False), numbers(relative, "--relative", True))


def unusable(base: ScoredTask, cand: ScoredTask | None) -> str | None:
    """Return why ``cand`` cannot be checked against ``base`` (one line), or None when comparable:
    ``harness.comparability.check_runs`` (profile, signature, protocol, options, data, limit) plus
    the same example ids, which pairing needs."""
    from harness.comparability import Side, check_runs

    if cand is None:
        return f"task '{base.task}': in the baseline but not in the candidate"
    sides = [Side(label=label, profile=t.profile, signature=t.signature, protocol=t.protocol, options=t.options,
                  data_sha256=t.data_sha256, limit=t.limit) for label, t in (("baseline", base), ("candidate", cand))]
    verdict = check_runs(*sides)
    if not verdict.comparable:
        return f"task '{base.task}': " + "; ".join(verdict.reasons)
    ids_base = {r.example_id for _, r in base.rows}
    ids_cand = {r.example_id for _, r in cand.rows}
    if ids_base != ids_cand:
        return (f"task '{base.task}': example ids differ ({len(ids_base - ids_cand)} only in the baseline, "
                f"{len(ids_cand - ids_base)} only in the candidate)")
    return None


def check_task(base: ScoredTask, cand: ScoredTask, tolerances: Tolerances, only: list[str], two_sided: bool,
               resamples: int, seed: int) -> dict[str, Any]:
    """Return the verdict of every metric of one task (see the module docstring)."""
    from harness.commands.compare import compare_task
    from harness.metrics import get_profile, table_scale
    from harness.metrics.perplexity import Perplexity
    from leaderboards.numbers import shown_unit

    compared = compare_task(base.task, base.rows, cand.rows, base.profile, base.language,
                            resamples=resamples, seed=seed)
    lower_better = {k for m in get_profile(base.profile).metrics if isinstance(m, Perplexity) for k in m.keys}
    metrics: dict[str, Any] = {}
    for key, r in compared["metrics"].items():
        if only and key not in only:
            continue
        scale = table_scale(base.signature, key)
        recorded = base.metrics.get(key)
        sign = -1.0 if key in lower_better else 1.0
        worse = -sign * r["delta"] * scale  # > 0 when the candidate is worse, in the table's unit
        allowed = tolerances.allowed(key, r["a"] * scale)
        no_interval = r["low"] is None or math.isnan(r["low"])
        # Without a valid interval (corpus Distinct-n) significance cannot be shown: the tolerance alone decides.
        significant = no_interval or not r["low"] <= 0 <= r["high"]
        drift = recorded is not None and not _close(recorded, r["a"])
        moved = worse if not two_sided else abs(worse)
        if drift:
            verdict = "scorer-drift"
        elif moved > allowed and significant:
            verdict = "regressed" if worse > 0 else "moved"
        elif moved > allowed:
            verdict = "not-significant"
        else:
            verdict = "ok"
        metrics[key] = {**{k: (v * scale if k in ("a", "b", "delta", "low", "high") and v is not None else v)
                           for k, v in r.items()}, "interval": not no_interval,
                        "recorded_baseline": None if recorded is None else recorded * scale,
                        "allowed": allowed, "lower_is_better": key in lower_better,
                        "unit": shown_unit(base.signature, key), "verdict": verdict}
    return {"profile": base.profile, "n": compared["n"], "metrics": metrics}


def _close(recorded: float, rescored: float) -> bool:
    if recorded is None or rescored is None or (isinstance(recorded, float) and math.isnan(recorded)):
        return True
    return abs(recorded - rescored) <= DRIFT * max(1.0, abs(recorded))


FAILING = ("regressed", "moved", "scorer-drift")


def run(args: argparse.Namespace) -> int:
    if args.write_baseline:
        sys.stdout.write(dumps(baseline_json(args.write_baseline)))
        return 0
    if not (args.baseline and args.candidate):
        raise UserError("regress needs BASELINE and CANDIDATE (or --write-baseline RUN)")
    if args.resamples < 1:
        raise UserError("--resamples must be at least 1")
    tolerances = parse_tolerances(args.tolerance, args.relative)
    baseline, candidate = load_scored(args.baseline), load_scored(args.candidate)
    for task in baseline.tasks.values():
        reason = unusable(task, candidate.tasks.get(task.task))
        if reason:
            raise UserError(f"cannot compare {args.candidate} with {args.baseline}: {reason}")
    only = comma_list(args.metrics)
    report = {"baseline": baseline.source, "candidate": candidate.source, "two_sided": args.two_sided,
              "resamples": args.resamples, "seed": args.seed, "tasks": {},
              "not_gated": sorted(set(candidate.tasks) - set(baseline.tasks))}
    for name, task in baseline.tasks.items():
        report["tasks"][name] = check_task(task, candidate.tasks[name], tolerances, only, args.two_sided,
                                           args.resamples, args.seed)
    failures = [(t, m, r["verdict"]) for t, res in report["tasks"].items() for m, r in res["metrics"].items()
                if r["verdict"] in FAILING]
    report["status"] = "fail" if failures else "pass"
    report["failures"] = [f"{t}/{m}: {v}" for t, m, v in failures]
    print(json.dumps(report, ensure_ascii=False) if args.json else markdown(report))
    return 1 if failures else 0


def markdown(report: dict[str, Any]) -> str:
    """Return the report as markdown for a CI log or a pull-request comment."""
    from leaderboards.numbers import format_number

    status = "❌ FAIL" if report["status"] == "fail" else "✅ PASS"
    lines = [f"## dialbench regress: {status}", "",
             f"Candidate `{report['candidate']}` against baseline `{report['baseline']}`; paired bootstrap "
             f"({report['resamples']} resamples, seed {report['seed']}); a metric fails when it moved "
             f"{'either way' if report['two_sided'] else 'the wrong way'} beyond its tolerance and the 95% "
             "interval of the difference excludes 0."]
    if report["failures"]:
        lines += ["", "Failing: " + ", ".join(f"`{f}`" for f in report["failures"])]
    for task, result in report["tasks"].items():
        lines += ["", f"### {task} (profile {result['profile']}, {result['n']} paired examples)", "",
                  "| metric | baseline | candidate | Δ | 95% CI of Δ | p | allowed | verdict |",
                  "|---|---|---|---|---|---|---|---|"]
        for key, r in result["metrics"].items():
            f = lambda v, signed=False, u=r["unit"]: format_number(v, u, signed=signed)  # noqa: E731
            mark = "**" if r["verdict"] in FAILING else ""
            interval = f"[{f(r['low'])}, {f(r['high'])}]" if r["interval"] else "none (tolerance decides)"
            p = r.get("p_value")
            p_text = f"{p:.3f}" if isinstance(p, float) and not math.isnan(p) else "–"
            lines.append(f"| {key} | {f(r['a'])} | {f(r['b'])} | {f(r['delta'], True)} | {interval} "
                         f"| {p_text} | {f(r['allowed'])} | {mark}{r['verdict']}{mark} |")
    if report["not_gated"]:
        lines += ["", "Not gated (not in the baseline): " + ", ".join(report["not_gated"])]
    return "\n".join(lines)
