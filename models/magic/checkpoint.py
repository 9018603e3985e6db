"""Load a MAGIC response model from our layout or from the released one (systems.md section 9.2).

Ours (``dialbench train magic``): ``config.json`` + ``model.safetensors`` + ``memory_bank.safetensors``
+ tokenizer at the top level, the strategy adapter in ``strategy/``, ``magic.json`` tying them.

Released (``main.py``): ``dialogue_model.pth`` (a plain state dict), ``memory_bank.pth`` (a list of
8 tensors [n <= 128, 768]) and BartTokenizer files, but no model config: the dimensions are read
from the tensor shapes (the head count, which shapes cannot tell, is d_model / 64 as in
bart-base/large). Both ``.pth`` files are read with ``torch.load(weights_only=True)`` on CPU, so a
file holding pickled objects beyond tensors is refused instead of executed.
"""
from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

from harness.errors import UserError, first_line
from models.magic.bank import BANK_FILE
from models.magic.modeling import MagicConfig, MagicResponseModel

RELEASED_MODEL = "dialogue_model.pth"
RELEASED_BANK = "memory_bank.pth"


def is_released_layout(folder: Path) -> bool:
    """Return True for a folder saved by the released ``main.py`` (no config.json, a dialogue_model.pth)."""
    return (folder / RELEASED_MODEL).is_file() and not (folder / "config.json").is_file()


def safe_torch_load(path: Path) -> Any:
    """Return ``torch.load(path, weights_only=True)`` on CPU; pickled code is a one-line UserError."""
    import torch

    if not path.is_file():
        raise UserError(f"{path}: file not found")
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise UserError(f"{path}: holds pickled Python objects, not only tensors; refusing to unpickle it "
                        f"(weights_only loading: {first_line(err)[:120]})") from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise UserError(f"{path}: cannot read torch file ({first_line(err)})") from None


def released_config(state: dict[str, Any], tokenizer: Any, heads: int | None = None) -> MagicConfig:
    """Return the config implied by a released state dict's shapes."""
    def shape(key: str) -> tuple[int, ...]:
        if key not in state:
            raise UserError(f"{RELEASED_MODEL}: missing key '{key}' (not a MAGIC DialogueModel state dict)")
        return tuple(state[key].shape)

    vocab, d_model = shape("encoder.embed_tokens.weight")
    positions = shape("encoder.embed_positions.weight")[0] - 2  # BART's learned positions carry an offset of 2
    enc_layers = len({k.split(".")[2] for k in state if k.startswith("encoder.layers.")})
    dec_layers = len({k.split(".")[2] for k in state if k.startswith("decoder.layers.")})
    ffn = shape("encoder.layers.0.fc1.weight")[0]
    heads = heads or max(1, d_model // 64)
    bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else 0
    return MagicConfig(vocab_size=vocab, d_model=d_model, encoder_layers=enc_layers, decoder_layers=dec_layers,
                       encoder_attention_heads=heads, decoder_attention_heads=heads, encoder_ffn_dim=ffn,
                       decoder_ffn_dim=ffn, max_position_embeddings=positions,
                       n_strategies=shape("strategy_cls.classifier.weight")[0],
                       pad_token_id=tokenizer.pad_token_id, bos_token_id=bos, eos_token_id=tokenizer.eos_token_id,
                       decoder_start_token_id=bos, forced_eos_token_id=None, forced_bos_token_id=None)


def load_released(folder: Path, heads: int | None = None) -> tuple[MagicResponseModel, Any]:
    """Return (model, tokenizer) from the released layout (strict key match, banks included)."""
    import torch
    from transformers import AutoTokenizer

    state = safe_torch_load(folder / RELEASED_MODEL)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"{folder / RELEASED_MODEL}: expected a state dict of tensors")
    bank_path = folder / RELEASED_BANK
    if not bank_path.is_file():
        raise UserError(f"{bank_path}: strategy bank missing; the released layout saves it next to {RELEASED_MODEL}")
    banks = safe_torch_load(bank_path)
    if not isinstance(banks, (list, tuple)) or not all(isinstance(b, torch.Tensor) for b in banks):
        raise UserError(f"{bank_path}: expected a list of tensors (one bank per strategy)")
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
    except (OSError, ValueError) as err:
        raise UserError(f"{folder}: cannot load the tokenizer files ({first_line(err)})") from None
    model = MagicResponseModel(released_config(state, tokenizer, heads))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise UserError(f"{folder / RELEASED_MODEL}: does not match MAGIC's DialogueModel ({first_line(err)})") from None
    model.bank.load_tensors(list(banks), str(bank_path))
    return model, tokenizer


def load_response_model(folder: Path, heads: int | None = None) -> tuple[MagicResponseModel, Any]:
    """Return (model, tokenizer) from either layout; a folder that is neither is a UserError."""
    from transformers import AutoTokenizer

    folder = Path(folder)
    if is_released_layout(folder):
        return load_released(folder, heads)
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise UserError(f"{folder}: not a MAGIC checkpoint (no config.json, no {RELEASED_MODEL})")
    model_type = json.loads(config_path.read_text(encoding="utf-8")).get("model_type")
    if model_type != MagicConfig.model_type:
        raise UserError(f"{config_path}: model type '{model_type}' is not a MAGIC response model ({MagicConfig.model_type})")
    if not (folder / BANK_FILE).is_file():
        raise UserError(f"{folder / BANK_FILE}: strategy bank missing; a MAGIC checkpoint needs its memory bank")
    try:
        model = MagicResponseModel.from_pretrained(str(folder))
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
    except UserError:
        raise
    except (OSError, ValueError, RuntimeError) as err:
        raise UserError(f"{folder}: cannot load MAGIC response model ({first_line(err)})") from None
    return model, tokenizer
