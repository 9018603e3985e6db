"""Fixtures for the metric tests (helpers live in metric_helpers.py)."""
from __future__ import annotations

import json
import sys

import pytest

from tests.metrics.metric_helpers import ESCONV, FAKE_METEOR


@pytest.fixture
def fake_meteor(tmp_path):
    """Return a function building a MeteorProcess that runs the fake jar in ``mode``."""
    from harness.metrics.meteor_process import MeteorProcess

    script = tmp_path / "fake_meteor.py"
    script.write_text(FAKE_METEOR)
    made = []

    def build(mode: str, **kwargs) -> MeteorProcess:
        proc = MeteorProcess(command=[sys.executable, str(script), mode, str(tmp_path / "crashed")], **kwargs)
        made.append(proc)
        return proc

    yield build
    for proc in made:
        proc.close()


@pytest.fixture(scope="session")
def esconv_pairs():
    """Return (hypotheses, references) built from the ESConv valid split: each supporter turn is the
    reference of the previous supporter turn; skips when ../shared/data is absent."""
    if not ESCONV.is_file():
        pytest.skip("../shared/data/esconv/valid.txt is not present")
    hyps, refs = [], []
    for line in ESCONV.read_text(encoding="utf-8").splitlines():
        turns = [t["text"] for t in json.loads(line)["dialog"] if t["speaker"] == "sys"]
        for previous, current in zip(turns, turns[1:]):
            hyps.append(previous)
            refs.append([current])
    return hyps, refs
