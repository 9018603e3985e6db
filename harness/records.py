"""Immutable records passed between the stages of dialbench: data -> examples -> responses -> scores.

One data model serves every task. Dialogues carry their turns, personas, an optional long-term memory
store and free-form metadata; an Example is one scoring point cut from a dialogue, with named input
parts and one or more references. Records are frozen so no stage can silently change what another
stage produced (the runner hashes them for caching and provenance).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

USER = "user"
"""Canonical role of the human side (ESConv seeker, ConvAI2 partner, MemoryBank user, sp1)."""
BOT = "bot"
"""Canonical role of the system side (ESConv supporter, ConvAI2 self, AI companion, sp2)."""


@dataclass(frozen=True)
class SourceRef:
    """Where a record came from, so errors and samples can point back at the input file."""

    path: str
    line: int | None = None


@dataclass(frozen=True)
class Turn:
    """One utterance. ``speaker`` is a canonical role; ``name`` keeps the dataset's own speaker name."""

    speaker: str
    text: str
    name: str | None = None
    strategy: str | None = None
    date: str | None = None
    session: str | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Persona:
    """Persona sentences of one role (ConvAI2 'your persona' belongs to BOT, 'partner's persona' to USER)."""

    owner: str
    sentences: tuple[str, ...]


@dataclass(frozen=True)
class MemoryItem:
    """One retrievable unit of long-term memory (a dated exchange, a daily summary, a memory sentence).

    ``id`` is stable and meaningful for scoring (MemoryBank uses ``DATE#TURN``), so retrieval can be
    checked against gold evidence.
    """

    id: str
    text: str
    date: str | None = None
    kind: str = "exchange"
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MemoryStore:
    """A user's long-term memory: raw items plus optional derived summaries and profile."""

    user: str
    items: tuple[MemoryItem, ...] = ()
    summaries: Mapping[str, str] = field(default_factory=dict)
    profile: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Dialogue:
    """A whole (possibly multi-session) conversation as published, before examples are cut from it."""

    id: str
    turns: tuple[Turn, ...]
    personas: tuple[Persona, ...] = ()
    memory: MemoryStore | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)
    source: SourceRef | None = None


@dataclass(frozen=True)
class Example:
    """One scoring point: what the system sees, what it should produce, and provenance.

    ``inputs`` holds task-specific named input parts (e.g. ``situation``, ``strategy_memory``,
    ``compressed_memory``, ``question``, ``eval_date``); ``label`` is a gold class (ESConv strategy);
    ``references`` are gold texts, at least one unless the task scores without references.
    """

    id: str
    task: str
    dialogue_id: str
    context: tuple[Turn, ...]
    references: tuple[str, ...]
    personas: tuple[Persona, ...] = ()
    memory: MemoryStore | None = None
    inputs: Mapping[str, Any] = field(default_factory=dict)
    label: str | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)
    source: SourceRef | None = None


@dataclass(frozen=True)
class Response:
    """A system's answer to one example.

    ``label`` is a predicted class (strategy); ``retrieved`` the ids of memory items the system used;
    ``ref_nll``/``ref_tokens`` the summed negative log-likelihood of the first reference and its
    token count, from which perplexity is computed as exp(sum nll / sum tokens) over the corpus.
    """

    example_id: str
    text: str
    label: str | None = None
    retrieved: tuple[str, ...] = ()
    ref_nll: float | None = None
    ref_tokens: int | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)
