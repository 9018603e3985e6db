"""``memorybank``: SiliconFriend answering from a MemoryBank long-term memory (systems.md section 3).

Per user: the store's exchanges (and daily summaries, generated with ``summaries=generate``) are
optionally forgotten at the question's evaluation date (``forgetting=paper|released``, seeded), then
every probing question retrieves memory (``retrieval=hybrid`` default, ``released`` the LangChain
path), builds the SiliconFriend prompt (``prompt.py``) and is answered by the model (default the
embedded SmolLM2) through the shared engine, batched and cached. Retrieved exchanges are
strengthened (S + 1, recall date = evaluation date) in the system's copy of the records, never in
the input file. The Response carries the answer and the retrieved item ids (scored as
evidence_recall@k).

Options (``--set KEY=VALUE`` in eval, ``--set memorybank.KEY=VALUE`` in run): ``model``,
``retrieval`` (hybrid|released), ``top_k`` (hybrid ids reported, 5), ``prompt_k`` (hybrid exchanges
in the prompt, 3), ``embedding`` (sentence-transformers name
or path, default all-MiniLM-L6-v2), ``dense_weight`` (auto), ``turn_fields`` (1.0: weight of the
user-turn and AI-reply BM25 fields beside the whole exchange; 0 scores each exchange as one text), ``forgetting`` (off|paper|released),
``forget_seed`` (0), ``summaries`` (store|generate), ``prompt_format`` (chat|released),
``postprocess`` (intended|released: also deletes every colon), ``max_new_tokens`` (48; the
released demo allows 1024), ``do_sample`` (false; the paper samples with top_p 0.95), ``top_p``,
``seed``, ``batch_size``, ``dtype``, ``device``, ``no_cache``, ``cache_path``, ``trust_remote_code``,
``progress``.
"""
from __future__ import annotations

import dataclasses
from collections import OrderedDict
from pathlib import Path
from typing import Any, Sequence

from harness.errors import UserError
from harness.records import Example, MemoryItem, Response
from harness.system import System
from models.memorybank import forgetting, prompt
from models.memorybank.retrieval import MemoryRetriever, RetrievalSettings
from models.memorybank.store import memory_id

DEFAULT_MODEL = "embedded:smollm2-135m-instruct"
CHOICES = {"retrieval": ("hybrid", "released"), "forgetting": forgetting.RETENTIONS, "summaries": ("store", "generate"),
           "prompt_format": ("chat", "released"), "postprocess": ("intended", "released")}


def _number(name: str, value: Any, cast: type) -> Any:
    try:
        return cast(value)
    except (TypeError, ValueError):
        raise UserError(f"system 'memorybank' option {name}: expected {cast.__name__}, got '{value}'") from None


