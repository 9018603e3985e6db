"""The three COMEDY tasks on Dolphin data: session summarization, memory compression, grounded response.

All three read the same files (``tasks/formats/dolphin.py`` documents the formats, including
dialbench's own JSON-lines format with references); each task cuts its own examples. Prompts are our
own Chinese paraphrases of COMEDY's instructions (``comedy_test.py``, systems.md §1.4), so an
instruction-tuned model is asked for the same outputs the COMEDY model produced.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar, Sequence

from harness.records import BOT, Dialogue, Example, MemoryItem, MemoryStore, Response, Turn
from harness.task import ChatMessage
from harness.task import Option, Task
from tasks.formats import dolphin

ROW_FORMATS = ("sft", "dpo")


class DolphinTask(Task):
    """Shared loading, SFT/DPO row handling and output clean-up of the three Dolphin tasks."""

    kind: ClassVar[str] = ""
    language = "zh"
    formats = ("dialbench", "sft", "dpo", "episodes")
    default_profile = "dolphin"
    default_systems = ("copy_last", "retrieval", "zero_shot_lm")
    option_specs = {"sft_kind": Option("auto", str, ("auto", "all"))}
    instruction: ClassVar[str] = ""

    def load(self, path: Path, fmt: str | None = None) -> list[Dialogue]:
        """Return episodes (dialbench, episodes) or one dialogue per training row (sft, dpo)."""
        fmt = self.choose_format(path, fmt, dolphin.detect)
        path = Path(path)
        if fmt == "dialbench":
            return dolphin.load_dialbench(path)
        if fmt == "episodes":
            return dolphin.load_episodes(path)
        return dolphin.load_rows(path, fmt)

    def build_examples(self, dialogues: Sequence[Dialogue]) -> list[Example]:
        """Return this task's examples: rows of its kind, or the episode rule of the subclass."""
        self.start_build()
        examples: list[Example] = []
        for dialogue in dialogues:
            if dialogue.meta.get("format") in ROW_FORMATS:
                examples.extend(self._row_example(dialogue))
            else:
                examples.extend(self.episode_examples(dialogue))
        return examples

    def _row_example(self, dialogue: Dialogue) -> list[Example]:
        """Return the example of one SFT/DPO row: instruction -> target (other tasks' rows are skipped)."""
        kind = dialogue.meta["kind"]
        if kind != self.kind and self.options["sft_kind"] != "all":
            self.skip(f"training row of dolphin_{kind}")
            return []
        meta = {"rejected": dialogue.meta["rejected"]} if "rejected" in dialogue.meta else {}
        return [Example(id=f"{dialogue.id}:{len(dialogue.turns) - 1}", task=self.name, dialogue_id=dialogue.id,
                        context=dialogue.turns[:-1], references=(dialogue.turns[-1].text,),
                        inputs={"instruction": dialogue.turns[-2].text}, meta=meta, source=dialogue.source)]

    def episode_examples(self, dialogue: Dialogue) -> list[Example]:
        """Return the examples of one episode (subclasses implement their rule)."""
        raise NotImplementedError

    def example(self, dialogue: Dialogue, suffix: str, context: tuple[Turn, ...], reference: str | None,
                memory: MemoryStore | None = None, **inputs: Any) -> Example:
        """Return an example of ``dialogue`` with the names of both speakers among its inputs."""
        return Example(id=f"{dialogue.id}:{suffix}", task=self.name, dialogue_id=dialogue.id, context=context,
                       references=(reference,) if reference else (), memory=memory,
                       inputs={"username": dialogue.meta["username"], "botname": dialogue.meta["botname"], **inputs},
                       source=dialogue.source)

    @staticmethod
    def session_store(dialogue: Dialogue, limit: int | None = None) -> MemoryStore:
        """Return the episode's past sessions (the first ``limit``) as a memory store, one item per
        session, for systems that build their own memory (COMEDY's tasks 1 and 2)."""
        items = []
        for session in dialogue.meta["sessions"][:limit]:
            turns = dialogue.turns[session["start"]:session["end"]]
            lines = session.get("raw") or tuple(f"{history_lines((t,), dialogue.meta['username'], dialogue.meta['botname'])}"
                                                for t in turns)
            items.append(MemoryItem(id=session["session"], text="\n".join(lines), kind="session",
                                    meta={"utterances": tuple(lines)}))
        return MemoryStore(user=dialogue.meta["username"], items=tuple(items))

    # --- prompting ------------------------------------------------------------------------------
    def task_text(self, example: Example) -> str:
        """Return the user message for an episode example (subclasses fill in their instruction)."""
        raise NotImplementedError

    def prompt(self, example: Example) -> list[ChatMessage]:
        """Return the system statement of the task and its instruction (a training row's own one if given)."""
        content = example.inputs.get("instruction") or self.task_text(example)
        return [{"role": "system", "content": self.instruction}, {"role": "user", "content": content}]

    def parse_output(self, example: Example, text: str) -> Response:
        """Clean like ``comedy_test.py``: cut at ``</s>``, drop 【】 and a leaked ``[AI]`` or name prefix."""
        out = text.split("</s>")[0].replace("【", "").replace("】", "")
        out = re.sub(r"^\s*(\[AI\]|<s>)\s*", "", out).strip()
        botname = str(example.inputs.get("botname", ""))
        for prefix in (f"{botname}：", f"{botname}:"):
            if botname and out.startswith(prefix):
                out = out[len(prefix):].strip()
        return Response(example_id=example.id, text=out)


