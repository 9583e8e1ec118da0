"""A Megatron-LM / megatron-core dataset over a `utk augment` output, with UtK's loss mask.

No stock Megatron dataset reads a per-token loss mask from disk: GPTDataset derives its mask from
EOD and pad tokens. This class reads utk's two indexed datasets, `tokens.bin/.idx` and
`loss_mask.bin/.idx` (one sequence per window), and returns one window per sample as the batch
dictionary Megatron's GPT training step expects:

    tokens        int64 [L]   the window
    labels        int64 [L]   tokens shifted left by one; the last label is utk's pad id
    loss_mask     float [L]   loss_mask[i] weighs the prediction of labels[i] = window[i+1],
                              so it is utk's mask shifted by one: mask[i+1], and 0 at i = L-1
    position_ids  int64 [L]   0 … L-1 over the whole window
    attention_mask bool [1, L, L] causal (True = masked), only if config.create_attention_mask

utk's mask is "token j is a target"; Megatron's is "the prediction made at input position i
counts", and the prediction at i is of token i+1. Pairing labels = window[1:] with mask[1:] keeps
exactly utk's targets: content, EOD and the backtrace lists, never labels, knots or pad. The first
token of a window is never a target (nothing precedes it), as in every causal LM.

Register it (Megatron-LM, `pretrain_gpt.py`): put this directory on PYTHONPATH and, in
`train_valid_test_datasets_provider`, build `UtkWindowDataset` where GPTDataset is built:

    from megatron_utk_dataset import UtkWindowDataset
    ...
    train_ds, valid_ds, test_ds = BlendedMegatronDatasetBuilder(
        UtkWindowDataset, train_val_test_num_samples, is_dataset_built_on_rank, config
    ).build()

and launch with `--data-path OUT` (the utk output directory, or its `OUT/tokens` prefix),
`--seq-length` equal to the manifest's `seq_len`, `--split 100,0,0` (or any split: it splits
windows), `--no-create-attention-mask-in-dataloader` for long windows, and a tokenizer / padded
vocabulary with at least the manifest's `vocab_size` rows (utk's markup ids lie past the
tokenizer's own). `--reset-position-ids` and `--reset-attention-mask` are refused: a UtK window
is one sequence whose chunks must see each other across document boundaries. `--eod-mask-loss`
has no effect: utk's mask already decides every position.

Intra-document attention ("AttnMask" in the paper) needs plain or cip windows: UtK's chunks must
see each other. Megatron's `--reset-attention-mask` / `--reset-position-ids` (on GPTDataset,
with plain packing's `tokens` only) find document boundaries from EOD tokens, which differs from
utk's `doc_lens` (`utk augment --doc-boundaries`) in two places:

- the start of a window whose first piece continues a document from the window before holds no
  EOD. That costs nothing: a sample's first token starts a segment anyway, so the piece attends to
  itself only and its positions restart at 0, exactly as doc_lens has it. What neither can give
  it is the rest of its document, which lies in the previous sample;
- CIP chunks carry no EOD except a document's last one, so EOD-based reset merges each chunk
  with the chunks that follow it up to the next EOD: tokens then attend across documents. Build
  the mask and `position_ids` from `doc_lens.bin/.idx` instead (one int32 sequence per window,
  its segment lengths; the same reading as `examples/torch_npy_dataset.py`).

This class keeps its refusal of both flags for UtK outputs.

Everything else (the config class, the builder, blending several utk outputs with weights,
train/valid/test splits, caching) is Megatron's own machinery, unchanged.
"""

import json
import os
from typing import Dict, Optional

import numpy
import torch

from megatron.core.datasets.indexed_dataset import IndexedDataset
from megatron.core.datasets.megatron_dataset import MegatronDataset
from megatron.core.datasets.utils import Split


def utk_output_dir(dataset_path: str) -> str:
    """The utk output directory named by a --data-path entry: the directory or its `tokens` prefix."""
    if os.path.isdir(dataset_path):
        return dataset_path
    return os.path.dirname(os.path.abspath(dataset_path))


