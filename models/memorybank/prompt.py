"""The SiliconFriend answering prompt and post-processing (utils/prompt_utils.py, cli_demo.py).

The meta prompt (companion, memory, counsellor), the retrieved memory with "the date of this
[memory] is ...", the user's overall personality and response strategy, a fixed primer turn, the
recent history, then the new question. ``overall_history`` is, as released, not placed in the
prompt. Released roles are ``[|User|]``/``[|AI|]`` (English) and ``[|用户|]``/``[|AI伴侣|]`` (Chinese).
``format=chat`` sends it as chat messages (system = meta prompt + memory, then the primer and history
as turns) so an instruction model's chat template applies; ``format=released`` is the one string the
released ChatGLM/BELLE demo builds.
"""
from __future__ import annotations

import re
from typing import Sequence

ROLES = {"en": ("[|User|]", "[|AI|]"), "zh": ("[|用户|]", "[|AI伴侣|]")}
META = {
    "en": ("Now you will play the role of {user}'s AI companion, named {bot}, with your own memory, emotions and "
           "preferences. You should: (1) chat with {user} as a warm companion; (2) use the relevant [memory] below "
           "when it bears on {user}'s question; (3) be a good psychological counselor when {user} needs support.\n"
           "[memory] from your past conversations with {user}:\n{memory}\nThe date of this [memory] is {dates}.\n"
           "{user}'s personality and your response strategy: {personality}\n"
           "Answer briefly and specifically from the memory; if it does not contain the answer, say you do not remember."),
    "zh": ("现在你将扮演{user}的AI伴侣，你的名字是{bot}。你有记忆、情感和喜好。你应该：（1）作为温暖的伴侣与{user}聊天；"
           "（2）如果以下[记忆]与{user}的问题相关，请结合[记忆]回答；（3）在{user}需要时做一个好的心理咨询师。\n"
           "你与{user}过去对话的[记忆]：\n{memory}\n这些[记忆]的日期是{dates}。\n"
           "{user}的性格以及你的回复策略：{personality}\n请根据记忆简洁具体地回答；如果记忆中没有答案，就说不记得了。"),
}
PRIMER = {"en": ("Hello! Do you remember me?", "Of course, {user}. I remember our conversations. What would you like to talk about?"),
          "zh": ("你好！你还记得我吗？", "当然记得，{user}。我记得我们之前的聊天。你想聊些什么？")}
NO_PERSONALITY = {"en": "not summarised yet", "zh": "暂无总结"}


def build(language: str, user: str, bot: str, memory: str, dates: Sequence[str], personality: str,
          question: str, history: Sequence[tuple[str, str]] = (), fmt: str = "chat") -> str | list[dict[str, str]]:
    """Return the SiliconFriend prompt: chat messages (``fmt=chat``) or the released single string."""
    meta = META[language].format(user=user, bot=bot, memory=memory or "-", dates=", ".join(dates) or "-",
                                 personality=personality or NO_PERSONALITY[language])
    primer = (PRIMER[language][0], PRIMER[language][1].format(user=user))
    turns = [primer, *history]
    if fmt == "released":
        you, me = ROLES[language]
        body = "".join(f"\n {you}: {q}\n {me}: {r}" for q, r in turns)
        return f"{meta}{body}\n {you}: {question} \n {me}: "
    messages = [{"role": "system", "content": meta}]
    for query, response in turns:
        messages += [{"role": "user", "content": query}, {"role": "assistant", "content": response}]
    return messages + [{"role": "user", "content": question}]


def postprocess(text: str, language: str, released: bool = False) -> str:
    """Cut the reply at the next user turn and drop role tags; ``released`` also deletes every ':'/'：'."""
    you, me = ROLES[language]
    for marker in (you, "[|User|]", "[|用户|]"):
        text = text.split(marker)[0]
    text = text.replace(me, "").replace("[|AI|]", "")
    text = re.sub(r"^\s*(AI|assistant|AI伴侣)\s*[:：]\s*", "", text.strip(), flags=re.IGNORECASE)
    if released:
        text = text.replace(":", "").replace("：", "")
    return text.strip()
