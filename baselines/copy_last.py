"""``copy_last``: the sanity floor. Answers with the last utterance of the context.

Any real system must beat it; a metric profile that scores it highly is measuring overlap with the
context rather than response quality. For strategy tasks it predicts the last strategy seen in the
context (the "same as before" floor).
"""
from __future__ import annotations

from typing import Sequence

from harness.records import Example, Response
from harness.system import System


def query_text(example: Example) -> str:
    """Return the text the system is asked about: the question input, else the last turn."""
    question = example.inputs.get("question")
    if isinstance(question, str) and question.strip():
        return question
    return example.context[-1].text if example.context else ""


class CopyLastSystem(System):
    """Echo the last context utterance (or the probing question)."""

    name = "copy_last"
    description = "sanity floor: repeats the last context utterance"

    def respond(self, examples: Sequence[Example]) -> list[Response]:
        """Return the last utterance and last seen strategy for each example."""
        responses = []
        for example in examples:
            last_strategy = next((t.strategy for t in reversed(example.context) if t.strategy), None)
            responses.append(Response(example_id=example.id, text=query_text(example), label=last_strategy))
        return responses
