"""MAGIC (ECML-PKDD 2024): motivation-driven strategy inference plus a BART generator with a strategy memory.

Parts (systems.md section 6): ``prompt.py`` (the strategy model's prompt, targets and parser),
``bank.py`` (the 8 FIFO strategy banks and the batch de-duplication of response memories),
``modeling.py`` (the response model), ``features.py`` (tokenised examples and the collator),
``decoding.py`` (the released probability-summing beam search), ``checkpoint.py`` (our layout and
the released one), ``recipe.py`` (training presets of both parts) and ``system.py`` (evaluation).
"""
