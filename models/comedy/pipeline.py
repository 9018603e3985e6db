"""COMEDY's inference pipeline (``comedy_test.py``, systems.md §1.4): memories, one compression, replies.

Control flow per episode, as released: Task 1 writes one memory for each of the first 15 sessions;
every later session is a probe unless the first line of its fifth utterance has 10 characters or
fewer; Task 2 runs once, at the first probe, over all memories; Task 3 answers each probe from the
compressed memory with the first 4 utterances plus the first line of the fifth; at most 5 probes
per episode. ``plan`` is that loop without the model, so it can be tested on its own and checked
against the ``dolphin_response`` task rule.

Every stage is one batched call over *all* episodes through the shared engine
(``harness.generation.Generator``: length-sorted batches, SQLite cache), so Task 2 prompts of every
episode are generated together once every Task 1 memory exists; a re-run finds each stage's
prompts in the cache and recomputes nothing.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Sequence

from harness.errors import DataError
from harness.records import BOT, SourceRef, Turn
from models.comedy import prompts

FIRST_SESSIONS = 15
MIN_CHARS = 10
MAX_RESPONSES = 5
TRAILING_NUMBER = re.compile(r"(\d+)\s*$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class Session:
    """One past session: its id and its utterances as the released code sees them (``name：text``)."""

    id: str
    utterances: tuple[str, ...]


@dataclass(frozen=True)
class Episode:
    """One user-bot relationship: its sessions in time order."""

    id: str
    username: str
    botname: str
    sessions: tuple[Session, ...]
    source: SourceRef | None = None


@dataclass(frozen=True)
class Probe:
    """One Task-3 request: the session it comes from and the history the prompt shows."""

    session: str
    history: str


@dataclass(frozen=True)
class Plan:
    """What the released loop does with one episode: which sessions it summarises, which it answers."""

    memory_sessions: tuple[Session, ...]
    probes: tuple[Probe, ...]
    skipped: tuple[str, ...] = ()


@dataclass
class EpisodeMemory:
    """Stage outputs of one episode: Task-1 memories (one per session) and the Task-2 compression."""

    memories: list[str] = field(default_factory=list)
    compressed: str = ""


def _order_key(session_id: str) -> tuple[int, str] | None:
    """Return a sortable key for a dated (YYYY-MM-DD) or numbered (``s3``, ``12``) session id, else None."""
    if DATE.match(session_id):
        return (0, session_id)
    number = TRAILING_NUMBER.search(session_id)
    return (int(number.group(1)), "") if number else None


def check_order(episode: Episode) -> None:
    """Raise a DataError when dated or numbered session ids go backwards (the loop relies on time order)."""
    keys = [_order_key(s.id) for s in episode.sessions]
    if not all(keys):
        return
    for index in range(1, len(keys)):
        if keys[index] <= keys[index - 1]:  # type: ignore[operator]
            before, after = episode.sessions[index - 1], episode.sessions[index]
            path = episode.source.path if episode.source else "<episodes>"
            line = episode.source.line if episode.source else None
            raise DataError(path, line, f"{episode.id}.{after.id}",
                            f"sessions out of order: '{after.id}' comes after '{before.id}' (COMEDY reads sessions in time order)")


def history_text(utterances: Sequence[str]) -> str:
    """Return utterances as the released prompt shows them: joined with spaces."""
    return " ".join(u.strip() for u in utterances)


def utterances(turns: Sequence[Turn], username: str, botname: str, language: str) -> tuple[str, ...]:
    """Return turns as the released ``sub_history`` strings: ``name：text`` (``name: text`` in English)."""
    colon = "：" if language == "zh" else ": "
    out = []
    for turn in turns:
        name = turn.name if turn.name not in (None, "user", "bot", "Human", "AI") else (botname if turn.speaker == BOT else username)
        out.append(f"{name}{colon}{turn.text}")
    return tuple(out)


def probe_history(utterances: Sequence[str], min_chars: int = MIN_CHARS) -> str | None:
    """Return the Task-3 history of a session (4 utterances + the fifth's first line), None if skipped."""
    if len(utterances) < 5:
        return None
    first_line = utterances[4].split("\n")[0].strip()
    if len(first_line) <= min_chars:
        return None
    return history_text([*utterances[:4], first_line])


def plan(episode: Episode, *, first_sessions: int = FIRST_SESSIONS, min_chars: int = MIN_CHARS,
         max_responses: int = MAX_RESPONSES) -> Plan:
    """Return the released control flow for one episode (see the module docstring)."""
    check_order(episode)
    memory_sessions: list[Session] = []
    probes: list[Probe] = []
    skipped: list[str] = []
    for session in episode.sessions:
        if len(memory_sessions) < first_sessions:
            memory_sessions.append(session)
            continue
        if len(probes) >= max_responses:
            break
        history = probe_history(session.utterances, min_chars)
        if history is None:
            skipped.append(session.id)
            continue
        probes.append(Probe(session.id, history))
    return Plan(tuple(memory_sessions), tuple(probes), tuple(skipped))


class Pipeline:
    """The three COMEDY stages over many episodes, each stage one batched ``generate`` call.

    ``generate(prompts)`` returns one raw text per prompt (the shared engine). ``bos`` ``intended``
    drops the wrapper's literal leading ``<s>`` when the tokenizer adds its own bos, so the prompt
    tokens equal the training tokens; ``released`` keeps it (two bos tokens, as ``comedy_test.py``).
    ``postprocess`` is ``prompts.clean``'s mode; ``released`` also feeds Task 2 the memories before
    their ``</s>`` cut, as the released loop appends them.
    """

    def __init__(self, generate: Callable[[list[str]], list[str]], language: str, *, bos: str = "intended",
                 postprocess: str = "intended", tokenizer_adds_bos: bool = True) -> None:
        self.generate_raw, self.language = generate, language
        self.bos, self.postprocess, self.tokenizer_adds_bos = bos, postprocess, tokenizer_adds_bos
        self.calls: dict[str, int] = {"summarize": 0, "compress": 0, "respond": 0}

    def _prompt(self, text: str) -> str:
        if self.bos == "intended" and self.tokenizer_adds_bos and text.startswith("<s>"):
            return text[len("<s>"):]
        return text

    def _run(self, stage: str, texts: list[str]) -> list[str]:
        self.calls[stage] += len(texts)
        return self.generate_raw([self._prompt(t) for t in texts]) if texts else []

    def summarize(self, sessions: Sequence[Sequence[str]]) -> list[tuple[str, str]]:
        """Task 1 on each session; return (memory passed on to Task 2, cleaned memory) per session."""
        raw = self._run("summarize", [prompts.summarize_prompt(history_text(s), self.language) for s in sessions])
        cleaned = [prompts.clean(text, self.postprocess) for text in raw]
        if self.postprocess == "released":  # appended before the </s> cut
            return [(text.replace("【", "").replace("】", ""), clean) for text, clean in zip(raw, cleaned)]
        return [(clean, clean) for clean in cleaned]

    def compress(self, requests: Sequence[tuple[str, str, Sequence[str]]]) -> list[str]:
        """Task 2 on (user, bot, memories) per episode; return each compressed memory."""
        raw = self._run("compress", [prompts.compress_prompt(u, b, m, self.language) for u, b, m in requests])
        return [prompts.clean(text, self.postprocess) for text in raw]

    def respond(self, requests: Sequence[tuple[str, str, str]]) -> list[str]:
        """Task 3 on (compressed memory, history, bot) per probe; return each reply."""
        raw = self._run("respond", [prompts.respond_prompt(m, h, b, self.language) for m, h, b in requests])
        return [prompts.clean(text, self.postprocess) for text in raw]

    def memories(self, episodes: Sequence[Episode], first_sessions: int = FIRST_SESSIONS) -> dict[str, EpisodeMemory]:
        """Stages 1 and 2 for every episode: memories of its first sessions, then one compression each."""
        wanted = [(episode, session) for episode in episodes for session in episode.sessions[:first_sessions]]
        outputs = iter(self.summarize([session.utterances for _, session in wanted]))
        result = {episode.id: EpisodeMemory() for episode in episodes}
        passed: dict[str, list[str]] = {episode.id: [] for episode in episodes}
        for episode, _ in wanted:
            handed_on, cleaned = next(outputs)
            result[episode.id].memories.append(cleaned)
            passed[episode.id].append(handed_on)
        compressed = self.compress([(e.username, e.botname, passed[e.id]) for e in episodes])
        for episode, text in zip(episodes, compressed):
            result[episode.id].compressed = text
        return result

    def run(self, episodes: Sequence[Episode], **rule: int) -> list[dict[str, object]]:
        """Run the released control flow on whole episodes; return one record per episode."""
        plans = {episode.id: plan(episode, **rule) for episode in episodes}
        probing = [e for e in episodes if plans[e.id].probes]  # the released loop compresses at the first probe
        memory = self.memories(probing, rule.get("first_sessions", FIRST_SESSIONS))
        requests = [(e, p) for e in probing for p in plans[e.id].probes]
        replies = iter(self.respond([(memory[e.id].compressed, p.history, e.botname) for e, p in requests]))
        records = []
        for episode in episodes:
            probes = plans[episode.id].probes
            stages = memory.get(episode.id, EpisodeMemory())
            records.append({"episode": episode.id, "memories": stages.memories, "compressed_memory": stages.compressed,
                            "responses": [{"session": p.session, "history": p.history, "response": next(replies)}
                                          for p in probes],
                            "skipped_sessions": list(plans[episode.id].skipped)})
        return records
