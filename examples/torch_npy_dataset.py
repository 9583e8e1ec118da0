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

The class needs numpy only; torch is imported by `loader()` alone, so the data path can be tested
without installing torch.
"""

import os
from typing import Dict

import numpy as np

IGNORE_INDEX = -100


class UtkNpyDataset:
    """Windows of a utk output's `tokens.npy` / `loss_mask.npy` (usable wherever a torch Dataset is)."""

    def __init__(self, out_dir: str):
        self.tokens = np.load(os.path.join(out_dir, "tokens.npy"), mmap_mode="r")
        self.mask = np.load(os.path.join(out_dir, "loss_mask.npy"), mmap_mode="r")
        if self.tokens.shape != self.mask.shape or self.tokens.ndim != 2:
            raise ValueError(f"{out_dir}: tokens {self.tokens.shape} and mask {self.mask.shape} differ")

    def __len__(self) -> int:
        return self.tokens.shape[0]

    def __getitem__(self, i: int) -> Dict[str, np.ndarray]:
        input_ids = self.tokens[i].astype(np.int64)
        mask = np.array(self.mask[i], dtype=np.uint8)
        labels = np.where(mask == 1, input_ids, IGNORE_INDEX)
        return {"input_ids": input_ids, "labels": labels, "loss_mask": mask}

    def loader(self, batch_size: int, shuffle: bool = True, **kwargs):
        """A torch DataLoader over the windows (the default collate stacks them into tensors)."""
        import torch.utils.data

        return torch.utils.data.DataLoader(self, batch_size=batch_size, shuffle=shuffle, **kwargs)


def causal_lm_loss(logits, labels):
    """Mean cross-entropy over the targets: logits [B, L, V] at positions 0…L-2 against labels 1…L-1."""
    import torch.nn.functional as F

    return F.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]),
        labels[:, 1:].reshape(-1),
        ignore_index=IGNORE_INDEX,
    )
