"""Published systems, one package each: the System, its model code, its training recipe and presets,
and its paper quirks as named switches (``gpt2_dialogue`` now; ``spt``, ``magic``, ``memorybank``,
``comedy`` as they land). Simple baselines live in ``baselines/``; the shared training engine in
``training/``; checkpoint loading in ``harness/checkpoints/``.
"""
