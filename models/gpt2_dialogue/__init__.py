"""GPT-2 multi-turn dialogue (TransferTransfo-style): the system and its training recipe."""
