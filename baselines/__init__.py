"""Simple baselines (copy the last turn, TF-IDF retrieval, a zero-shot instruction LM), registered in
``harness/plugins.py``. Published, trained systems live in ``models/``, one package each."""
