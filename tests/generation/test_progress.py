"""The generation progress bar moves while a batch decodes, not only when the batch ends (issue 10)."""
from __future__ import annotations

from harness.generation import GenerationConfig, Generator
from tiny_lm import chat_prompts


class RecordingBar:
    """Stands in for tqdm and keeps every count it was moved to."""

    def __init__(self, total: int, initial: int) -> None:
        self.total, self.n, self.seen = total, initial, [initial]

    def update(self, amount: float) -> None:
        self.n += amount
        self.seen.append(self.n)

    def set_postfix_str(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass


def recorded_generation(loaded, prompts, cfg, batch_size):
    bars: list[RecordingBar] = []
    gen = Generator(loaded.model, loaded.tokenizer, fingerprint=loaded.fingerprint, batch_size=batch_size,
                    progress=False)

    def progress(total, done, what):
        bars.append(RecordingBar(total, done))
        return bars[-1]

    gen._progress = progress
    return gen.generate(prompts, cfg), bars[0]


def test_bar_advances_every_decoding_step_and_ends_exact(tiny_llama):
    prompts = chat_prompts(8)
    out, bar = recorded_generation(tiny_llama, prompts, GenerationConfig(max_new_tokens=12), batch_size=8)
    assert bar.seen == sorted(bar.seen), "the count never goes back"
    assert abs(bar.n - len(prompts)) < 1e-9
    inside = [n for n in bar.seen if 0 < n < len(prompts)]
    assert len(inside) >= 5, f"one batch of 8 rows should move the bar step by step, saw {bar.seen}"
    assert out == Generator(tiny_llama.model, tiny_llama.tokenizer, fingerprint=tiny_llama.fingerprint,
                            batch_size=1, progress=False).generate(prompts, GenerationConfig(max_new_tokens=12))


def test_bar_moves_inside_beam_search_batches(tiny_llama):
    prompts = chat_prompts(4)
    _, bar = recorded_generation(tiny_llama, prompts, GenerationConfig(max_new_tokens=8, num_beams=2), batch_size=4)
    assert bar.seen == sorted(bar.seen) and abs(bar.n - len(prompts)) < 1e-9
    assert len([n for n in bar.seen if 0 < n < len(prompts)]) >= 3
