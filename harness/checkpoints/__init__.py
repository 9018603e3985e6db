"""Checkpoint loading: from whatever a user has (``--model``) to a model + tokenizer on a device and dtype.

- ``source``: parse ``--model`` strings (embedded aliases, folders, GGUF files, adapters, DeepSpeed
  ZeRO checkpoints, hub ids) into a typed ModelSource, without importing torch;
- ``fingerprint``: content-hash fingerprints (base + hash + adapter + dtype) keying the generation cache;
- ``convert``: one-time, cached conversions (GGUF -> safetensors, ZeRO -> fp32 safetensors) with safe
  unpickling;
- ``hub``: hub snapshots, the only network path, refused when the hub is offline;
- ``loader``: ``load_model(spec, dtype=..., device=...)``, memoised per process.

Nothing here is imported by ``dialbench list``; import the submodule you need.
"""
