"""MemoryBank cost: index build per 1,000 exchanges, retrieval latency, summarisation throughput, and
the same retrieval over a synthetic 100,000-exchange store. The last printed line is one JSON object.

    PYTHONPATH=. python benchmarks/memorybank.py [--data DIR] [--synthetic 100000] [--summary-dates 4]

The store is the published Chinese one when ../shared/data is present, else the bundled sample. For
the synthetic store the dense part uses random unit vectors (the encoder's own cost is the measured
per-1,000 encoding time, which grows linearly); lexical scoring and the vector search run for real.
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.records import MemoryItem  # noqa: E402
from models.memorybank.embeddings import VectorIndex, encoder, faiss_available  # noqa: E402
from models.memorybank.lexical import BM25  # noqa: E402
from models.memorybank.retrieval import MemoryRetriever, RetrievalSettings  # noqa: E402
from tasks.memorybank import MemoryBankProbeTask  # noqa: E402


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"median_ms": round(1000 * statistics.median(ordered), 3),
            "p95_ms": round(1000 * ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 3)}


def measure_store(examples: list, language: str, mode: str) -> dict:
    """Build one retriever per user, then answer every question; return build and query costs."""
    users = {}
    for example in examples:
        users.setdefault(example.dialogue_id, example.memory.items)
    exchanges = sum(1 for items in users.values() for i in items if i.kind == "exchange")
    settings = RetrievalSettings(mode=mode)
    started = time.perf_counter()
    retrievers = {user: MemoryRetriever(items, language, settings) for user, items in users.items()}
    build = time.perf_counter() - started
    latencies = []
    for example in examples:
        started = time.perf_counter()
        retrievers[example.dialogue_id].retrieve(example.inputs["question"])
        latencies.append(time.perf_counter() - started)
    return {"exchanges": exchanges, "index_build_s_per_1000": round(1000 * build / exchanges, 3),
            "queries": len(latencies), **_percentiles(latencies)}


def synthetic(n: int, language: str, seed: int = 0) -> tuple[list[str], list[str]]:
    """Return ``n`` synthetic exchange texts and 50 questions over their vocabulary (seeded)."""
    rng = random.Random(seed)
    if language == "zh":
        alphabet = [chr(c) for c in range(0x4E00, 0x4E00 + 3000)]
        words = ["".join(rng.choice(alphabet) for _ in range(rng.choice((2, 2, 3)))) for _ in range(20000)]
        join = ""
    else:
        words = [f"w{i}" for i in range(20000)]
        join = " "
    texts = [join.join(rng.choice(words) for _ in range(rng.randint(12, 40))) for _ in range(n)]
    questions = [join.join(rng.choice(words) for _ in range(6)) for _ in range(50)]
    return texts, questions


def measure_synthetic(n: int, language: str) -> dict:
    """Time lexical index build + search and exact vector index build + search over ``n`` exchanges."""
    texts, questions = synthetic(n, language)
    started = time.perf_counter()
    lexical = BM25(texts, language)
    lexical_build = time.perf_counter() - started
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((n, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    started = time.perf_counter()
    index = VectorIndex(vectors)
    dense_build = time.perf_counter() - started
    queries = vectors[rng.integers(0, n, len(questions))]
    lexical_times, dense_times = [], []
    for question, vector in zip(questions, queries):
        started = time.perf_counter()
        np.argpartition(-lexical.scores(question), 5)[:5]
        lexical_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        index.search(vector[None, :], 5)
        dense_times.append(time.perf_counter() - started)
    return {"exchanges": n, "lexical_build_s": round(lexical_build, 3), "vector_index_build_s": round(dense_build, 3),
            "lexical_query": _percentiles(lexical_times), "vector_query": _percentiles(dense_times),
            "dense_vectors": "random unit vectors (encoding cost: encode_s_per_1000 x n/1000)"}


def measure_encoding(texts: list[str]) -> float:
    """Return MiniLM encoding seconds per 1,000 texts (fresh texts, nothing memoised)."""
    model = encoder()
    started = time.perf_counter()
    model.encode([f"{t} #{i}" for i, t in enumerate(texts)])
    return round(1000 * (time.perf_counter() - started) / len(texts), 3)


def measure_summaries(data: Path, dates: int, max_new_tokens: int) -> dict:
    """Generate ``dates`` daily event summaries with the embedded SmolLM2 (no cache); return throughput."""
    import tempfile

    from harness.generation import GenerationConfig, Generator
    from harness.generation.cache import GenerationCache
    from models.memorybank.store import MemoryBankStore
    from models.memorybank.summaries import PROMPTS, _chat, dialogue_lines

    store_path = data if data.is_file() else sorted(data.glob("memory_bank_*.json"))[0]
    store = MemoryBankStore.load(store_path)
    language = "zh" if "_cn" in store_path.name else "en"
    prompts = []
    for user in store.users():
        for rows in store.user(user)["history"].values():
            prompts.append(_chat(language, PROMPTS[language]["event"].format(dialogue=dialogue_lines(rows, user, "AI", language))))
    prompts = prompts[:dates]
    with tempfile.TemporaryDirectory() as folder:
        generator = Generator.from_source("embedded:smollm2-135m-instruct", cache=GenerationCache(Path(folder) / "c.sqlite"),
                                          progress=False)
        started = time.perf_counter()
        generator.generate(prompts, GenerationConfig(max_new_tokens=max_new_tokens))
        first = time.perf_counter() - started
        started = time.perf_counter()
        generator.generate(prompts, GenerationConfig(max_new_tokens=max_new_tokens))
        again = time.perf_counter() - started
    return {"dates": len(prompts), "max_new_tokens": max_new_tokens, "seconds": round(first, 2),
            "dates_per_minute": round(60 * len(prompts) / first, 2),
            "new_tokens_per_s": round(generator.stats["new_tokens"] / first, 2), "cached_rerun_s": round(again, 3)}


def main() -> None:
    parser = argparse.ArgumentParser()
    shared = ROOT.parent / "shared" / "data" / "memorybank"
    parser.add_argument("--data", type=Path, default=shared if shared.is_dir() else ROOT / "tasks" / "samples" / "memorybank_probe.test.cn")
    parser.add_argument("--synthetic", type=int, default=100_000)
    parser.add_argument("--summary-dates", type=int, default=4)
    parser.add_argument("--summary-tokens", type=int, default=64)
    args = parser.parse_args()
    task = MemoryBankProbeTask()
    examples = task.build_examples(task.load(args.data))
    texts = [i.text for e in examples[:1] for i in e.memory.items] * 5
    result = {
        "data": str(args.data), "language": task.language,
        "vector_index": "faiss IndexFlatIP" if faiss_available() else "numpy exact (faiss not installed)",
        "hybrid": measure_store(examples, task.language, "hybrid"),
        "released": measure_store(examples, task.language, "released"),
        "encode_s_per_1000": measure_encoding(texts[:200]),
        f"synthetic_{args.synthetic}": measure_synthetic(args.synthetic, task.language),
    }
    if args.summary_dates > 0:
        result["summaries"] = measure_summaries(args.data, args.summary_dates, args.summary_tokens)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
