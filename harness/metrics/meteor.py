"""METEOR two ways: the METEOR 1.5 jar (nlg-eval, COCO) and nltk's re-implementation (SPT via HF evaluate).

They disagree by large margins on the same pair (0.4474 vs 0.7398 in one user's report), so a
profile names which one it uses.
"""
from __future__ import annotations

import io
from concurrent.futures import Future, ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

import numpy as np

from harness.metrics.base import Batch, CocoInput, MeanMetric, Metric
from harness.metrics.meteor_process import MAX_TOKENS, MeteorProcess, shared_process
from harness.metrics.text import Tokenizer

# METEOR 1.5 English parameters (task "default", the one ``-l en`` selects) and module weights for
# the exact, stem, synonym and paraphrase stages.
ALPHA, BETA, GAMMA, DELTA = 0.85, 0.20, 0.60, 0.75
STAGE_WEIGHTS = (1.0, 0.6, 0.8, 0.6)


def meteor_from_stats(stats: np.ndarray) -> float:
    """Return the METEOR 1.5 score of summed jar statistics (the jar's ``EVAL`` aggregate).

    The 23 statistics are: hypothesis length, reference length, their function-word counts, per
    stage (content matches hyp/ref, function matches hyp/ref), chunks, total matches hyp/ref; the jar
    sums them over segments and applies this formula. Hand-written because the jar only scores
    statistics over a pipe, too slow for 1000 bootstrap resamples; tests prove it equals the jar's
    ``EVAL`` output.
    """
    test_len, ref_len, test_fn, ref_fn = stats[0], stats[1], stats[2], stats[3]
    test_w = ref_w = 0.0
    for i, weight in enumerate(STAGE_WEIGHTS):
        tc, rc, tf, rf = stats[4 + 4 * i: 8 + 4 * i]
        test_w += weight * (DELTA * tc + (1 - DELTA) * tf)
        ref_w += weight * (DELTA * rc + (1 - DELTA) * rf)
    chunks, test_matches, ref_matches = stats[20], stats[21], stats[22]
    test_len_w = DELTA * (test_len - test_fn) + (1 - DELTA) * test_fn
    ref_len_w = DELTA * (ref_len - ref_fn) + (1 - DELTA) * ref_fn
    precision = test_w / test_len_w if test_len_w else 0.0
    recall = ref_w / ref_len_w if ref_len_w else 0.0
    if precision <= 0 or recall <= 0:
        return 0.0
    fmean = precision * recall / (ALPHA * precision + (1 - ALPHA) * recall)
    if test_matches == test_len and ref_matches == ref_len and chunks == 1:
        frag = 0.0
    else:
        frag = chunks / ((test_matches + ref_matches) / 2)
    return float(fmean * (1 - GAMMA * frag ** BETA))


def jar_segment_stats(stats: np.ndarray) -> np.ndarray:
    """Return SCORE statistics as the jar sums them in ``EVAL``: a segment matched entirely in one
    chunk counts 0 chunks (the jar zeroes them when it scores the segment, before aggregating)."""
    stats = np.array(stats, dtype=float).reshape(-1, 23)
    perfect = (stats[:, 21] == stats[:, 0]) & (stats[:, 22] == stats[:, 1]) & (stats[:, 20] == 1)
    stats[perfect, 20] = 0.0
    return stats


class MeteorJar(CocoInput, Metric):
    """METEOR 1.5 (``-l en -norm``) through one persistent JVM, as pycocoevalcap ``Meteor`` scores it.

    Statistics are the jar's 23 per-segment numbers (best reference chosen by the jar); the corpus
    value is the jar's aggregate over summed statistics, so it is exact for any subset or resample.
    Text reaches the jar tokenised like the other COCO scorers (nlg-eval: lowercase + word_tokenize),
    on one line, cut at ``max_tokens`` tokens so the jar's aligner cannot stall on runaway output.
    """

    libraries = ("pycocoevalcap",)
    languages = ("en",)
    starts_in_background = True

    def __init__(self, tokenizer: Tokenizer = Tokenizer("nltk", True), empty: str | None = "&", key: str = "METEOR",
                 scale: float = 1.0, process: MeteorProcess | None = None, chunk_size: int = 500,
                 max_tokens: int = MAX_TOKENS) -> None:
        super().__init__(tokenizer, empty, (key,), scale)
        self._process = process
        self.chunk_size = chunk_size
        self.max_tokens = max_tokens
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="meteor")
        self._pending: dict[int, tuple[Batch, Future]] = {}

    @property
    def process(self) -> MeteorProcess:
        """Return the JVM used (the process-wide shared one unless one was passed in)."""
        if self._process is None:
            self._process = shared_process("en", norm=True)
        return self._process

    def prepare(self) -> None:
        self.process.start()

    def begin(self, batch: Batch) -> None:
        # Lines are queued to the JVM at once; it scores them as soon as it has loaded.
        pairs = list(zip(*self.joined(batch)))
        self._pending[id(batch)] = (batch, self._pool.submit(self.process.statistics, pairs, self.chunk_size,
                                                             self.max_tokens))

    def statistics(self, batch: Batch) -> np.ndarray:
        if id(batch) not in self._pending:
            self.begin(batch)
        _, future = self._pending.pop(id(batch))
        return jar_segment_stats(np.asarray(future.result(), dtype=float).reshape(len(batch), 23))

    def finalize(self, totals: np.ndarray) -> dict[str, float]:
        return {self.keys[0]: meteor_from_stats(totals) * self.scale}

    def describe(self, language: str = "en") -> str:
        return f"meteor:jar-1.5-en-norm-maxtok{self.max_tokens}-{self.input_signature(language)}"


