"""``dialbench compare RUN_A RUN_B``: per task and metric, B minus A with a paired bootstrap 95% interval.

Both runs are re-scored from their samples.jsonl with the task's profile (as results.json records
it, or ``--profile``); examples are paired by ``example_id``. Each
resample draws the same examples for A and B and recomputes every corpus metric from summed
per-example statistics (BLEU from n-gram counts, perplexity from NLL sums, ...), never by averaging
sentence scores. The p-value is read from the same resampled differences as the interval, so the two agree.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.rundir import RunResults, SampleRow, read_results_if_valid, read_samples


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_a", metavar="RUN_A", help="baseline run directory")
    parser.add_argument("run_b", metavar="RUN_B", help="run directory compared against RUN_A (differences are B - A)")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.add_argument("--profile", help="score every task with this profile instead of the runs' own")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def load_run(run_dir: str) -> tuple[dict[str, list[tuple[int, SampleRow]]], RunResults | None]:
    """Return (task -> [(line, sample row)], results.json or None) of a run directory."""
    rows = read_samples(run_dir)
    return rows, read_results_if_valid(run_dir)


def compare_task(task: str, rows_a, rows_b, profile: Any, language: str, *, resamples: int, seed: int) -> dict[str, Any]:
    """Return ``{"n": ..., "metrics": {key: PairedResult-as-dict}, "not_applicable": {...}}`` for one task.

    ``profile`` is a profile name or a Profile. A corpus-size-dependent metric (Distinct-n) gets its
    delta with a note naming the corpus sizes and no interval (bootstrap resamples are not valid for it).
    """
    from harness.comparability import size_note
    from harness.metrics import bootstrap, get_profile

    by_id_b = {r.example_id: (line, r) for line, r in rows_b}
    pairs = [((la, ra), by_id_b[ra.example_id]) for la, ra in rows_a if ra.example_id in by_id_b]
    if not pairs:
        raise UserError(f"task '{task}': the two runs share no example_id")
    records_a = [ra.records() for (_, ra), _ in pairs]
    records_b = [rb.records() for _, (_, rb) in pairs]
    profile = get_profile(profile) if isinstance(profile, str) else profile
    batches = [profile.batch([r.text for _, r in recs], [e.references for e, _ in recs], language,
                             [e for e, _ in recs], [r for _, r in recs]) for recs in (records_a, records_b)]
    (stats_a, skipped_a), (stats_b, skipped_b) = profile.statistics(batches[0]), profile.statistics(batches[1])
    by_metric_a, by_metric_b = ({id(m): s for m, s in stats} for stats in (stats_a, stats_b))
    counts = bootstrap.resample_counts(len(pairs), resamples, seed)
    metrics: dict[str, Any] = {}
    for metric in profile.metrics:  # the profile's order
        if id(metric) in by_metric_a and id(metric) in by_metric_b:
            for key, result in bootstrap.paired(metric, by_metric_a[id(metric)], by_metric_b[id(metric)], counts).items():
                metrics[key] = dict(result.__dict__)
                if metric.size_dependent:
                    metrics[key]["note"] = (f"interval {result.note}; " if result.note else "") + \
                        size_note(key, len(pairs), len(pairs))
    not_applicable = {k: v for k, v in {**skipped_b, **skipped_a}.items() if k not in metrics}
    return {"profile": profile.name, "language": language, "n": len(pairs), "only_in_a": len(rows_a) - len(pairs),
            "only_in_b": len(rows_b) - len(pairs), "metrics": metrics, "not_applicable": not_applicable}


def _fmt(x: float | None) -> str:
    return "nan" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4f}"


def _verdict(task: str, run_a: str, run_b: str, results_a: RunResults | None, results_b: RunResults | None):
    """Return the comparability verdict of one task of the two runs."""
    from harness.comparability import Side, Verdict, check_runs

    fact_a = results_a.tasks.get(task) if results_a else None
    fact_b = results_b.tasks.get(task) if results_b else None
    if fact_a is None or fact_b is None:
        return Verdict(notes=["results.json missing for a run; profile, protocol and data not checked"])
    return check_runs(Side.from_result(fact_a, "A"), Side.from_result(fact_b, "B"))


def run(args: argparse.Namespace) -> int:
    if args.resamples < 1:
        raise UserError("--resamples must be at least 1")
    rows_a, results_a = load_run(args.run_a)
    rows_b, results_b = load_run(args.run_b)
    facts_a = results_a.tasks if results_a else {}
    facts_b = results_b.tasks if results_b else {}
    tasks = [t for t in rows_a if t in rows_b]
    if not tasks:
        raise UserError(f"{args.run_a} and {args.run_b} share no task")
    report: dict[str, Any] = {"run_a": args.run_a, "run_b": args.run_b, "resamples": args.resamples,
                              "seed": args.seed, "tasks": {}}
    for task in tasks:
        fact_a, fact_b = facts_a.get(task), facts_b.get(task)
        profile = args.profile or (fact_a and fact_a.profile) or (fact_b and fact_b.profile)
        if profile is None:
            raise UserError(f"task '{task}': neither run records its metric profile; pass --profile")
        if not args.profile and fact_b and fact_b.profile not in (None, profile):
            raise UserError(f"task '{task}': the runs used different profiles ({profile} vs {fact_b.profile}); "
                            "pass --profile to score both the same way")
        verdict = _verdict(task, args.run_a, args.run_b, results_a, results_b)
        if args.profile:  # both re-scored with one profile: what they stored does not matter
            verdict.reasons = [r for r in verdict.reasons if not r.startswith(("metric profile", "metric signatures"))]
        if not verdict.comparable:
            report["tasks"][task] = {"comparable": False, "reasons": verdict.reasons, "notes": verdict.notes}
            continue
        language = next((r.language for r in (fact_a, fact_b) if r and r.language), "en")
        result = compare_task(task, rows_a[task], rows_b[task], profile, language,
                              resamples=args.resamples, seed=args.seed)
        report["tasks"][task] = {"comparable": True, "notes": verdict.notes, **result}
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
        return 0
    print(f"B = {args.run_b} minus A = {args.run_a}; paired bootstrap, {args.resamples} resamples, seed {args.seed}; "
          "interval and p-value read from the same resampled differences")
    for task, result in report["tasks"].items():
        if not result["comparable"]:
            print(f"\n{task}  no deltas: " + "; ".join(result["reasons"]))
            continue
        extra = f", {result['only_in_a']} only in A, {result['only_in_b']} only in B" if result["only_in_a"] or result["only_in_b"] else ""
        print(f"\n{task}  (profile {result['profile']}, {result['n']} paired examples{extra})")
        for note in result["notes"]:
            print(f"  note: {note}")
        width = max(map(len, list(result["metrics"]) + list(result["not_applicable"])), default=6)
        print(f"{'metric':<{width}}  {'A':>9}  {'B':>9}  {'B-A':>9}  {'95% CI':>21}  {'p':>6}")
        notes = []
        for key, r in result["metrics"].items():
            if r.get("note"):
                notes.append(f"[{len(notes) + 1}] {r['note']}")
                ci, p = f"n/a [{len(notes)}]", "n/a"
            else:
                ci, p = f"[{_fmt(r['low'])}, {_fmt(r['high'])}]", _fmt(r["p_value"])
            print(f"{key:<{width}}  {_fmt(r['a']):>9}  {_fmt(r['b']):>9}  {_fmt(r['delta']):>9}  {ci:>21}  {p:>6}")
        for key, reason in result["not_applicable"].items():
            print(f"{key:<{width}}  n/a ({reason})")
        for line in notes:
            print(line)
    return 0
