"""The GPT-2 dialogue format (systems.md §4.2) and the system's batched inference."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from models.gpt2_dialogue.format import DialogueFormat, training_windows
from models.gpt2_dialogue.system import GPT2DialogueSystem
from harness.errors import UserError
from harness.records import BOT, USER, Example, Turn
from harness.plugins import TASKS
from training.collate import IGNORE_INDEX
from training.run import train
from training.recipe import TrainingData
from training_helpers import one_thread, small_preset

FMT = DialogueFormat(bos=1, eos=0, sp1=2, sp2=3)
SAMPLE = Path(__file__).resolve().parents[2] / "tasks" / "samples" / "convai2_persona.test.txt"


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Give each test its own generation cache, so no answer comes from another test's run."""
    monkeypatch.setenv("DIALBENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_window_layout_matches_the_paper_rule() -> None:
    utterances = [(2, [10, 11]), (3, [20]), (2, [30]), (3, [40, 41])]
    rows = training_windows(FMT, utterances, max_turns=5, max_len=100)
    assert len(rows) == 2  # the two sp2 utterances, both with context
    last = rows[1]
    assert last["input_ids"] == [1, 2, 10, 11, 3, 20, 2, 30, 3, 40, 41, 0]
    assert last["token_type_ids"] == [2, 2, 2, 2, 3, 3, 2, 2, 3, 3, 3, 3]  # bos takes the first speaker
    assert last["labels"] == [IGNORE_INDEX] * 9 + [40, 41, 0]  # target + eos only, not its <sp2>


def test_windows_keep_at_most_max_turns_and_shrink_to_fit() -> None:
    utterances = [(2 if i % 2 == 0 else 3, [100 + i] * 3) for i in range(8)]
    rows = training_windows(FMT, utterances, max_turns=5, max_len=1000)
    assert len(rows) == 4
    assert rows[-1]["input_ids"].count(2) + rows[-1]["input_ids"].count(3) == 5  # 5 utterances in the window
    short = training_windows(FMT, utterances, max_turns=5, max_len=2 + 3 * 4)  # room for target + 2 utterances
    assert [row["input_ids"].count(2) + row["input_ids"].count(3) for row in short] == [2, 3, 3, 3]


def test_a_target_without_context_is_skipped() -> None:
    assert training_windows(FMT, [(3, [5]), (2, [6])]) == []


def test_real_personachat_gives_one_window_per_bot_reply(shared_data: Path) -> None:
    task = TASKS.get("convai2_persona")()
    dialogues = task.load(shared_data / "personachat" / "valid_self_original_no_cands.head200.txt")
    fmt = DialogueFormat(bos=1, eos=0, sp1=2, sp2=3)
    rows = []
    for dialogue in dialogues:
        utterances = [(fmt.speaker(t.speaker), [7] * len(t.text.split())) for t in dialogue.turns]
        rows += training_windows(fmt, utterances)
    assert len(rows) == 1547  # every self response follows a partner line: 1,547 targets in the 200 dialogues
    assert all(sum(label != IGNORE_INDEX for label in row["labels"]) >= 2 for row in rows)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory, convai2_file: Path) -> Path:
    output = tmp_path_factory.mktemp("gpt2") / "model"
    with one_thread():
        train("gpt2_dialogue", TrainingData(train={"convai2_persona": convai2_file}), output,
              preset=small_preset(epochs=3), report_to=())
    return output


def _examples() -> list[Example]:
    contexts = [
        (Turn(USER, "do you like cats ?"),),
        (Turn(USER, "do you like music ?"), Turn(BOT, "yes , i love music ."), Turn(USER, "do you like chess ?")),
        (),
    ]
    return [Example(id=f"e{i}", task="convai2_persona", dialogue_id="d", context=c, references=("yes , i love cats .",))
            for i, c in enumerate(contexts)]


def test_batched_generation_equals_one_at_a_time(checkpoint: Path) -> None:
    task = TASKS.get("convai2_persona")()
    batched = GPT2DialogueSystem(task, model=str(checkpoint), batch_size=3, max_new_tokens=12, no_cache=True)
    single = GPT2DialogueSystem(task, model=str(checkpoint), batch_size=1, max_new_tokens=12, no_cache=True)
    many, one = batched.respond(_examples()), single.respond(_examples())
    assert [r.text for r in many] == [r.text for r in one]
    assert many[0].text.startswith(("yes ,", "no ,"))  # it learned how the template's answers start
    for a, b in zip(many, one):
        assert a.ref_tokens == b.ref_tokens and a.ref_tokens >= 6  # 5 words (>= 1 token each) + eos
        assert a.ref_nll == pytest.approx(b.ref_nll, rel=1e-4)


