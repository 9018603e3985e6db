"""MemoryBank / SiliconFriend (systems.md section 3): memory store, summaries, retrieval, forgetting, companion."""
