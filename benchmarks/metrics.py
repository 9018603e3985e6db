"""Benchmark: the ``nlgeval`` profile (+ F1) on 1,000 pairs vs a naive pycocoevalcap loop.

Ours: one ``Profile.score_texts`` call on 1,000 hypothesis/reference pairs: COCO BLEU-1..4,
METEOR 1.5 (one JVM for the run, started first so it loads while the other metrics compute),
ROUGE-L, CIDEr-D, corpus Dist-1/2, unigram F1 and 1,000-resample bootstrap intervals, timed from
nothing running to the report, JVM start included.

Naive: what a per-batch evaluation loop does with pycocoevalcap: for every 100-pair call, a new
``Meteor()`` (new JVM) plus ``Bleu``/``Rouge``/``Cider`` on that chunk. Running all 10 calls would
take minutes, so ``--naive-chunks`` calls (default 2) are run and timed, and the total for 1,000
pairs is extrapolated linearly (mean seconds per call x 10); the METEOR segment scores of those
chunks are checked against ours.

Pairs come from ../shared/data/esconv/valid.txt (each supporter turn is the reference, the
previous supporter turn of the same dialogue the hypothesis), or are synthetic when it is absent.
The last output line is one JSON object with ``seconds_1000`` and ``speedup_vs_naive``.
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
ESCONV = ROOT.parent / "shared" / "data" / "esconv" / "valid.txt"


def build_pairs(n: int) -> tuple[list[str], list[list[str]], str]:
    """Return n (hypothesis, [reference]) pairs and where they came from."""
    if ESCONV.is_file():
        hyps, refs = [], []
        for line in ESCONV.read_text(encoding="utf-8").splitlines():
            turns = [t["text"] for t in json.loads(line)["dialog"] if t["speaker"] == "sys"]
            for previous, current in zip(turns, turns[1:]):
                hyps.append(previous)
                refs.append([current])
        if len(hyps) >= n:
            return hyps[:n], refs[:n], str(ESCONV)
    rng = random.Random(0)
    vocab = "i you feel that it is really hard to understand how much this means for me we can talk about".split()
    hyps = [" ".join(rng.choice(vocab) for _ in range(rng.randint(3, 25))) for _ in range(n)]
    refs = [[" ".join(rng.choice(vocab) for _ in range(rng.randint(3, 25)))] for _ in range(n)]
    return hyps, refs, "synthetic"


def ours(hyps, refs):
    from harness.metrics.f1 import TokenF1
    from harness.metrics.meteor_process import close_all, shared_process
    from harness.metrics.profiles import Profile, nlgeval

    started = time.perf_counter()  # no JVM runs yet in this fresh process: its start is timed
    base = nlgeval()
    profile = Profile("nlgeval+f1", base.description, base.metrics + (TokenF1("none"),))
    report = profile.score_texts(hyps, refs)
    seconds = time.perf_counter() - started
    jvm_ready = shared_process().ready_after
    close_all()
    return seconds, report, jvm_ready


def naive(hyps, refs, chunks: int, chunk_size: int = 100):
    """Return (seconds per call, METEOR segment scores) of ``chunks`` naive nlg-eval-style calls."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.rouge.rouge import Rouge

    from harness.metrics.text import Tokenizer

    tok = Tokenizer("nltk", lowercase=True)
    times, meteor_scores = [], []
    for c in range(chunks):
        started = time.perf_counter()
        span = range(c * chunk_size, (c + 1) * chunk_size)
        res = {i: [" ".join(tok(hyps[i])) or "&"] for i in span}
        gts = {i: [" ".join(tok(r)) for r in refs[i]] for i in span}
        with contextlib.redirect_stdout(io.StringIO()):
            Bleu(4).compute_score(gts, res)
            meteor = Meteor()  # a new JVM per call: the naive pattern
            _, seg = meteor.compute_score(gts, res)
            Rouge().compute_score(gts, res)
            Cider().compute_score(gts, res)
        meteor.meteor_p.kill()
        meteor.meteor_p.wait()
        del meteor
        gc.collect()
        times.append(time.perf_counter() - started)
        meteor_scores.extend(seg)
    return sum(times) / len(times), meteor_scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--naive-chunks", type=int, default=2, help="naive 100-pair calls actually run")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    hyps, refs, source = build_pairs(args.pairs)
    load_before = os.getloadavg()[0]
    cpu0 = time.process_time()
    seconds, report, jvm_ready = ours(hyps, refs)
    cpu = time.process_time() - cpu0
    print(f"pairs: {len(hyps)} from {source}; load average before: {load_before:.2f} on {os.cpu_count()} cores")
    print(f"ours: {seconds:.2f} s wall (python CPU {cpu:.2f} s), one METEOR JVM (first answer after {jvm_ready:.2f} s), "
          "bootstrap 1000 resamples")
    for key, value in report.corpus.items():
        print(f"  {key:8s} {value:.4f}")
    per_call, naive_meteor = naive(hyps, refs, args.naive_chunks)
    calls = -(-len(hyps) // 100)
    naive_total = per_call * calls
    ours_meteor = [row["METEOR"] for row in report.per_example[:len(naive_meteor)]]
    max_diff = max(abs(a - b) for a, b in zip(ours_meteor, naive_meteor))
    print(f"naive: {per_call:.2f} s per 100-pair call with a new Meteor() JVM (mean of {args.naive_chunks} calls run), "
          f"x {calls} calls = {naive_total:.1f} s estimated for {len(hyps)} pairs")
    print(f"METEOR segment scores, ours vs pycocoevalcap on the {len(naive_meteor)} naive pairs: max |diff| {max_diff:.2e}")
    print(f"speedup vs naive: {naive_total / seconds:.1f}x")
    print(json.dumps({"pairs": len(hyps), "source": source, "seconds_1000": round(seconds * 1000 / len(hyps), 3),
                      "naive_seconds_1000_estimated": round(naive_total * 1000 / len(hyps), 3),
                      "naive_calls_run": args.naive_chunks, "speedup_vs_naive": round(naive_total / seconds, 2),
                      "meteor_max_abs_diff_vs_pycocoevalcap": max_diff, "jvm_ready_seconds": round(jvm_ready, 2),
                      "load_average_before": round(load_before, 2)}))


if __name__ == "__main__":
    main()