def old_style_generate(system: GPT2DialogueSystem, prompts: list[dict], max_new_tokens: int) -> list[str]:
    """The pre-engine implementation's computation: one left-padded ``model.generate`` call with token
    types and position ids from the first real token, stopping at eos or a speaker token."""
    fmt, width = system.format, max(len(p["input_ids"]) for p in prompts)
    pads = [width - len(p["input_ids"]) for p in prompts]
    inputs = {"input_ids": torch.tensor([[fmt.eos] * n + p["input_ids"] for n, p in zip(pads, prompts)]),
              "token_type_ids": torch.tensor([[fmt.sp2] * n + p["token_type_ids"] for n, p in zip(pads, prompts)]),
              "attention_mask": torch.tensor([[0] * n + [1] * len(p["input_ids"]) for n, p in zip(pads, prompts)]),
              "position_ids": torch.tensor([[0] * n + list(range(len(p["input_ids"]))) for n, p in zip(pads, prompts)])}
    stops = [fmt.eos, fmt.sp1, fmt.sp2, fmt.bos]
    with torch.no_grad():
        output = system.model.generate(**inputs, max_new_tokens=max_new_tokens, eos_token_id=stops,
                                       pad_token_id=fmt.eos, do_sample=False)
    texts = []
    for ids in output[:, width:].tolist():
        cut = next((i for i, token in enumerate(ids) if token in stops), len(ids))
        texts.append(system.tokenizer.decode(ids[:cut], skip_special_tokens=True).strip())
    return texts


def test_engine_outputs_equal_the_pre_engine_implementation_on_the_bundled_sample(checkpoint: Path) -> None:
    """Moving onto the engine kept every reply: the old batched computation and one row per call agree."""
    task = TASKS.get("convai2_persona")()
    examples = task.build_examples(task.load(SAMPLE)) + _examples()
    system = GPT2DialogueSystem(task, model=str(checkpoint), max_new_tokens=16, batch_size=16, no_cache=True)
    texts = [r.text for r in system.respond(examples)]
    prompts = [system.prompt(example) for example in examples]
    assert texts == old_style_generate(system, prompts, 16)
    assert texts == [old_style_generate(system, [prompt], 16)[0] for prompt in prompts]
    assert len(set(texts)) >= 3  # prompt-dependent replies, not one repeated string


def test_new_tokens_get_the_sp2_token_type(checkpoint: Path) -> None:
    """model.generate must equal a full-recompute greedy loop that gives every new token type <sp2>."""
    task = TASKS.get("convai2_persona")()
    system = GPT2DialogueSystem(task, model=str(checkpoint), max_new_tokens=8)
    example = _examples()[1]
    prompt = system.prompt(example)
    ids, types = list(prompt["input_ids"]), list(prompt["token_type_ids"])
    manual = []
    for _ in range(8):
        with torch.no_grad():
            logits = system.model(input_ids=torch.tensor([ids]), token_type_ids=torch.tensor([types])).logits
        token = int(logits[0, -1].argmax())
        if token in (system.format.eos, system.format.sp1, system.format.sp2, system.format.bos):
            break
        manual.append(token)
        ids.append(token)
        types.append(system.format.sp2)
    assert system.generate([example])[0] == system.tokenizer.decode(manual, skip_special_tokens=True).strip()


def test_reference_nll_is_the_summed_loss_of_reference_and_eos(checkpoint: Path) -> None:
    task = TASKS.get("convai2_persona")()
    system = GPT2DialogueSystem(task, model=str(checkpoint))
    example = _examples()[0]
    prompt, target = system.scoring_request(example)
    scored_ids = [*target.input_ids, system.format.eos]
    row = {"input_ids": [*prompt.input_ids, *scored_ids],
           "token_type_ids": [*prompt.token_type_ids, *[system.format.sp2] * len(scored_ids)],
           "labels": [IGNORE_INDEX] * len(prompt.input_ids) + scored_ids}
    with torch.no_grad():
        out = system.model(input_ids=torch.tensor([row["input_ids"]]), token_type_ids=torch.tensor([row["token_type_ids"]]),
                           labels=torch.tensor([row["labels"]]))
    scored = sum(label != IGNORE_INDEX for label in row["labels"])
    response = system.respond([example])[0]
    assert response.ref_tokens == scored
    assert response.ref_nll == pytest.approx(float(out.loss) * scored, rel=1e-4)
    assert math.isfinite(response.ref_nll)


def test_system_options_are_checked(checkpoint: Path, tmp_path: Path) -> None:
    task = TASKS.get("convai2_persona")()
    with pytest.raises(UserError, match="needs option model"):
        GPT2DialogueSystem(task)
    with pytest.raises(UserError, match="not found"):
        GPT2DialogueSystem(task, model=str(tmp_path / "missing"))
    with pytest.raises(UserError, match="no option"):
        GPT2DialogueSystem(task, model=str(checkpoint), beams=4)
    sampled = GPT2DialogueSystem(task, model=str(checkpoint), do_sample="true", top_p="0.8", seed="3", no_cache=True)
    assert sampled.do_sample and sampled.top_p == 0.8
    again = GPT2DialogueSystem(task, model=str(checkpoint), do_sample=True, seed=3, no_cache=True)
    assert [r.text for r in sampled.respond(_examples())] == [r.text for r in again.respond(_examples())]


def test_format_accepts_a_tokenizer_whose_unk_is_eos_and_refuses_one_without_speakers(text_corpus) -> None:
    from models.gpt2_dialogue.format import add_dialogue_tokens
    from training.tokenizer import EOS, train_bpe_tokenizer

    tokenizer = train_bpe_tokenizer(text_corpus, vocab_size=300)
    with pytest.raises(UserError, match="not a gpt2_dialogue checkpoint"):
        DialogueFormat.of(tokenizer)
    tokenizer.unk_token = EOS  # as in GPT-2's own tokenizer
    assert add_dialogue_tokens(tokenizer) == 3
    fmt = DialogueFormat.of(tokenizer)
    assert fmt.eos == tokenizer.eos_token_id and len({fmt.bos, fmt.eos, fmt.sp1, fmt.sp2}) == 4
