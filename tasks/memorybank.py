"""``memorybank_probe``: long-term-memory probing questions over a MemoryBank store (SiliconFriend)."""
from __future__ import annotations

import dataclasses
import datetime as dt
import re
from pathlib import Path
from typing import Any, Sequence

from harness.errors import UserError
from harness.records import Dialogue, Example, MemoryItem, Response
from harness.task import ChatMessage
from harness.task import Option, Task
from tasks.formats import memorybank, strict

WORD = re.compile(r"[a-z0-9]+")


def _keys(text: str, language: str) -> set[str]:
    """Return overlap keys: character bigrams for Chinese, lowercase words of 3+ letters otherwise."""
    if language == "zh":
        chars = [c for c in text if not c.isspace() and c.isalnum()]
        return {a + b for a, b in zip(chars, chars[1:])}
    return {w for w in WORD.findall(text.lower()) if len(w) > 2}


class MemoryBankProbeTask(Task):
    """Answer probing questions from a user's long-term memory (MemoryBank evaluation, systems.md §3.4).

    Rule: one example per probing question (``memory_bank_X.json`` + ``probing_questions_X.jsonl``;
    100 per language), asked as a new turn after the user's 10 days of history. The example carries
    that user's MemoryStore (one item per exchange ``YYYY-MM-DD#TURN``, daily summaries
    ``YYYY-MM-DD#summary`` when the store has them), ``inputs["question"]``, ``inputs["eval_date"]``
    (option ``eval_date``, else the day after the user's last history date: the paper asks after
    the sessions end), ``inputs["username"]`` and ``inputs["botname"]``. The paper scored answers
    by hand; with dialbench's gold key (option ``gold``, or ``memorybank_X_gold.jsonl`` /
    ``*_gold.jsonl`` found beside the store) each example gets ``references=(answer,)`` and
    ``meta["evidence"]`` (item ids), ``meta["keywords"]``, ``meta["answer_type"]``; without it
    ``references`` is empty and the memory metrics report "not applicable".

    Options: ``questions`` (path of the probing questions, default found beside the store),
    ``gold`` (path, default found beside; ``none`` to ignore it), ``language`` (``auto`` detects
    Chinese from the store text; ``en``/``zh``), ``eval_date`` (YYYY-MM-DD), ``prompt_memory_chars``
    (how much memory text ``prompt`` includes, default 1500 characters).
    """

    name = "memorybank_probe"
    description = "MemoryBank probing questions over a user's long-term memory store (EN/CN)"
    language = "zh"
    formats = ("memorybank",)
    default_profile = "memorybank"
    default_systems = ("copy_last", "retrieval", "zero_shot_lm")
    option_specs = {
        "questions": Option(None, str),
        "gold": Option(None, str),
        "language": Option("auto", str, ("auto", "en", "zh")),
        "eval_date": Option(None, str),
        "prompt_memory_chars": Option(1500, int),
    }

    def __init__(self, protocol: str | None = None, **options: Any) -> None:
        super().__init__(protocol, **options)
        if self.options["language"] != "auto":
            self.language = self.options["language"]
        if self.options["eval_date"]:
            strict.check_date(self.options["eval_date"], strict.Where(Path("<option eval_date>")), "eval_date")
        self.gold_path: Path | None = None

    def load(self, path: Path, fmt: str | None = None) -> list[Dialogue]:
        """Return one dialogue per user (store + questions + optional gold) from PATH (file or folder)."""
        if fmt and fmt not in self.formats:
            raise UserError(f"task '{self.name}' cannot read format '{fmt}'; valid: {', '.join(self.formats)}")
        store_path, questions_path, gold_path = memorybank.locate(Path(path), self.options["questions"], self.options["gold"])
        dialogues = memorybank.load_store(store_path)
        by_user = {d.id: d for d in dialogues}
        questions = memorybank.load_questions(questions_path, set(by_user))
        gold = memorybank.load_gold(gold_path, by_user, questions) if gold_path else {}
        self.gold_path = gold_path
        if self.options["language"] == "auto":
            self.language = memorybank.detect_language(dialogues)
        out = []
        for dialogue in dialogues:
            asked = questions.get(dialogue.id, ())
            meta = {
                "questions": tuple(q for q, _ in asked),
                "question_source": str(questions_path),
                "question_lines": tuple(line for _, line in asked),
                "gold": tuple(gold.get((dialogue.id, qid)) for qid in range(len(asked))),
            }
            out.append(dataclasses.replace(dialogue, meta={**dialogue.meta, **meta}))
        return out

    def _eval_date(self, dialogue: Dialogue) -> str:
        if self.options["eval_date"]:
            return self.options["eval_date"]
        last = max(t.date for t in dialogue.turns if t.date)
        return (dt.date.fromisoformat(last) + dt.timedelta(days=1)).isoformat()

    def build_examples(self, dialogues: Sequence[Dialogue]) -> list[Example]:
        """Return one example per probing question (see the class docstring)."""
        self.start_build()
        examples = []
        for dialogue in dialogues:
            questions = dialogue.meta.get("questions", ())
            if not questions:
                self.skip("user has no probing questions")
            for qid, question in enumerate(questions):
                gold = dialogue.meta["gold"][qid]
                meta: dict[str, Any] = {"qid": qid}
                if gold:
                    meta.update(evidence=gold["evidence"], keywords=gold["keywords"], answer_type=gold["answer_type"])
                source = dataclasses.replace(dialogue.source, path=dialogue.meta["question_source"],
                                             line=dialogue.meta["question_lines"][qid]) if dialogue.source else None
                examples.append(Example(
                    id=f"{dialogue.id}:{qid}",
                    task=self.name,
                    dialogue_id=dialogue.id,
                    context=(),
                    references=(gold["answer"],) if gold else (),
                    memory=dialogue.memory,
                    inputs={"question": question, "eval_date": self._eval_date(dialogue),
                            "username": dialogue.id, "botname": "AI"},
                    meta=meta,
                    source=source,
                ))
        return examples

    def counts(self, dialogues: Sequence[Dialogue], examples: Sequence[Example]) -> dict[str, Any]:
        """Add users, exchanges, questions and gold-joined questions to the common counts."""
        counts = super().counts(dialogues, examples)
        counts.update(
            users=len(dialogues),
            exchanges=sum(1 for d in dialogues for i in d.memory.items if i.kind == "exchange"),  # type: ignore[union-attr]
            summaries=sum(1 for d in dialogues for i in d.memory.items if i.kind == "summary"),  # type: ignore[union-attr]
            questions=sum(len(d.meta.get("questions", ())) for d in dialogues),
            gold=sum(1 for e in examples if e.references),
            language=self.language,
        )
        return counts

    # --- prompting ------------------------------------------------------------------------------
    def prompt_memory(self, example: Example) -> list[MemoryItem]:
        """Return the memory items the prompt shows, most question-like first, within the budget.

        The whole store does not fit a small model's context, so items are ranked by overlap with
        the question (character bigrams for Chinese, words otherwise; ties keep store order) and
        taken until ``prompt_memory_chars`` is used; ``prompt`` shows them in store (date) order.
        """
        if example.memory is None:
            return []
        query = _keys(str(example.inputs.get("question", "")), self.language)
        items = list(example.memory.items)
        ranked = sorted(range(len(items)), key=lambda i: -len(query & _keys(items[i].text, self.language)))
        budget, chosen = self.options["prompt_memory_chars"], []
        for index in ranked:
            cost = len(items[index].text) + 14
            if cost > budget:
                continue
            chosen.append(index)
            budget -= cost
        return [items[i] for i in chosen]

    def prompt(self, example: Example) -> list[ChatMessage]:
        """Ask the companion to answer from the memory lines shown (dated), or say it does not remember."""
        user, bot = example.inputs.get("username", "the user"), example.inputs.get("botname", "AI")
        system = (f"You are {bot}, {user}'s AI companion with long-term memory. Answer {user}'s question using "
                  "the memory of your past conversations below. Be brief and specific; if the memory does not "
                  "contain the answer, say that you do not remember.")
        if self.language == "zh":
            system += " Answer in Chinese (用中文回答)."
        lines = ["Memory:"]
        order = {item.id: i for i, item in enumerate(example.memory.items)} if example.memory else {}
        for item in sorted(self.prompt_memory(example), key=lambda it: order[it.id]):
            text = item.text.replace("\n", " | ")
            lines.append(f"[{item.date}] {text}" if item.kind == "exchange" else f"[{item.date} summary] {text}")
        if example.memory is not None and example.memory.profile:
            lines.append(f"Personality of {user}: {example.memory.profile}")
        lines += ["", f"Today is {example.inputs.get('eval_date')}.", f"{user}: {example.inputs.get('question')}"]
        return [{"role": "system", "content": system}, {"role": "user", "content": "\n".join(lines)}]

    def parse_output(self, example: Example, text: str) -> Response:
        """Return the answer; the ids of the memory items the prompt showed go to ``meta["excerpt"]``.

        They are the task's selection (word overlap with the question), not the system's retrieval,
        so they are not reported as ``retrieved``: evidence recall is left to systems that choose
        memory items themselves, and samples.jsonl records the excerpt as the memory the model saw.
        """
        answer = re.sub(r"^\s*(AI|assistant)\s*[:：]\s*", "", text.strip(), flags=re.IGNORECASE)
        return Response(example_id=example.id, text=answer,
                        meta={"excerpt": [i.id for i in self.prompt_memory(example)]})
