"""``open_dialogue``: multi-turn open-domain response generation (the GPT-2 baseline's setup)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from harness.errors import UserError
from harness.records import BOT, Dialogue, Example
from harness.task import ChatMessage
from harness.task import Option, Task
from tasks.formats import open_domain


class OpenDialogueTask(Task):
    """Continue an open-domain conversation (devjwsong GPT-2 dialogue generation, systems.md §4.2).

    Utterances alternate by position, sp1 at even and sp2 at odd indices. Rule (the baseline's
    ``targets=sp2``, default): **only sp2 utterances are targets**, because the baseline trains the
    model as the second speaker and generates only sp2 turns at inference. For a target index h the
    window is the utterances ``max(0, h - max_turns + 1) .. h`` (at most ``max_turns``, default 5,
    counting the target); the earlier ones are the context and the target is the single reference.
    The baseline also shortens a window until it fits 1,024 GPT-2 tokens; dialbench leaves token
    budgets to the system (the windows of five utterances fit every model here).
    ``targets=all`` makes every utterance after the first a target (both sides of the
    conversation), a variant for systems that play either speaker. Dialogues with a single
    utterance give no example (counted in ``skipped``). The baseline's GPT-2-BPE text
    normalisation (capitalisation, punctuation spacing) is not applied: references stay as
    published.
    """

    name = "open_dialogue"
    description = "open-domain multi-turn responses (DailyDialog, EmpatheticDialogues, BST, PersonaChat)"
    language = "en"
    formats = ("dailydialog", "empathetic", "bst", "personachat")
    default_profile = "parlai"
    default_systems = ("copy_last", "retrieval", "zero_shot_lm")
    option_specs = {
        "max_turns": Option(5, int),
        "targets": Option("sp2", str, ("sp2", "all")),
    }

    def check_options(self, options: dict) -> dict:
        """Also refuse a window that cannot hold a context and a target."""
        checked = super().check_options(options)
        if checked["max_turns"] < 2:
            raise UserError(f"task '{self.name}' option 'max_turns': must be at least 2, got {checked['max_turns']}")
        return checked

    def load(self, path: Path, fmt: str | None = None) -> list[Dialogue]:
        """Return dialogues from any of the four open-domain formats."""
        fmt = self.choose_format(path, fmt, open_domain.detect)
        return open_domain.LOADERS[fmt](Path(path))

    def build_examples(self, dialogues: Sequence[Dialogue]) -> list[Example]:
        """Return one example per target utterance with its window of context (see the docstring)."""
        self.start_build()
        span = self.options["max_turns"]
        examples = []
        for dialogue in dialogues:
            if len(dialogue.turns) < 2:
                self.skip("dialogue has a single utterance")
                continue
            for index in range(1, len(dialogue.turns)):
                if self.options["targets"] == "sp2" and index % 2 == 0:
                    continue
                examples.append(Example(
                    id=f"{dialogue.id}:{index}",
                    task=self.name,
                    dialogue_id=dialogue.id,
                    context=dialogue.turns[max(0, index - span + 1):index],
                    references=(dialogue.turns[index].text,),
                    source=dialogue.source,
                ))
        return examples

    def prompt(self, example: Example) -> list[ChatMessage]:
        """Ask for the next line of a casual conversation between A and B."""
        target = "B" if example.context and example.context[-1].speaker != BOT else "A"
        system = ("You are taking part in a casual conversation. Write the next line of the conversation: "
                  "one natural, friendly reply of one or two sentences, without a speaker label.")
        lines = [f"{'B' if t.speaker == BOT else 'A'}: {t.text}" for t in example.context]
        content = "Conversation:\n" + "\n".join(lines) + f"\n\nWrite {target}'s next line."
        return [{"role": "system", "content": system}, {"role": "user", "content": content}]
