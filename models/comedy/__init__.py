"""COMEDY: one LLM for session memory, memory compression and memory-grounded replies (systems.md §1)."""
