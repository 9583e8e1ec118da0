"""OLMo-core configuration for a `utk augment --format olmo` output.

OLMo-core's fixed-sequence-length numpy dataset reads utk's files as they are:

    tokens.olmo.bin      headerless uint16/uint32 token ids, window after window
    loss_mask.olmo.bin   np.bool_, one byte per token: True = the token is a target

Instance i is window i when `sequence_length` equals utk's `seq_len`, and OLMo-core's label mask
means what utk's loss mask means, so no shift is needed. The lines a training script needs:

    from olmo_core.data import NumpyDatasetDType, NumpyFSLDatasetConfig, TokenizerConfig

    dataset_config = NumpyFSLDatasetConfig(
        paths=["/data/utk-128k/tokens.olmo.bin"],
        label_mask_paths=["/data/utk-128k/loss_mask.olmo.bin"],
        sequence_length=131072,              # manifest.json: seq_len
        dtype=NumpyDatasetDType.uint32,      # manifest.json: files[tokens.olmo.bin].dtype
        tokenizer=TokenizerConfig(
            vocab_size=151936,               # the model's embedding rows, >= manifest vocab_size
            eos_token_id=151643,             # manifest.json: special_tokens.eod
            pad_token_id=151669,             # manifest.json: special_tokens.pad
        ),
        work_dir="/tmp/olmo-dataset-cache",
    )

Give `dtype` explicitly: OLMo-core otherwise guesses it from the tokenizer's vocab_size, which may
not count utk's own ids. Several utk outputs: list each token file in `paths` and its mask file at
the same position in `label_mask_paths`.

`utk_olmo_dataset_config(out_dir)` below builds that config from the manifest; `olmo_settings`
is the same without importing OLMo-core.
"""

import json
import os
from typing import Any, Dict, Optional


def olmo_settings(out_dir: str, vocab_size: Optional[int] = None) -> Dict[str, Any]:
    """The values of the config above, read from the output's manifest."""
    with open(os.path.join(out_dir, "manifest.json")) as f:
        manifest = json.load(f)
    files = {entry["path"]: entry for entry in manifest["files"]}
    if "tokens.olmo.bin" not in files:
        raise ValueError(f"{out_dir} has no OLMo output: run utk augment with --format olmo")
    needed = int(manifest["vocab_size"])
    if vocab_size is not None and vocab_size < needed:
        raise ValueError(f"vocab_size {vocab_size} is below utk's ids (needs {needed})")
    return {
        "paths": [os.path.join(out_dir, "tokens.olmo.bin")],
        "label_mask_paths": [os.path.join(out_dir, "loss_mask.olmo.bin")],
        "sequence_length": int(manifest["seq_len"]),
        "dtype": files["tokens.olmo.bin"]["dtype"],
        "vocab_size": vocab_size or needed,
        "eos_token_id": int(manifest["special_tokens"]["eod"]),
        "pad_token_id": int(manifest["special_tokens"]["pad"]),
    }


def utk_olmo_dataset_config(out_dir: str, vocab_size: Optional[int] = None, work_dir: Optional[str] = None):
    """An OLMo-core `NumpyFSLDatasetConfig` over the output in `out_dir`."""
    from olmo_core.data import NumpyDatasetDType, NumpyFSLDatasetConfig, TokenizerConfig

    s = olmo_settings(out_dir, vocab_size)
    return NumpyFSLDatasetConfig(
        paths=s["paths"],
        label_mask_paths=s["label_mask_paths"],
        sequence_length=s["sequence_length"],
        dtype=NumpyDatasetDType(s["dtype"]),
        tokenizer=TokenizerConfig(
            vocab_size=s["vocab_size"],
            eos_token_id=s["eos_token_id"],
            pad_token_id=s["pad_token_id"],
        ),
        work_dir=work_dir,
    )
