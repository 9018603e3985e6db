"""COMEDY's three task prompts in its ``<s>[Human]\\n...</s>\\n<s>[AI]\\n`` wrapper, Chinese and English.

The Chinese texts render the released instructions of ``comedy_test.py`` as systems.md §1.4
describes them (our own wording of the same content: the 【a|b|c】 memory format, the three
``###`` parts under 200 characters with the fixed refusal, the prompt ending with ``{bot}：``);
the English texts say the same for English data. The task's language picks one set and
``prompt_info`` records which (with a hash of the texts) in the system's info and so in the run's
config. The released post-processing is here too, because it undoes what the prompts ask for.
"""
from __future__ import annotations

import hashlib
from typing import Any, Sequence

WRAPPER = "<s>[Human]\n{instruction}</s>\n<s>[AI]\n"
"""The released turn wrapper; ``<s>``/``</s>`` are the tokenizer's bos/eos tokens (never added tokens)."""

SEGMENT = "<s>[{role}]\n{text}</s>"
"""One training segment; segments are joined with a newline, as the wrapper writes them."""

REFUSAL = {
    "zh": "抱歉，参考资料中含有色情或暴力内容，我无法完成这个任务。",
    "en": "Sorry, the reference material contains sexual or violent content, so I cannot complete this task.",
}

TEMPLATES: dict[str, dict[str, str]] = {
    "zh": {
        "summarize": (
            "请根据下面两人之间的对话，用【xxx|xxx|xxx】的格式写出客观的记忆描述。每一条记忆都以人名作主语，"
            "不要遗漏任何信息，条目之间用“|”分隔。\n对话内容：{history}"
        ),
        "compress": (
            "请根据参考资料，写出用“###”分隔的三部分内容：\n"
            "1. {user}的用户描述：基本信息（姓名、昵称、性别、外貌、生日、星座等），喜好与厌恶，"
            "情绪状态、工作状态和健康状态；\n"
            "2. {user}与{botname}的关系描述：两人的亲密程度；\n"
            "3. 共同事件描述：两人一起经历或聊过的事情。\n"
            "总字数少于200字，尽量引用具体的例子，请一步一步思考。如果参考资料涉及色情或暴力内容，"
            "请直接回复：" + REFUSAL["zh"] + "\n参考资料：{memory}"
        ),
        "respond": (
            "请结合用户的压缩记忆和对话历史，生成回复。\n压缩记忆：{compress_memory}\n对话历史：{history}\n{bot}："
        ),
    },
    "en": {
        "summarize": (
            "Write objective memory descriptions of the following two-person dialogue in the form "
            "【xxx|xxx|xxx】. Each item is one memory, uses the person's name as its subject and leaves "
            "nothing out; separate the items with '|'.\nDialogue: {history}"
        ),
        "compress": (
            "From the reference material, write three parts separated by '###':\n"
            "1. A description of {user}: basic information (name, nickname, gender, looks, birthday, zodiac "
            "sign), likes and dislikes, emotional, work and health states;\n"
            "2. The relationship between {user} and {botname}: how close they are;\n"
            "3. Shared events: what the two have done or talked about together.\n"
            "Use fewer than 200 words, cite concrete examples and think step by step. If the material is "
            "sexual or violent, reply only: " + REFUSAL["en"] + "\nReference material: {memory}"
        ),
        "respond": (
            "Combine the user's compressed memory with the dialogue history to produce a reply.\n"
            "Compressed memory: {compress_memory}\nDialogue history: {history}\n{bot}: "
        ),
    },
}

MEMORY_JOINER = {"zh": "。", "en": ". "}
"""Task 2 sees all session memories joined by this (the released code joins with "。")."""


def language_of(task: Any) -> str:
    """Return the prompt language for a task: its ``language`` when Chinese, English otherwise."""
    return "zh" if str(getattr(task, "language", "en")).lower().startswith("zh") else "en"


def wrap(instruction: str) -> str:
    """Return ``instruction`` in the released Human/AI wrapper (the model continues as the AI)."""
    return WRAPPER.format(instruction=instruction)


def instruction(kind: str, language: str, **fields: str) -> str:
    """Return the Human-side text of task ``kind`` (summarize, compress, respond) with its fields filled in."""
    return TEMPLATES[language][kind].format(**fields)


def summarize_prompt(history: str, language: str) -> str:
    """Task 1: the memory items of one session (``history`` = its utterances joined by spaces)."""
    return wrap(instruction("summarize", language, history=history))


def compress_prompt(user: str, botname: str, memories: Sequence[str], language: str) -> str:
    """Task 2: profile ### relationship ### shared events from every session memory."""
    return wrap(compress_instruction(user, botname, memories, language))


def compress_instruction(user: str, botname: str, memories: Sequence[str], language: str) -> str:
    """Return Task 2's Human text: all session memories joined as the released code joins them."""
    memory = MEMORY_JOINER[language].join(m for m in memories if m)
    return instruction("compress", language, user=user, botname=botname, memory=memory)


def respond_prompt(compress_memory: str, history: str, bot: str, language: str) -> str:
    """Task 3: the bot's reply from the compressed memory and the recent history."""
    return wrap(instruction("respond", language, compress_memory=compress_memory, history=history, bot=bot))


def clean(text: str, mode: str = "intended") -> str:
    """Return a generation after COMEDY's post-processing: 【】 removed, cut at ``</s>``, wrapper leftovers off.

    ``released`` strips the characters ``I``, ``]`` and newlines from both ends, the released hack
    for a leaked ``[AI]\\n`` (it also eats an English reply's leading "I"); ``intended`` removes a
    leaked ``[AI]`` prefix as a whole and strips whitespace.
    """
    out = text.replace("【", "").replace("】", "").split("</s>")[0]
    if mode == "released":
        return out.strip("I]\n")
    out = out.strip()
    for leak in ("<s>", "[AI]", "AI]"):
        if out.startswith(leak):
            out = out[len(leak):].strip()
    return out


def prompt_info(language: str) -> dict[str, str]:
    """Return what identifies the prompts used: language and a short hash of the three templates."""
    digest = hashlib.sha256("\x00".join(TEMPLATES[language][k] for k in sorted(TEMPLATES[language])).encode()).hexdigest()
    return {"language": language, "wrapper": WRAPPER, "templates_sha256": digest[:16]}
