"""Model loading: from whatever a user has (``--model``) to a model + tokenizer on a device and dtype.

- ``models.source``: parse ``--model`` strings (embedded aliases, folders, GGUF files, adapters,
  DeepSpeed ZeRO checkpoints, hub ids) into a typed ModelSource, without importing torch;
- ``models.fingerprint``: content-hash fingerprints (base + hash + adapter + dtype) keying the
  generation cache;
- ``models.convert``: one-time, cached conversions (GGUF -> safetensors, ZeRO -> fp32 safetensors,
  hub snapshots) with safe unpickling;
- ``models.loader``: ``load_model(spec, dtype=..., device=...)``, memoised per process.

Nothing here is imported by ``dialbench list``; import the submodule you need.
"""
