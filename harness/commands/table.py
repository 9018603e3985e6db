"""``dialbench table RUN_DIR... --format md|csv|latex|json [--output FILE]``."""
from __future__ import annotations

import argparse

from harness.jsonio import write_atomic


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories (each holds results.json)")
    parser.add_argument("--format", default="md", choices=["md", "csv", "latex", "json", "html"],
                        help="html: one self-contained page with sortable tables and plots")
    parser.add_argument("--raw", action="store_true", help="keep each profile's stored unit instead of the papers' units (e.g. BLEU 0-1, not x100)")
    parser.add_argument("--published", action="store_true", help="add the published rows of the same tasks")
    parser.add_argument("--delta-to", metavar="PUBLISHED_SYSTEM", help="add a row 'ours - PUBLISHED_SYSTEM' under each of our rows")
    parser.add_argument("--references", metavar="FILE", help="published numbers file (default: leaderboards/references/published.json)")
    parser.add_argument("--output", help="write the table to this file (atomically) instead of stdout")


def run(args: argparse.Namespace) -> int:
    from leaderboards.render import render_table

    text = render_table(args.run_dirs, fmt=args.format, raw=args.raw, published=args.published,
                        delta_to=args.delta_to, references=args.references)
    if args.output:
        write_atomic(args.output, text)
    else:
        print(text, end="")
    return 0
