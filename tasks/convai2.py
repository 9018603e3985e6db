"""``convai2_persona``: persona-grounded response generation on ConvAI2 / PersonaChat (SPT's setup)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from harness.records import BOT, Dialogue, Example
from harness.task import ChatMessage
from harness.task import Option, Task
from tasks.formats import parlai


class ConvAI2PersonaTask(Task):
    """Respond as the persona owner (SPT ``dataset_helper.read_personachat_split``, systems.md §2.1).

    Rule: one example per dialogue line ``N partner\\tself``: the bot's persona sentences
    (``personas``; the partner's persona too in ``other``/``both`` files), the whole context so far
    ``[q1, r1, ..., q_t]`` and the target response ``r_t`` (the single reference); ``r_t`` then joins
    the context (``only_longest`` is False in SPT's ConvAI2 configs). Candidates, when the file has
    them, are kept in ``meta["candidates"]``. On the first 200 validation dialogues (self, original,
    no candidates) this gives 1,547 examples. SPT evaluates on the ConvAI2 valid file.

    Options: ``max_context_turns`` (default -1 = full history, as SPT's configs; k > 0 keeps the last
    2k-1 context utterances, SPT's ``max_context_turns``); ``split`` (which split of the JSON form
    to read, default ``valid``).
    """

    name = "convai2_persona"
    description = "ConvAI2/PersonaChat persona-grounded responses (one example per dialogue line)"
    language = "en"
    formats = ("parlai", "personachat_json")
    default_profile = "spt"
    default_systems = ("copy_last", "retrieval", "zero_shot_lm")
    option_specs = {
        "max_context_turns": Option(-1, int),
        "split": Option("valid", str),
    }

    def load(self, path: Path, fmt: str | None = None) -> list[Dialogue]:
        """Return dialogues from a ParlAI text file or the PersonaChat JSON form."""
        fmt = self.choose_format(path, fmt, parlai.detect)
        if fmt == "parlai":
            return parlai.load_text(Path(path))
        return parlai.load_json(Path(path), self.options["split"])

    def build_examples(self, dialogues: Sequence[Dialogue]) -> list[Example]:
        """Return one example per self response (see the class docstring)."""
        self.start_build()
        keep = self.options["max_context_turns"]
        examples = []
        for dialogue in dialogues:
            for index, turn in enumerate(dialogue.turns):
                if turn.speaker != BOT:
                    continue
                context = dialogue.turns[:index]
                if keep > 0:
                    context = context[-(2 * keep - 1):]
                meta = {"candidates": turn.meta["candidates"]} if turn.meta.get("candidates") else {}
                examples.append(Example(
                    id=f"{dialogue.id}:{index}",
                    task=self.name,
                    dialogue_id=dialogue.id,
                    context=context,
                    references=(turn.text,),
                    personas=dialogue.personas,
                    meta=meta,
                    source=dialogue.source,
                ))
        return examples

    def prompt(self, example: Example) -> list[ChatMessage]:
        """Ask for the next reply in character, persona first, then the conversation so far."""
        system = ("You are chatting with a new acquaintance. Stay in character: your persona is given below. "
                  "Reply with one short, friendly sentence that fits the conversation and your persona.")
        lines = []
        for persona in example.personas:
            title = "Your persona" if persona.owner == BOT else "Your partner's persona"
            lines.append(f"{title}:")
            lines.extend(f"- {sentence}" for sentence in persona.sentences)
            lines.append("")
        lines.append("Conversation:")
        lines.extend(f"{'You' if t.speaker == BOT else 'Partner'}: {t.text}" for t in example.context)
        lines += ["", "Write your next reply."]
        return [{"role": "system", "content": system}, {"role": "user", "content": "\n".join(lines)}]
