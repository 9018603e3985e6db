"""Training stack: recipes (one per trainable system) run on the Hugging Face Trainer, DeepSpeed,
peft and TRL. Entry point: ``training.run.train`` (``dialbench train``); recipes in
``training.recipes``; shipped ZeRO configs in ``training/deepspeed/``.
"""
