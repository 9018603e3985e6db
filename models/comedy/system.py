"""``comedy``: one model writes session memories, compresses them and answers from the compression.

Per task (``models/comedy/pipeline.py`` holds the stages):

- ``dolphin_summarization``: Task 1 on the example's session;
- ``dolphin_compression``: Task 2 on the example's gold session memories (the stage scored alone),
  or, with ``memory=own``, on Task-1 memories of the episode's sessions;
- ``dolphin_response``: Task 3 from the example's gold compressed memory when it has one, else from
  the episode's own compression (Tasks 1 and 2 over the sessions the task attached as
  ``Example.memory``; the episode test file has no gold), batched over all episodes;
- ``memorybank_probe``: the store's dated sessions go through Tasks 1 and 2, and each probing
  question is answered by Task 3 from the compressed memory alone. No memory item is retrieved, so
  ``Response.retrieved`` stays empty and evidence recall is reported as not applicable.

Intermediate outputs (memories, compressed memory) go into ``Response.meta`` and so into
samples.jsonl. Options: ``model`` (required), ``decoding`` (``released``: sampling top-k 30, top-p
0.85, temperature 0.5, repetition penalty 1.1, seeded by ``seed``; ``greedy``: argmax with the same
repetition penalty), ``max_new_tokens`` (2048, released), ``bos`` and ``postprocess``
(``intended``/``released``, see ``Pipeline``), ``memory`` (``auto``/``own``), ``batch_size``,
``dtype``, ``device``, ``cache_path``, ``no_cache``, ``progress``.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

from harness.errors import UserError
from harness.records import Example, MemoryStore, Response, Turn
from harness.system import System
from models.comedy import prompts
from models.comedy.pipeline import FIRST_SESSIONS, Episode, Pipeline, Session, check_order, history_text, utterances

TASKS = ("dolphin_summarization", "dolphin_compression", "dolphin_response", "memorybank_probe")
CHOICES = {"decoding": ("released", "greedy"), "bos": ("intended", "released"),
           "postprocess": ("intended", "released"), "memory": ("auto", "own")}
RELEASED_SAMPLING = {"do_sample": True, "top_k": 30, "top_p": 0.85, "temperature": 0.5}
REPETITION_PENALTY = 1.1


def _choice(options: dict[str, Any], name: str) -> str:
    value = str(options.get(name, CHOICES[name][0])).strip().lower()
    if value not in CHOICES[name]:
        raise UserError(f"system 'comedy' option {name}: '{value}' is not one of {', '.join(CHOICES[name])}")
    return value


def _int(options: dict[str, Any], name: str, default: int) -> int:
    try:
        return int(options.get(name, default))
    except (TypeError, ValueError):
        raise UserError(f"system 'comedy' option {name}: expected an integer, got '{options.get(name)}'") from None


def sessions_of(store: MemoryStore, username: str, language: str) -> tuple[Session, ...]:
    """Return the past sessions in a memory store, oldest first.

    Dolphin stores hold one ``session`` item per session (utterances in ``meta``); MemoryBank stores
    hold dated exchanges, grouped here into one session per date (daily summaries are ignored:
    COMEDY writes its own memories).
    """
    colon = "：" if language == "zh" else ": "
    grouped: "OrderedDict[str, list[str]]" = OrderedDict()
    for item in store.items:
        if item.kind == "session":
            grouped[item.id] = list(item.meta.get("utterances") or item.text.split("\n"))
        elif item.kind == "exchange":
            day = grouped.setdefault(str(item.date), [])
            day += [f"{username}{colon}{item.meta.get('query', '')}", f"AI{colon}{item.meta.get('response', '')}"]
    order = sorted(grouped) if all(i.kind == "exchange" for i in store.items if i.kind != "summary") else list(grouped)
    return tuple(Session(key, tuple(grouped[key])) for key in order)


class ComedySystem(System):
    """COMEDY through the shared generation engine (see the module docstring)."""

    name = "comedy"
    description = "COMEDY: one LLM for session memory, memory compression and memory-grounded replies"
    option_names = ("model", "decoding", "seed", "max_new_tokens", "bos", "postprocess", "memory", "batch_size",
                    "dtype", "device", "cache_path", "no_cache", "progress")

    def __init__(self, task: Any, **options: Any) -> None:
        super().__init__(task, **options)
        from harness.checkpoints.loader import local_folder
        from harness.checkpoints.source import parse_source
        from harness.generation import GenerationConfig, Generator
        from harness.generation.cache import GenerationCache, default_cache_path

        if task.name not in TASKS:
            raise UserError(f"system 'comedy' answers {', '.join(TASKS)}; not '{task.name}'")
        spec = options.get("model")
        if not spec:
            raise UserError("system 'comedy' needs option model=DIR (e.g. --model runs/train/comedy-tiny-dpo)")
        self.model_spec = str(spec)
        source = parse_source(self.model_spec)
        self.switches = {name: _choice(options, name) for name in CHOICES}
        self.language = prompts.language_of(task)
        self.seed = _int(options, "seed", 0)
        sampling = RELEASED_SAMPLING if self.switches["decoding"] == "released" else {"do_sample": False}
        self.config = GenerationConfig(max_new_tokens=_int(options, "max_new_tokens", 2048),
                                       repetition_penalty=REPETITION_PENALTY,
                                       seed=self.seed if sampling["do_sample"] else None, **sampling)
        self.cache = None if self.flag(options, "no_cache", False) else GenerationCache(
            Path(str(options["cache_path"])) if options.get("cache_path") else default_cache_path())
        batch_size = str(options.get("batch_size", "auto"))
        self.generator = Generator.from_source(
            self.model_spec, dtype=str(options.get("dtype", "auto")), device=str(options.get("device", "auto")),
            batch_size="auto" if batch_size == "auto" else _int(options, "batch_size", 1), cache=self.cache,
            progress=str(options.get("progress", True)).lower() not in ("false", "0", "no"))
        adds_bos = self._tokenizer_adds_bos(local_folder(source))
        self.pipeline = Pipeline(lambda texts: self.generator.generate(texts, self.config), self.language,
                                 bos=self.switches["bos"], postprocess=self.switches["postprocess"],
                                 tokenizer_adds_bos=adds_bos)

    @staticmethod
    def _tokenizer_adds_bos(folder: Path) -> bool:
        """Return True when the checkpoint's tokenizer puts its bos in front of a plain prompt."""
        from transformers import AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(str(folder))
        except (OSError, ValueError) as err:
            raise UserError(f"{folder}: cannot load the tokenizer ({str(err).splitlines()[0]})") from None
        ids = tokenizer("a")["input_ids"]
        return tokenizer.bos_token_id is not None and bool(ids) and ids[0] == tokenizer.bos_token_id

    # --- per task -----------------------------------------------------------------------------
    def _names(self, example: Example) -> tuple[str, str]:
        return str(example.inputs.get("username", "user")), str(example.inputs.get("botname", "AI"))

    def _episode(self, example: Example) -> Episode:
        user, _ = self._names(example)
        if example.memory is None:
            raise UserError(f"example {example.id}: task '{example.task}' gave no past sessions to build a memory from")
        episode = Episode(example.dialogue_id, user, self._names(example)[1],
                          sessions_of(example.memory, user, self.language), example.source)
        check_order(episode)
        return episode

    def _own_memories(self, examples: Sequence[Example]) -> dict[str, Any]:
        """Stages 1 and 2 once per dialogue of ``examples`` (batched over dialogues).

        The sessions the memory is built from and the sessions asked about must be in time order
        (checked on their ids, dates or trailing numbers), else the memory would see the future.
        """
        episodes = {e.dialogue_id: self._episode(e) for e in examples}
        for dialogue_id, episode in episodes.items():
            asked = [Session(str(e.inputs["session"]), ()) for e in examples
                     if e.dialogue_id == dialogue_id and e.inputs.get("session")]
            check_order(replace(episode, sessions=episode.sessions + tuple(asked)))
        return self.pipeline.memories(list(episodes.values()), FIRST_SESSIONS)

    def _summarize(self, examples: Sequence[Example]) -> list[Response]:
        sessions = [utterances(e.context, *self._names(e), self.language) for e in examples]
        outputs = self.pipeline.summarize(sessions)
        return [Response(e.id, text, meta={"stage": "summarize"}) for e, (_, text) in zip(examples, outputs)]

    def _compress(self, examples: Sequence[Example]) -> list[Response]:
        own = [e for e in examples if self.switches["memory"] == "own" or not e.inputs.get("session_memories")]
        built = self._own_memories(own) if own else {}
        own_ids = {e.id for e in own}
        requests, metas = [], []
        for example in examples:
            user, bot = self._names(example)
            if example.id in own_ids:
                memories = built[example.dialogue_id].memories
                metas.append({"stage": "compress", "memories": memories, "memory_source": "own"})
            else:
                memories = list(example.inputs["session_memories"])
                metas.append({"stage": "compress", "memory_source": "gold"})
            requests.append((user, bot, memories))
        texts = self.pipeline.compress(requests)
        return [Response(e.id, text, meta=meta) for e, text, meta in zip(examples, texts, metas)]

    def _respond(self, examples: Sequence[Example]) -> list[Response]:
        gold = {e.id: str(e.inputs.get("compressed_memory") or "") for e in examples}
        if self.switches["memory"] == "own":
            gold = {key: "" for key in gold}
        built = self._own_memories([e for e in examples if not gold[e.id]])
        requests, metas = [], []
        for example in examples:
            user, bot = self._names(example)
            if example.task == "memorybank_probe":
                history = history_text(utterances((Turn("user", str(example.inputs["question"]), name=user),), user, bot,
                                                  self.language))
            else:
                history = history_text(utterances(example.context, user, bot, self.language))
            if gold[example.id]:
                memory, meta = gold[example.id], {"memory_source": "gold"}
            else:
                stages = built[example.dialogue_id]
                memory = stages.compressed
                meta = {"memory_source": "own", "memories": stages.memories, "compressed_memory": memory}
            requests.append((memory, history, bot))
            metas.append({"stage": "respond", **meta})
        texts = self.pipeline.respond(requests)
        return [Response(e.id, text, meta=meta) for e, text, meta in zip(examples, texts, metas)]

    def respond(self, examples: Sequence[Example]) -> list[Response]:
        """Return one Response per example (stage outputs in ``meta``; no retrieved ids)."""
        if self.task.name == "dolphin_summarization":
            return self._summarize(examples)
        if self.task.name == "dolphin_compression":
            return self._compress(examples)
        return [replace(r, retrieved=()) for r in self._respond(examples)]

    def info(self) -> dict[str, Any]:
        """Return options, switches, prompts (language + hash), decoding, fingerprint and stage counts."""
        info = super().info()
        info.update({"switches": dict(self.switches), "prompts": prompts.prompt_info(self.language),
                     "generation": self.config.key(), "fingerprint": self.generator.fingerprint,
                     "stage_requests": dict(self.pipeline.calls), "engine_stats": dict(self.generator.stats),
                     "cache": str(self.cache.path) if self.cache else None})
        meta = Path(self.model_spec) / "dialbench_training.json"
        if meta.is_file():
            import json

            trained = json.loads(meta.read_text(encoding="utf-8"))
            info["training"] = {key: trained.get(key) for key in ("system", "base", "max_steps")}
            info["training"]["stage"] = (trained.get("preset") or {}).get("data", {}).get("stage")
        return info

    def close(self) -> None:
        """Close the generation cache (the model stays memoised for the next task)."""
        if self.cache is not None:
            self.cache.close()