def history_lines(turns: Sequence[Turn], username: str, botname: str) -> str:
    """Return turns as ``name：text`` lines (names from the turn, else from the role)."""
    return "\n".join(f"{t.name if t.name not in (None, 'user', 'bot') else (botname if t.speaker == BOT else username)}：{t.text}"
                     for t in turns)


class DolphinSummarizationTask(DolphinTask):
    """COMEDY Task 1, session-level memory summarization (systems.md §1.4).

    Rule (dialbench format): one example per session that carries a gold ``memory``; the context is
    the session's history and the reference is its memory items joined with ``|`` (COMEDY's
    ``【a|b|c】`` output with the brackets removed, as its post-processing does). Sessions without a
    memory are skipped and counted. Episodes format (``comedy_test.py``): the first
    ``first_sessions`` (15) sessions of each episode, without references. SFT/DPO rows: rows whose
    target looks like memory items (``|``-separated or ``【``-bracketed).
    """

    name = "dolphin_summarization"
    kind = "summarization"
    description = "Dolphin/COMEDY task 1: write the memory items of a dialogue session (zh)"
    option_specs = {**DolphinTask.option_specs, "first_sessions": Option(15, int)}
    instruction = "你是一个对话记忆整理助手，负责把两人对话整理成客观、完整的记忆条目。"

    def episode_examples(self, dialogue: Dialogue) -> list[Example]:
        examples = []
        for number, session in enumerate(dialogue.meta["sessions"]):
            turns = dialogue.turns[session["start"]:session["end"]]
            if dialogue.meta["format"] == "episodes":
                if number >= self.options["first_sessions"]:
                    continue
                examples.append(self.example(dialogue, session["session"], turns, None))
            elif session["memory"]:
                examples.append(self.example(dialogue, session["session"], turns, "|".join(session["memory"])))
            else:
                self.skip("session has no gold memory")
        return examples

    def task_text(self, example: Example) -> str:
        user, bot = example.inputs["username"], example.inputs["botname"]
        return (f"请阅读下面{user}和{bot}的对话，以【记忆1|记忆2|记忆3】的格式写出对话中的记忆。"
                "每条记忆以人名作主语，客观描述，不要遗漏信息，条目之间用“|”分隔。\n\n对话：\n"
                + history_lines(example.context, user, bot))


class DolphinCompressionTask(DolphinTask):
    """COMEDY Task 2, memory compression into a user profile, relationship and shared events.

    Rule (dialbench format): one example per episode that has a gold ``compressed_memory`` and at
    least one session memory; ``inputs["session_memories"]`` holds each session's items joined with
    ``|`` in session order (COMEDY joins all Task-1 memories with "。" in its prompt), and the
    reference is the compressed memory (three ``###``-separated parts). The episodes format has no
    session memories, so it gives no examples (each episode is counted as skipped). SFT/DPO rows:
    rows whose target has the three ``###`` parts.
    """

    name = "dolphin_compression"
    kind = "compression"
    description = "Dolphin/COMEDY task 2: compress session memories into profile/relationship/events (zh)"
    instruction = "你是一个用户画像整理助手，负责把零散的记忆压缩成用户描述、关系描述和共同事件三部分。"

    def episode_examples(self, dialogue: Dialogue) -> list[Example]:
        memories = tuple("|".join(s["memory"]) for s in dialogue.meta["sessions"] if s["memory"])
        if dialogue.meta["format"] == "episodes" or not memories:
            self.skip("episode has no session memories")
            return []
        if not dialogue.meta["compressed_memory"]:
            self.skip("episode has no gold compressed_memory")
            return []
        return [self.example(dialogue, "compressed", (), dialogue.meta["compressed_memory"],
                             memory=self.session_store(dialogue), session_memories=memories)]

    def task_text(self, example: Example) -> str:
        user, bot = example.inputs["username"], example.inputs["botname"]
        memory = "。".join(m.replace("|", "。") for m in example.inputs.get("session_memories", ()))
        return (f"请根据参考资料，写出用“###”分隔的三部分：1）{user}的用户描述（姓名、昵称、性别、外貌、生日等基本信息，"
                f"喜好与厌恶，情绪、工作和健康状态）；2）{user}与{bot}的关系描述（亲密程度）；3）两人共同经历的事件。"
                f"总字数少于200字，尽量举出具体例子。\n\n参考资料：{memory}")


