"""``dialbench score --hypotheses FILE --references FILE [...] --profile NAME [--json]``: nlg-eval-style scoring.

One sentence per line; each ``--references`` file is one reference set, line i of every file being
a reference of hypothesis i (as nlg-eval's ``compute_metrics``). Lines are stripped like nlg-eval.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from harness.errors import UserError
from harness.jsonio import read_text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hypotheses", required=True, metavar="FILE", help="system outputs, one per line")
    parser.add_argument("--references", required=True, action="append", metavar="FILE",
                        help="a reference set, one per line (repeat for several references per hypothesis)")
    parser.add_argument("--profile", default="nlgeval", help="metric profile (see `dialbench list profiles`)")
    parser.add_argument("--language", default="en", choices=["en", "zh"],
                        help="zh switches BLEU/ROUGE/F1/Dist to character tokens")
    parser.add_argument("--json", action="store_true", help="print one JSON object: metric values plus 'signature'")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples for the 95%% intervals")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")


def read_lines(path: str) -> list[str]:
    """Return the stripped lines of ``path`` (a final newline does not make an extra line)."""
    text = read_text(path)
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    return [line.strip() for line in lines]


def load(hypotheses: str, references: list[str]) -> tuple[list[str], list[list[str]]]:
    """Return hypotheses and per-hypothesis reference lists; a line-count mismatch is a UserError."""
    hyps = read_lines(hypotheses)
    ref_sets = [read_lines(path) for path in references]
    for path, refs in zip(references, ref_sets):
        if len(refs) != len(hyps):
            raise UserError(f"{path} has {len(refs)} lines but {hypotheses} has {len(hyps)}: "
                            "every reference file needs one line per hypothesis")
    return hyps, [list(group) for group in zip(*ref_sets)]


def _fmt(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.4f}"


def run(args: argparse.Namespace) -> int:
    from harness.metrics import get_profile

    for path in [args.hypotheses] + args.references:
        if not Path(path).is_file():
            raise UserError(f"{path}: file not found")
    profile = get_profile(args.profile)
    hyps, refs = load(args.hypotheses, args.references)
    report = profile.score_texts(hyps, refs, language=args.language, resamples=args.resamples, seed=args.seed)
    if args.json:
        values = {k: (None if math.isnan(v) else v) for k, v in report.corpus.items()}  # strict JSON: no NaN
        print(json.dumps({**values, "signature": report.signature}, ensure_ascii=False))
        return 0
    width = max(map(len, list(report.corpus) + list(report.not_applicable)), default=6)
    print(f"{len(hyps)} hypotheses, {len(args.references)} reference set(s), profile {profile.name} ({profile.unit})")
    for key, value in report.corpus.items():
        if key in report.interval_notes:
            print(f"{key:<{width}}  {_fmt(value)}  95% CI {report.interval_notes[key]}")
            continue
        low, high = report.intervals.get(key, (float("nan"), float("nan")))
        print(f"{key:<{width}}  {_fmt(value)}  95% CI [{_fmt(low)}, {_fmt(high)}]")
    for key, reason in report.not_applicable.items():
        print(f"{key:<{width}}  n/a ({reason})")
    print(f"signature: {report.signature}")
    return 0
