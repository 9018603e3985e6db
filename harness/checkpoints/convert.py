"""Turn every non-folder source into a plain Hugging Face folder, once, in the cache.

- GGUF: transformers de-quantises a GGUF file on every load (~20 s for SmolLM2-135M); saving the
  result as safetensors once makes later loads take ~0.3 s with identical outputs
  (environment.md). The converted folder is named by the GGUF file's content hash.
- DeepSpeed ZeRO-2/3: ``deepspeed.utils.zero_to_fp32`` gathers the fp32 master weights from the
  optimizer shards; we save them with the checkpoint's config and tokenizer. DeepSpeed's own code
  unpickles with ``weights_only=False``; we force ``weights_only=True`` with an allow-list of the few
  DeepSpeed classes a checkpoint holds, so a hostile checkpoint cannot run code unless the user
  passes ``--trust-remote-code``.
- Hub ids: ``huggingface_hub.snapshot_download`` (only when online).

Each result is written to a temporary folder and renamed into place, so a killed conversion never
leaves a half-written model behind and two processes converting at once both end up with one copy.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

from safetensors import SafetensorError

from harness.cachedir import CACHE_ENV, cache_root
from harness.errors import UserError, first_line
from harness.checkpoints.fingerprint import content_hash
from harness.checkpoints.source import ModelSource, deepspeed_tag_dir

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",
                   "vocab.json", "merges.txt", "vocab.txt", "spiece.model", "chat_template.jinja",
                   "generation_config.json", "added_tokens.json")

DEEPSPEED_SAFE_GLOBALS = (
    "deepspeed.runtime.fp16.loss_scaler:LossScaler",
    "deepspeed.runtime.fp16.loss_scaler:DynamicLossScaler",
    "deepspeed.runtime.zero.config:ZeroStageEnum",
    "deepspeed.utils.tensor_fragment:fragment_address",
)
"""Plain-data classes found in ZeRO checkpoints, allowed under ``torch.load(weights_only=True)``."""


def models_dir() -> Path:
    """Return the folder of converted models in the cache."""
    return cache_root() / "models"


def publish(target: Path, build: Callable[[Path], None]) -> Path:
    """Return ``target``, creating it with ``build(tmp)`` + rename when it does not exist yet."""
    if (target / "config.json").is_file():
        return target
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        build(tmp)
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / "config.json").is_file():
                raise
    except (OSError, SafetensorError) as err:  # a full disk or a read-only cache folder, mid-conversion
        reason = getattr(err, "strerror", None) or first_line(err)
        raise UserError(f"{target}: cannot write the converted model ({reason}); free space there "
                        f"or point {CACHE_ENV} at another folder") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def check_gguf(path: Path) -> None:
    """Raise a UserError naming ``path`` when it is not a readable GGUF file."""
    from gguf import GGUFReader

    try:
        GGUFReader(path)
    except Exception as err:  # gguf raises ValueError, struct.error, IndexError... on corrupt input
        raise UserError(f"{path}: not a valid GGUF file ({type(err).__name__}: {first_line(err)})") from None


def gguf_quantisation(path: Path) -> str:
    """Return the quantisation type of most weights in a GGUF file (e.g. ``Q4_1``), read from its
    tensor table: a model converted from it carries that rounding even after de-quantisation."""
    from collections import Counter

    from gguf import GGUFReader

    reader = GGUFReader(path)
    kinds = Counter(t.tensor_type.name for t in reader.tensors if t.tensor_type.name not in ("F32", "F16", "BF16"))
    return kinds.most_common(1)[0][0] if kinds else "unquantised"


def gguf_folder(source: ModelSource) -> Path:
    """Return the cached safetensors folder converted from the GGUF file of ``source``."""
    path = source.path
    if path is None:
        raise ValueError("GGUF source without a path")
    target = models_dir() / f"gguf-{_slug(path.stem)}-{content_hash(source)[:16]}"
    if (target / "config.json").is_file():
        return target
    check_gguf(path)

    def build(tmp: Path) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
            model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name)
        except (ValueError, KeyError, OSError, RuntimeError) as err:
            raise UserError(f"{path}: cannot convert GGUF file ({type(err).__name__}: {first_line(err)})") from None
        quantizer = getattr(model, "hf_quantizer", None)
        if quantizer is not None:  # save_pretrained refuses a GGUF-loaded model until this is gone
            quantizer.remove_quantization_config(model)
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        _write_origin(tmp, source, quantisation=gguf_quantisation(path))

    return publish(target, build)


def recorded_quantisation(folder: Path, source: ModelSource) -> str:
    """Return the GGUF quantisation recorded beside a converted folder, reading the GGUF file once
    (slow: its whole tensor table) for folders converted before it was recorded."""
    origin = folder / "dialbench-origin.json"
    try:
        recorded = json.loads(origin.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        recorded = {}
    if isinstance(recorded, dict) and recorded.get("quantisation"):
        return str(recorded["quantisation"])
    assert source.path is not None
    quantisation = gguf_quantisation(source.path)
    from harness.jsonio import write_json

    write_json(origin, {**(recorded if isinstance(recorded, dict) else {}), "quantisation": quantisation})
    return quantisation


@contextlib.contextmanager
def safe_torch_load(allow_pickle: bool) -> Iterator[None]:
    """Make every ``torch.load`` inside the block use ``weights_only=True`` (unless ``allow_pickle``)."""
    import importlib

    import torch

    allowed = []
    for name in DEEPSPEED_SAFE_GLOBALS:
        module, _, attr = name.partition(":")
        with contextlib.suppress(ImportError, AttributeError):
            allowed.append(getattr(importlib.import_module(module), attr))
    original = torch.load

    def load(*args: Any, **kwargs: Any) -> Any:
        kwargs["weights_only"] = not allow_pickle
        with torch.serialization.safe_globals(allowed):
            return original(*args, **kwargs)

    torch.load = load
    try:
        yield
    finally:
        torch.load = original


def deepspeed_folder(source: ModelSource, allow_pickle: bool = False) -> Path:
    """Return the cached fp32 safetensors folder consolidated from a ZeRO checkpoint."""
    path = source.path
    tag = deepspeed_tag_dir(path) if path else None
    if path is None or tag is None:
        raise ValueError(f"{source.spec} is not a DeepSpeed checkpoint")
    config_dir = next((d for d in (path, tag.parent, tag.parent.parent) if (d / "config.json").is_file()), None)
    if config_dir is None:
        raise UserError(f"{path}: DeepSpeed checkpoint has no config.json next to it; copy the model's "
                        "config.json (and tokenizer files) into that folder")
    target = models_dir() / f"zero-{_slug(path.name)}-{content_hash(source)[:16]}"

    def build(tmp: Path) -> None:
        import pickle

        from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint
        from transformers import AutoConfig

        try:  # DeepSpeed prints progress on stdout, which belongs to the results table
            with safe_torch_load(allow_pickle), contextlib.redirect_stdout(sys.stderr):
                state = get_fp32_state_dict_from_zero_checkpoint(str(tag.parent), tag=tag.name)
        except pickle.UnpicklingError as err:
            found = re.search(r"GLOBAL ([\w.]+)", str(err))
            what = found.group(1) if found else "a pickled object"
            raise UserError(f"{tag}: checkpoint holds {what}, which safe loading (weights_only) refuses; "
                            "pass --trust-remote-code only if you trust this checkpoint") from None
        except (OSError, ValueError, KeyError, RuntimeError) as err:
            raise UserError(f"{tag}: cannot consolidate DeepSpeed checkpoint ({type(err).__name__}: {first_line(err)})") from None
        config = AutoConfig.from_pretrained(str(config_dir))
        model = model_class(config).from_config(config)
        result = model.load_state_dict(state, strict=False)
        tied = set(getattr(model, "_tied_weights_keys", None) or ())
        missing = [k for k in result.missing_keys if k not in tied and not k.endswith("lm_head.weight")]
        if missing or result.unexpected_keys:
            raise UserError(f"{tag}: weights do not fit {type(model).__name__} from {config_dir / 'config.json'} "
                            f"(missing {missing[:3]}, unexpected {result.unexpected_keys[:3]})")
        model.save_pretrained(str(tmp))
        for name in TOKENIZER_FILES:
            if (config_dir / name).is_file() and not (tmp / name).exists():
                shutil.copy2(config_dir / name, tmp / name)
        _write_origin(tmp, source)

    return publish(target, build)


def model_class(config: Any) -> Any:
    """Return the Auto class for ``config``: seq2seq, causal LM, or a bare encoder (MiniLM)."""
    from transformers import AutoModel, AutoModelForCausalLM, AutoModelForSeq2SeqLM
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    if getattr(config, "is_encoder_decoder", False):
        return AutoModelForSeq2SeqLM
    architectures = getattr(config, "architectures", None) or []
    if config.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and (
            not architectures or any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in architectures)):
        return AutoModelForCausalLM
    return AutoModel


def _write_origin(folder: Path, source: ModelSource, **extra: Any) -> None:
    (folder / "dialbench-origin.json").write_text(json.dumps({**source.describe(), **extra}, indent=1), encoding="utf-8")


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name)[:60]