class MemoryBankSystem(System):
    """SiliconFriend with MemoryBank memory (see the module docstring for the options)."""

    name = "memorybank"
    description = "MemoryBank / SiliconFriend: dated memory, summaries, retrieval, forgetting, companion prompt"
    option_names = ("model", "retrieval", "top_k", "prompt_k", "embedding", "dense_weight", "turn_fields", "forgetting", "forget_seed", "summaries",
                    "prompt_format", "postprocess", "max_new_tokens", "do_sample", "top_p", "seed", "batch_size",
                    "dtype", "device", "no_cache", "cache_path", "trust_remote_code", "progress")

    def __init__(self, task: Any, **options: Any) -> None:
        options = {key.removeprefix("memorybank.").removeprefix("silicon_friend."): value for key, value in options.items()}
        super().__init__(task, **options)
        for key, valid in CHOICES.items():
            if key in options and str(options[key]) not in valid:
                raise UserError(f"system 'memorybank' option {key}: '{options[key]}' is not one of {', '.join(valid)}")
        mode = str(options.get("retrieval", "hybrid"))
        dense = options.get("dense_weight", "auto")
        self.settings = RetrievalSettings(
            mode=mode, top_k=_number("top_k", options.get("top_k", 5), int),
            prompt_k=_number("prompt_k", options.get("prompt_k", 3), int),
            embedding=str(options.get("embedding", RetrievalSettings.embedding)),
            dense_weight=None if str(dense) == "auto" else _number("dense_weight", dense, float),
            turn_fields=_number("turn_fields", options.get("turn_fields", RetrievalSettings.turn_fields), float))
        self.forgetting = str(options.get("forgetting", "off"))
        self.forget_seed = _number("forget_seed", options.get("forget_seed", 0), int)
        self.summaries = str(options.get("summaries", "store"))
        self.prompt_format = str(options.get("prompt_format", "chat"))
        self.released_postprocess = str(options.get("postprocess", "intended")) == "released"
        self.model_spec = str(options.get("model") or DEFAULT_MODEL)
        self._options = options
        self._generator: Any = None
        self.records: dict[str, dict] = {}
        self.forgotten: dict[str, list[str]] = {}

    # --- model ------------------------------------------------------------------------------------
    def generator(self) -> Any:
        """Return the shared-engine Generator (built on first use; the model loads only on a cache miss)."""
        if self._generator is None:
            from harness.checkpoints.source import parse_source
            from harness.generation import Generator
            from harness.generation.cache import GenerationCache, default_cache_path

            parse_source(self.model_spec)
            options = self._options
            no_cache = self.flag(options, "no_cache", False)
            path = Path(str(options["cache_path"])) if options.get("cache_path") else default_cache_path()
            self.cache = None if no_cache else GenerationCache(path)
            batch = str(options.get("batch_size", "auto"))
            self._generator = Generator.from_source(
                self.model_spec, dtype=str(options.get("dtype", "auto")), device=str(options.get("device", "auto")),
                trust_remote_code=self.flag(options, "trust_remote_code", False),
                batch_size="auto" if batch == "auto" else _number("batch_size", batch, int), cache=self.cache,
                progress=self.flag(options, "progress", True))
        return self._generator

    def generation_config(self, max_new_tokens: int | None = None) -> Any:
        from harness.generation import GenerationConfig

        options = self._options
        sample = self.flag(options, "do_sample", False)
        return GenerationConfig(
            max_new_tokens=max_new_tokens or _number("max_new_tokens", options.get("max_new_tokens", 48), int),
            do_sample=sample, top_p=_number("top_p", options.get("top_p", 0.95 if sample else 1.0), float),
            seed=_number("seed", options.get("seed", 0), int) if sample else None)

    # --- memory -----------------------------------------------------------------------------------
    def _record(self, example: Example) -> dict:
        """Return the system's own raw record of the example's user (exchanges keep their item ids)."""
        user = example.dialogue_id
        if user not in self.records:
            history: dict[str, list[dict]] = OrderedDict()
            summary: dict[str, dict] = {}
            for item in example.memory.items:  # type: ignore[union-attr]
                if item.kind == "summary":
                    summary[str(item.date)] = {"content": item.text}
                    continue
                turn = int(item.id.rpartition("#")[2])
                row = {k: v for k, v in item.meta.items() if k not in ("query", "response")}
                row.update(query=item.meta.get("query", item.text), response=item.meta.get("response", ""),
                           memory_id=memory_id(user, str(item.date), turn))
                history.setdefault(str(item.date), []).append(row)
            record = {"history": history, "summary": summary, "personality": {},
                      "overall_personality": example.memory.profile if example.memory else ""}
            if self.forgetting != "off":
                self.forgotten[user] = forgetting.forget(record, user, str(example.inputs["eval_date"]),
                                                         self.forgetting, self.forget_seed)
            self.records[user] = record
        return self.records[user]

    def _items(self, user: str, record: dict) -> list[MemoryItem]:
        """Return the record's surviving memory as items with their original ``DATE#TURN`` ids."""
        items = []
        for date, rows in record["history"].items():
            for row in rows:
                turn = row["memory_id"].rpartition("_")[2]
                items.append(MemoryItem(f"{date}#{turn}", f"User: {row['query']}\nAI: {row['response']}", date, "exchange",
                                        {"query": row["query"], "response": row["response"]}))
            content = record["summary"].get(date, {}).get("content", "")
            if content:
                items.append(MemoryItem(f"{date}#summary", content, date, "summary"))
        return items

    def _summarise(self, records: dict[str, dict]) -> None:
        """Generate missing daily summaries and personalities (``summaries=generate``)."""
        from models.memorybank.store import MemoryBankStore
        from models.memorybank.summaries import summarise

        store = MemoryBankStore({user: record for user, record in records.items()})
        done = summarise(store, self.generator(), self.generation_config(128), self.task.language)
        for user in records:
            records[user] = done.data[user]

    # --- answering --------------------------------------------------------------------------------
    def respond(self, examples: Sequence[Example]) -> list[Response]:
        """Retrieve, prompt and answer every example (one batched generation call)."""
        for example in examples:
            if example.memory is None or "question" not in example.inputs:
                raise UserError(f"system 'memorybank' answers memory probes (task memorybank_probe), not '{example.task}'")
            self._record(example)
        if self.summaries == "generate":
            self._summarise(self.records)
        retrievers: dict[str, MemoryRetriever] = {}
        prompts, found = [], []
        for example in examples:
            user, record = example.dialogue_id, self.records[example.dialogue_id]
            if user not in retrievers:
                retrievers[user] = MemoryRetriever(self._items(user, record), self.task.language, self.settings,
                                                   user, str(example.inputs.get("botname", "AI")))
            retrieval = retrievers[user].retrieve(str(example.inputs["question"]))
            forgetting.strengthen(record, user, retrieval.ids, str(example.inputs["eval_date"]))
            found.append(retrieval)
            prompts.append(prompt.build(self.task.language, user, str(example.inputs.get("botname", "AI")),
                                        retrieval.text, retrieval.dates, str(record.get("overall_personality") or ""),
                                        str(example.inputs["question"]), fmt=self.prompt_format))
        texts = self.generator().generate(prompts, self.generation_config())
        return [Response(example_id=e.id, text=prompt.postprocess(t, self.task.language, self.released_postprocess),
                         retrieved=r.ids, meta={"memory_dates": list(r.dates)})
                for e, t, r in zip(examples, texts, found)]

    def info(self) -> dict[str, Any]:
        """Return everything that shapes the outputs: retrieval settings, switches, model fingerprint."""
        from models.memorybank.embeddings import faiss_available

        info = super().info()
        info.update({
            "retrieval": dataclasses.asdict(self.settings),
            "vector_index": "faiss" if faiss_available() else "numpy-exact",
            "forgetting": self.forgetting, "forget_seed": self.forget_seed,
            "forgotten": {user: len(ids) for user, ids in self.forgotten.items()},
            "summaries": self.summaries, "prompt_format": self.prompt_format,
            "postprocess": "released" if self.released_postprocess else "intended",
            "model": self.model_spec,
        })
        if self._generator is not None:
            info["fingerprint"] = self._generator.fingerprint
            info["generation"] = self.generation_config().key()
        return info

    def close(self) -> None:
        """Close the generation cache."""
        if getattr(self, "cache", None) is not None:
            self.cache.close()


class SiliconFriendSystem(MemoryBankSystem):
    """The same system under the companion's name, so ``dialbench train silicon_friend`` has a system to feed."""

    name = "silicon_friend"
    description = "SiliconFriend (MemoryBank companion); same options as memorybank"