class UtkIndexedPair:
    """The low-level dataset: utk's token and mask indexed datasets and its manifest."""

    def __init__(self, out_dir: str, mmap: bool = True):
        with open(os.path.join(out_dir, "manifest.json")) as f:
            self.manifest = json.load(f)
        if "megatron" not in self.manifest.get("formats", ["megatron"]):
            raise ValueError(f"{out_dir} has no Megatron output: run utk augment with --format megatron")
        self.seq_len = int(self.manifest["seq_len"])
        self.pad_id = int(self.manifest["special_tokens"]["pad"])
        self.tokens = IndexedDataset(os.path.join(out_dir, "tokens"), multimodal=False, mmap=mmap)
        self.mask = IndexedDataset(os.path.join(out_dir, "loss_mask"), multimodal=False, mmap=mmap)
        if len(self.tokens) != len(self.mask) or len(self.tokens) != self.manifest["windows"]:
            raise ValueError(f"{out_dir}: token, mask and manifest window counts differ")

    def __len__(self) -> int:
        return len(self.tokens)


class UtkWindowDataset(MegatronDataset):
    """One utk window per sample, with UtK's loss mask shifted to Megatron's convention."""

    def __init__(
        self,
        dataset: UtkIndexedPair,
        dataset_path: Optional[str],
        indices: numpy.ndarray,
        num_samples: Optional[int],
        index_split: Split,
        config,
    ) -> None:
        super().__init__(dataset, dataset_path, indices, num_samples, index_split, config)
        if config.sequence_length != dataset.seq_len:
            raise ValueError(
                f"--seq-length {config.sequence_length} but {dataset_path} holds windows of "
                f"{dataset.seq_len} tokens: they must be equal"
            )
        if getattr(config, "reset_position_ids", False) or getattr(config, "reset_attention_mask", False):
            raise ValueError(
                "UtK windows are single sequences: drop --reset-position-ids / --reset-attention-mask"
            )
        if indices is None:
            indices = numpy.arange(len(dataset), dtype=numpy.int64)
        self.windows = numpy.asarray(indices, dtype=numpy.int64)
        wanted = len(self.windows) if num_samples is None else int(num_samples)
        self.order = self._sample_order(wanted)
        length = dataset.seq_len
        self._position_ids = torch.arange(length, dtype=torch.long)
        self._causal = None
        if getattr(config, "create_attention_mask", False):
            self._causal = ~torch.ones(length, length, dtype=torch.bool).tril().unsqueeze(0)

    def _sample_order(self, wanted: int) -> numpy.ndarray:
        """Windows of this split, shuffled per epoch with the config's seed, repeated to `wanted`."""
        n = len(self.windows)
        if n == 0 or wanted == 0:
            return numpy.zeros(0, dtype=numpy.int64)
        epochs = -(-wanted // n)
        rng = numpy.random.RandomState(self.config.random_seed)
        order = numpy.concatenate([rng.permutation(n) for _ in range(epochs)])
        return self.windows[order[:wanted]]

    @staticmethod
    def numel_low_level_dataset(low_level_dataset: UtkIndexedPair) -> int:
        return len(low_level_dataset)

    @staticmethod
    def build_low_level_dataset(dataset_path: str, config) -> UtkIndexedPair:
        return UtkIndexedPair(utk_output_dir(dataset_path), mmap=getattr(config, "mmap_bin_files", True))

    def __len__(self) -> int:
        return len(self.order)

    def window(self, w: int) -> Dict[str, torch.Tensor]:
        """The sample for window `w` of the utk output (not a sample index)."""
        window = numpy.asarray(self.dataset.tokens[w], dtype=numpy.int64)
        mask = numpy.asarray(self.dataset.mask[w], dtype=numpy.float32)
        tokens = torch.from_numpy(window)
        labels = torch.empty_like(tokens)
        labels[:-1] = tokens[1:]
        labels[-1] = self.dataset.pad_id
        loss_mask = torch.zeros(len(mask), dtype=torch.float)
        loss_mask[:-1] = torch.from_numpy(mask[1:])
        sample = {
            "tokens": tokens,
            "labels": labels,
            "loss_mask": loss_mask,
            "position_ids": self._position_ids.clone(),
        }
        if self._causal is not None:
            sample["attention_mask"] = self._causal
        return sample

    def __getitem__(self, idx: Optional[int]) -> Dict[str, torch.Tensor]:
        if idx is None:
            # A padding sample (Megatron asks for one to fill a batch): it must not count.
            sample = self.window(int(self.windows[0]) if len(self.windows) else 0)
            sample["loss_mask"].zero_()
            return sample
        return self.window(int(self.order[idx]))
