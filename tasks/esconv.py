"""``esconv_strategy``: emotional-support response generation with strategy prediction (MultiESC / MAGIC)."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

from harness.records import BOT, Dialogue, Example, Response, Turn
from harness.task import ChatMessage
from harness.task import Option, Task
from tasks.formats import esconv


class ESConvStrategyTask(Task):
    """Predict the supporter's strategy and response on ESConv (MAGIC's example rules, systems.md §6.1).

    Protocol ``default`` (MAGIC train/valid rule, ``data/add_memory_motivation.py``): one example per
    system turn that directly follows a user turn, i.e. in an alternating dialogue the odd indices
    when it starts with the user and indices 2, 4, ... when it starts with the system (the opening
    greeting is never a target). The example carries the situation (``inputs["situation"]``), the
    full preceding context, the target response (reference) and strategy (``label``), and the
    memory of all *earlier* system turns: ``inputs["response_memory"]`` (texts) and
    ``inputs["strategy_memory"]`` (their strategies), empty for the first response. On MultiESC's
    valid split this gives 2,156 examples.

    Protocol ``last`` (MAGIC test rule): one example per dialogue, the last system turn (the
    second-to-last turn when the dialogue ends with the user), with empty memories: 195 on the
    195-dialogue splits.

    Both rules need alternating speakers (MAGIC's parity logic assumes it; MultiESC's files
    alternate strictly); a dialogue that does not alternate is a DataError, never silently
    re-cut. Original ``ESConv.json`` dialogues are made alternating by merging consecutive messages
    (option ``merge_consecutive``, as MultiESC did).

    Options: ``strategy_set`` ``multiesc`` (default, MultiESC/MAGIC's 8 classes) or ``original``;
    ``expand_contractions`` (default false: texts as published; true reproduces MAGIC's
    preprocessing, which expands "I ' m" -> "I am" in context, response and memories, and is what
    MAGIC's references look like); ``merge_consecutive`` (default true, ESConv.json only).
    """

    name = "esconv_strategy"
    description = "ESConv emotional-support responses + strategy labels (MultiESC split, MAGIC rules)"
    language = "en"
    formats = ("multiesc", "esconv_json")
    protocols = ("default", "last")
    default_profile = "nlgeval"
    default_systems = ("copy_last", "retrieval", "zero_shot_lm")
    option_specs = {
        "strategy_set": Option("multiesc", str, ("multiesc", "original")),
        "expand_contractions": Option(False, bool),
        "merge_consecutive": Option(True, bool),
    }

    @property
    def strategies(self) -> tuple[str, ...]:
        """Return the class names of the selected strategy set (the label space of ``label``)."""
        return esconv.STRATEGY_SETS[self.options["strategy_set"]]

    def load(self, path: Path, fmt: str | None = None) -> list[Dialogue]:
        """Return ESConv dialogues from MultiESC JSON lines or the original ESConv.json."""
        fmt = self.choose_format(path, fmt, esconv.detect)
        dialogues = esconv.load(Path(path), fmt, self.options["strategy_set"], self.options["merge_consecutive"])
        for dialogue in dialogues:
            esconv.check_alternation(dialogue)
        return dialogues

    def _text(self, text: str) -> str:
        return esconv.expand_contractions(text) if self.options["expand_contractions"] else text

    def _targets(self, dialogue: Dialogue) -> list[int]:
        turns = dialogue.turns
        if self.protocol == "last":
            last = next((i for i in range(len(turns) - 1, -1, -1) if turns[i].speaker == BOT), None)
            if last is None:
                self.skip("dialogue has no supporter turn")
                return []
            return [last]
        targets = [i for i in range(1, len(turns)) if turns[i].speaker == BOT and turns[i - 1].speaker != BOT]
        if not targets:
            self.skip("dialogue has no supporter turn after a seeker turn")
        return targets

    def build_examples(self, dialogues: Sequence[Dialogue]) -> list[Example]:
        """Return the examples of the selected protocol (see the class docstring)."""
        self.start_build()
        examples = []
        for dialogue in dialogues:
            esconv.check_alternation(dialogue)
            turns = tuple(Turn(t.speaker, self._text(t.text), t.name, t.strategy, meta=t.meta) for t in dialogue.turns)
            for index in self._targets(dialogue):
                earlier = [t for t in turns[:index] if t.speaker == BOT] if self.protocol == "default" else []
                examples.append(Example(
                    id=f"{dialogue.id}:{index}",
                    task=self.name,
                    dialogue_id=dialogue.id,
                    context=turns[:index],
                    references=(turns[index].text,),
                    label=turns[index].strategy,
                    inputs={
                        "situation": self._text(dialogue.meta["situation"]),
                        "emotion_type": dialogue.meta["emotion_type"],
                        "problem_type": dialogue.meta["problem_type"],
                        "response_memory": tuple(t.text for t in earlier),
                        "strategy_memory": tuple(t.strategy or "Others" for t in earlier),
                    },
                    source=dialogue.source,
                ))
        return examples

    def prompt(self, example: Example) -> list[ChatMessage]:
        """Ask for ``[Strategy] response``: the supporter's next turn prefixed by one of the 8 strategies."""
        strategies = ", ".join(f"[{s}]" for s in self.strategies)
        system = (
            "You are a supportive listener in an emotional-support conversation. Choose the best support "
            f"strategy for your next turn from: {strategies}. Reply with the strategy in square brackets "
            "followed by one short, empathetic response, e.g. \"[Question] How long have you felt this way?\""
        )
        lines = [f"Situation ({example.inputs.get('emotion_type')}, {example.inputs.get('problem_type')}): "
                 f"{example.inputs.get('situation', '')}", "", "Conversation:"]
        for turn in example.context:
            if turn.speaker == BOT:
                lines.append(f"Supporter: [{turn.strategy or 'Others'}] {turn.text}")
            else:
                lines.append(f"Seeker: {turn.text}")
        lines += ["", "Write the Supporter's next turn as \"[Strategy] response\"."]
        return [{"role": "system", "content": system}, {"role": "user", "content": "\n".join(lines)}]

    def parse_output(self, example: Example, text: str) -> Response:
        """Split ``[Strategy] response`` into a predicted class (default Others) and the response text.

        The first bracketed name that matches a class wins (case-insensitive); otherwise a class name
        at the very start of the text; otherwise ``Others`` (MAGIC's fallback, with the intended
        fix from systems.md §6.2: only the continuation is parsed and labels are mapped to the set).
        """
        raw = text.strip()
        label = None
        body = raw
        for match in re.finditer(r"\[([^\[\]]{2,60})\]", raw):
            label = esconv.canonical_strategy(match.group(1), self.options["strategy_set"])
            if label:
                body = (raw[: match.start()] + raw[match.end():]).strip()
                break
        if label is None:
            lowered = raw.lower()
            for name in sorted(self.strategies, key=len, reverse=True):
                if lowered.startswith(name.lower()):
                    label, body = name, raw[len(name):].lstrip(" :-").strip()
                    break
        body = re.sub(r"^(supporter|assistant)\s*:\s*", "", body, flags=re.IGNORECASE)
        return Response(example_id=example.id, text=body, label=label or "Others")