# The 45 WordNet 3.0 lexicographer files with their syntactic category (wndb(5)); Debian's
# wordnet-base ships no ``lexnames`` file, which nltk's reader requires.
_LEXNAMES = (
    "adj.all 3", "adj.pert 3", "adv.all 4", "noun.Tops 1", "noun.act 1", "noun.animal 1", "noun.artifact 1",
    "noun.attribute 1", "noun.body 1", "noun.cognition 1", "noun.communication 1", "noun.event 1",
    "noun.feeling 1", "noun.food 1", "noun.group 1", "noun.location 1", "noun.motive 1", "noun.object 1",
    "noun.person 1", "noun.phenomenon 1", "noun.plant 1", "noun.possession 1", "noun.process 1",
    "noun.quantity 1", "noun.relation 1", "noun.shape 1", "noun.state 1", "noun.substance 1", "noun.time 1",
    "verb.body 2", "verb.change 2", "verb.cognition 2", "verb.communication 2", "verb.competition 2",
    "verb.consumption 2", "verb.contact 2", "verb.creation 2", "verb.emotion 2", "verb.motion 2",
    "verb.perception 2", "verb.possession 2", "verb.social 2", "verb.stative 2", "verb.weather 2", "adj.ppl 3",
)
WORDNET_DIRS = ("/usr/share/wordnet",)


@lru_cache(maxsize=1)
def debian_wordnet():
    """Return an nltk WordNet reader over Debian's ``wordnet-base`` files (WordNet 3.0).

    Raises:
        RuntimeError: when the files are missing (install the Debian package ``wordnet-base``).
    """
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    root = next((d for d in WORDNET_DIRS if Path(d, "data.noun").is_file()), None)
    if root is None:
        raise RuntimeError("WordNet not found in /usr/share/wordnet: install the Debian package wordnet-base")
    if root not in nltk.data.path:
        nltk.data.path.append(root)

    class DebianWordNet(WordNetCorpusReader):
        """nltk's reader with ``lexnames`` served from code and no cross-version mapping."""

        def open(self, file):
            if file == "lexnames":
                return io.StringIO("".join(f"{i:02d} {line}\n" for i, line in enumerate(_LEXNAMES)))
            return super().open(file)

        def map_wn(self, version="wordnet"):
            return None

    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return DebianWordNet(nltk.data.FileSystemPathPointer(root), None)


class NltkMeteor(MeanMetric):
    """nltk ``meteor_score`` (alpha 0.9, beta 3, gamma 0.5, Porter stemmer, WordNet synonyms) per
    example, max over references, averaged, as HF ``evaluate('meteor')`` computes it for SPT."""

    libraries = ("nltk",)
    languages = ("en",)

    def __init__(self, tokenizer: Tokenizer = Tokenizer("nltk", False), key: str = "METEOR", scale: float = 1.0) -> None:
        self.tokenizer = tokenizer
        self.keys = (key,)
        self.scale = scale

    def not_applicable(self, batch: Batch) -> str | None:
        reason = super().not_applicable(batch)
        if reason is None and not Path(WORDNET_DIRS[0], "data.noun").is_file():
            return "WordNet missing: install the Debian package wordnet-base"
        return reason

    def values(self, batch: Batch):
        from nltk.translate.meteor_score import meteor_score

        wordnet = debian_wordnet()
        hyps, refs = batch.tokens(self.tokenizer)
        return np.array([meteor_score(rs, h, wordnet=wordnet) for h, rs in zip(hyps, refs)]), None

    def describe(self, language: str = "en") -> str:
        return f"meteor:nltk-a0.9-b3-g0.5-wordnet3.0-tok:{self.tokenizer.resolve(language).describe()}"
