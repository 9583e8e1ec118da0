"""A minimal PyTorch map-style dataset over utk's `.npy` output (`utk augment --format npy`).

`tokens.npy` and `loss_mask.npy` have shape (windows, seq_len); both are memory-mapped, so a
worker touches only the windows it reads. Sample `i` is window `i`:

    input_ids  int64 [L]  the window
    labels     int64 [L]  the window, with -100 where utk's loss mask is 0
    loss_mask  uint8 [L]  utk's mask: 1 = this token is a training target

`labels` follows the Hugging Face convention: same length as input_ids, the model shifts them
(the prediction at position i is scored against labels[i+1]), and -100 is ignored by
`torch.nn.CrossEntropyLoss`. So markup (chunk labels, knots, `<S>`, pad) is never a target and
content, EOD and backtrace lists are, exactly as utk's mask says. Pass the dataset straight to
`transformers.Trainer` or to a `torch.utils.data.DataLoader`.

With `utk augment --doc-boundaries` (methods plain and cip) the output also holds
`doc_lens.bin/.idx`, each window's segment lengths (a document's part of the window, or a CIP
chunk; the trailing pad is the last segment). Each sample then also has:

    position_ids  int64 [L]    0, 1, … restarting at every segment: what Hugging Face's
                               `DataCollatorWithFlattening` produces, and what its flash-attention
                               path reads to keep attention inside each segment
    cu_seqlens    int32 [S+1]  0 and the running segment ends (the last is L): the `cu_seqlens_q/k`
                               of `flash_attn_varlen_func` for this window ("AttnMask")

A segment that continues a document from the previous window starts again at position 0: the
window is all the model sees of it.

The class needs numpy only; torch is imported by `loader()` alone, so the data path can be tested
without installing torch.
"""

import os
from typing import Dict, Optional, Tuple

import numpy as np

IGNORE_INDEX = -100


class UtkNpyDataset:
    """Windows of a utk output's `tokens.npy` / `loss_mask.npy` (usable wherever a torch Dataset is)."""

    def __init__(self, out_dir: str):
        self.tokens = np.load(os.path.join(out_dir, "tokens.npy"), mmap_mode="r")
        self.mask = np.load(os.path.join(out_dir, "loss_mask.npy"), mmap_mode="r")
        if self.tokens.shape != self.mask.shape or self.tokens.ndim != 2:
            raise ValueError(f"{out_dir}: tokens {self.tokens.shape} and mask {self.mask.shape} differ")
        self.doc_lens = read_doc_lens(out_dir)
        if self.doc_lens is not None and len(self.doc_lens[0]) - 1 != self.tokens.shape[0]:
            raise ValueError(f"{out_dir}: doc_lens has {len(self.doc_lens[0]) - 1} windows, tokens {self.tokens.shape[0]}")

    def __len__(self) -> int:
        return self.tokens.shape[0]

    def __getitem__(self, i: int) -> Dict[str, np.ndarray]:
        input_ids = self.tokens[i].astype(np.int64)
        mask = np.array(self.mask[i], dtype=np.uint8)
        labels = np.where(mask == 1, input_ids, IGNORE_INDEX)
        sample = {"input_ids": input_ids, "labels": labels, "loss_mask": mask}
        if self.doc_lens is not None:
            starts, values = self.doc_lens
            lens = np.asarray(values[starts[i] : starts[i + 1]], dtype=np.int64)
            if lens.sum() != len(input_ids):
                raise ValueError(f"window {i}: segment lengths sum to {lens.sum()}, not {len(input_ids)}")
            sample["cu_seqlens"] = np.concatenate([[0], np.cumsum(lens)]).astype(np.int32)
            sample["position_ids"] = segment_positions(lens)
        return sample

    def loader(self, batch_size: int, shuffle: bool = True, **kwargs):
        """A torch DataLoader over the windows (the default collate stacks them into tensors)."""
        import torch.utils.data

        return torch.utils.data.DataLoader(self, batch_size=batch_size, shuffle=shuffle, **kwargs)


def segment_positions(lens: np.ndarray) -> np.ndarray:
    """0, 1, … restarting at the start of every segment of the given lengths."""
    total = int(lens.sum())
    starts = np.repeat(np.cumsum(lens) - lens, lens)
    return np.arange(total, dtype=np.int64) - starts


def read_doc_lens(out_dir: str) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """`doc_lens.idx/.bin` (a Megatron indexed dataset of int32, one sequence per window) as
    (start of each window's lengths in the values + the end, all the values), or None."""
    idx_path = os.path.join(out_dir, "doc_lens.idx")
    if not os.path.exists(idx_path):
        return None
    idx = np.fromfile(idx_path, dtype=np.uint8)
    if bytes(idx[:9]) != b"MMIDIDX\x00\x00" or idx[17] != 4:  # magic, int32 dtype code
        raise ValueError(f"{idx_path}: not an int32 Megatron index")
    windows = int(idx[18:26].view(np.uint64)[0])
    counts = idx[34 : 34 + 4 * windows].view(np.int32).astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)])
    values = np.memmap(os.path.join(out_dir, "doc_lens.bin"), dtype=np.int32, mode="r")
    if len(values) != starts[-1]:
        raise ValueError(f"{out_dir}/doc_lens.bin: {len(values)} values, its index says {starts[-1]}")
    return starts, values


def causal_lm_loss(logits, labels):
    """Mean cross-entropy over the targets: logits [B, L, V] at positions 0…L-2 against labels 1…L-1."""
    import torch.nn.functional as F

    return F.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]),
        labels[:, 1:].reshape(-1),
        ignore_index=IGNORE_INDEX,
    )