class DolphinResponseTask(DolphinTask):
    """COMEDY Task 3, memory-grounded response generation.

    Rule (dialbench format): one example per ``responses`` entry of an episode with a gold
    ``compressed_memory``: ``inputs["compressed_memory"]``, the recent history as context and the
    gold bot reply as reference. Episodes format (``comedy_test.py`` control flow): sessions after
    the first ``first_sessions`` (15); a session is skipped when its 5th utterance's first line has
    ``min_chars`` (10) characters or fewer; the context is the first 4 utterances plus the first
    line of the 5th; at most ``max_responses`` (5) per episode; no references and an empty
    ``compressed_memory`` (a pipeline system builds its own with tasks 1 and 2). SFT/DPO rows: the
    remaining rows (DPO ``rejected`` is kept in ``meta["rejected"]``). Episode examples carry the
    episode's past sessions as ``Example.memory`` (one ``session`` item each; the first
    ``first_sessions`` in the episodes format), for systems that build their own memory.
    """

    name = "dolphin_response"
    kind = "response"
    description = "Dolphin/COMEDY task 3: reply grounded in the compressed memory and recent history (zh)"
    option_specs = {**DolphinTask.option_specs, "first_sessions": Option(15, int), "max_responses": Option(5, int),
                    "min_chars": Option(10, int)}
    instruction = "你是用户的AI伙伴，会结合对用户的长期记忆和最近的对话，用自然、贴心的语气回复。"

    def episode_examples(self, dialogue: Dialogue) -> list[Example]:
        if dialogue.meta["format"] == "episodes":
            return self._comedy_flow(dialogue)
        compressed = dialogue.meta["compressed_memory"]
        if not compressed:
            self.skip("episode has no compressed_memory")
            return []
        store = self.session_store(dialogue)
        return [self.example(dialogue, f"r{i}", probe["turns"], probe["response"], memory=store,
                             compressed_memory=compressed, session=probe["session"])
                for i, probe in enumerate(dialogue.meta["responses"])]

    def _comedy_flow(self, dialogue: Dialogue) -> list[Example]:
        examples: list[Example] = []
        store = self.session_store(dialogue, self.options["first_sessions"])
        for session in dialogue.meta["sessions"][self.options["first_sessions"]:]:
            if len(examples) >= self.options["max_responses"]:
                self.skip(f"episode already has {self.options['max_responses']} responses")
                continue
            turns = dialogue.turns[session["start"]:session["end"]]
            if len(turns) < 5:
                self.skip("session has fewer than 5 utterances")
                continue
            first_line = turns[4].text.split("\n")[0].strip()
            raw = session.get("raw")  # released: the length of the raw string, speaker prefix included
            if len((str(raw[4]) if raw else first_line).split("\n")[0].strip()) <= self.options["min_chars"]:
                self.skip(f"5th utterance's first line has {self.options['min_chars']} characters or fewer")
                continue
            context = turns[:4] + (Turn(turns[4].speaker, first_line, turns[4].name, session=session["session"]),)
            examples.append(self.example(dialogue, session["session"], context, None, memory=store,
                                         compressed_memory="", session=session["session"]))
        return examples

    def task_text(self, example: Example) -> str:
        user, bot = example.inputs["username"], example.inputs["botname"]
        memory = example.inputs.get("compressed_memory") or "（暂无）"
        return (f"请结合{user}的压缩记忆和下面的对话历史，以{bot}的身份回复{user}，一到两句话即可。\n\n"
                f"{user}的记忆：{memory}\n\n对话历史：\n{history_lines(example.context, user, bot)}\n{bot}：")
