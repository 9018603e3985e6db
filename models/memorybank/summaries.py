"""LLM summaries of a MemoryBank store (released ``memory_bank/summarize_memory.py``).

Per user and per date lacking one: the daily event summary (``summary[date] = {"content": ...}``) and
the daily personality (``personality[date]``); then ``overall_history`` from the daily summaries
and ``overall_personality`` from the daily personalities. The prompts follow the released English
and Chinese wording (the released run used gpt-3.5-turbo at temperature 0.7; here any model
dialbench loads, default the embedded SmolLM2, greedy so the cache can replay it). Every request of
a stage goes to the shared engine at once (batched, length-sorted, cached: a second run generates
nothing). Results go into a copy of the store; the input file is never written.

    python -m models.memorybank.summaries STORE --output COPY.json [--model SOURCE] [--max-new-tokens N]
"""
from __future__ import annotations

import argparse
import sys
from typing import Any, Sequence

from models.memorybank.store import MemoryBankStore

PROMPTS = {
    "en": {
        "event": ("Please summarize the following dialogue as concisely as possible, extracting the main themes and "
                  "key information. If there are multiple key events, you may summarize them separately. "
                  "Dialogue content:\n{dialogue}\nSummarization:"),
        "personality": ("Based on the following dialogue, please summarize {user}'s personality traits and emotions, "
                        "and devise response strategies based on your speculation. Dialogue content:\n{dialogue}\n"
                        "{user}'s personality traits, emotions, and {bot}'s response strategy are:"),
        "overall_history": ("Please provide a highly concise summary of the following event, capturing the essential "
                            "key information as succinctly as possible. Summarize the event:\n{items}\nSummarization:"),
        "overall_personality": ("The following are {user}'s exhibited personality traits and emotions throughout "
                                "multiple dialogues, along with appropriate response strategies for the current "
                                "situation:\n{items}\nPlease provide a highly concise and general summary of {user}'s "
                                "personality and the most appropriate response strategy for the AI lover, "
                                "summarized as:"),
    },
    "zh": {
        "event": "请总结以下的对话内容，尽可能精炼，提取对话的主题和关键信息。如果有多个关键事件，可以分点总结。对话内容：\n{dialogue}\n总结：",
        "personality": "请根据以下的对话推测总结{user}的性格特点和心情，并根据你的推测制定回复策略。对话内容：\n{dialogue}\n{user}的性格特点、心情、{bot}的回复策略为：",
        "overall_history": "请高度概括以下的事件，尽可能精炼，概括并保留其中核心的关键信息。概括事件：\n{items}\n总结：",
        "overall_personality": "以下是{user}在多段对话中展现出来的人格特质和心情，以及当下合适的回复策略：\n{items}\n请总体概括{user}的性格和AI恋人最合适的回复策略，尽量简洁精炼，高度概括。总结为：",
    },
}
SYSTEM = {"en": "You are a helpful assistant that summarizes conversations.", "zh": "你是一个善于总结对话的助手。"}


def dialogue_lines(rows: Sequence[dict[str, Any]], user: str, bot: str, language: str) -> str:
    """Return a day's exchanges as the released ``{user}：q`` / ``AI：r`` lines."""
    colon = "：" if language == "zh" else ": "
    return "\n".join(f"{user}{colon}{row['query'].strip()}\n{bot}{colon}{row['response'].strip()}" for row in rows)


def _chat(language: str, text: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": SYSTEM[language]}, {"role": "user", "content": text}]


def summarise(store: MemoryBankStore, generator: Any, config: Any, language: str, bot: str = "AI") -> MemoryBankStore:
    """Return a copy of ``store`` with every missing summary and personality note generated."""
    out = store.copy()
    prompts = PROMPTS[language]
    daily: list[tuple[str, str, str, list[dict[str, str]]]] = []  # (user, date, kind, prompt)
    for user in out.users():
        record = out.user(user)
        record.setdefault("summary", {})
        record.setdefault("personality", {})
        for date, rows in record.get("history", {}).items():
            if not rows:
                continue
            dialogue = dialogue_lines(rows, user, bot, language)
            if not _content(record["summary"].get(date)):
                daily.append((user, date, "event", _chat(language, prompts["event"].format(dialogue=dialogue))))
            if not str(record["personality"].get(date) or "").strip():
                daily.append((user, date, "personality", _chat(language, prompts["personality"].format(
                    dialogue=dialogue, user=user, bot=bot))))
    for (user, date, kind, _), text in zip(daily, generator.generate([p for *_, p in daily], config)):
        record = out.user(user)
        if kind == "event":
            record["summary"][date] = {"content": text.strip()}
        else:
            record["personality"][date] = text.strip()
    overall: list[tuple[str, str, list[dict[str, str]]]] = []
    for user in out.users():
        record = out.user(user)
        if not str(record.get("overall_history") or "").strip() and record["summary"]:
            items = "\n".join(f"{d}: {_content(v)}" for d, v in record["summary"].items())
            overall.append((user, "overall_history", _chat(language, prompts["overall_history"].format(items=items))))
        if not str(record.get("overall_personality") or "").strip() and record["personality"]:
            items = "\n".join(f"{d}: {v}" for d, v in record["personality"].items())
            overall.append((user, "overall_personality", _chat(language, prompts["overall_personality"].format(
                items=items, user=user))))
    for (user, field, _), text in zip(overall, generator.generate([p for *_, p in overall], config)):
        out.user(user)[field] = text.strip()
    return out


def _content(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("content") or "").strip()
    return str(value or "").strip()


def main(argv: Sequence[str] | None = None) -> int:
    """Summarise a store into a copy (see the module docstring)."""
    from harness.errors import UserError
    from harness.generation import GenerationConfig, Generator
    from harness.generation.cache import GenerationCache, default_cache_path
    from tasks.formats.memorybank import detect_language, load_store

    parser = argparse.ArgumentParser(prog="python -m models.memorybank.summaries")
    parser.add_argument("store")
    parser.add_argument("--output", required=True)
    parser.add_argument("--model", default="embedded:smollm2-135m-instruct")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--language", choices=("auto", "en", "zh"), default="auto")
    args = parser.parse_args(argv)
    try:
        store = MemoryBankStore.load(args.store)
        from pathlib import Path

        if Path(args.output).resolve() == Path(args.store).resolve():
            raise UserError(f"{args.output}: the output must not be the input store (summaries go into a copy)")
        language = detect_language(load_store(Path(args.store))) if args.language == "auto" else args.language
        generator = Generator.from_source(args.model, cache=GenerationCache(default_cache_path()))
        summarise(store, generator, GenerationConfig(max_new_tokens=args.max_new_tokens), language).save(args.output)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
