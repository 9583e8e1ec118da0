"""Train a Hugging Face model on utk's parquet output (`utk augment --format parquet`).

`windows.parquet` holds one row per window: `input_ids` (list of int32) and `loss_mask` (list of
uint8, 1 = this token is a training target). `load_windows` reads it with `datasets` and adds

    labels  the window, with -100 where utk's loss mask is 0

which is what `transformers` causal-LM models expect: same length as input_ids, shifted inside the
model (the prediction at position i is scored against labels[i+1]), -100 ignored by the loss. So
markup (chunk labels, knots, `<S>`, pad) is never a target; content, EOD and backtrace lists are,
exactly as utk's mask says. The labels are computed lazily per batch (`with_transform`), so the
dataset stays memory-mapped Arrow and nothing is copied up front.

    python examples/hf_trainer_parquet.py OUT_DIR MODEL_NAME_OR_PATH [TRAINER_OUTPUT_DIR]

runs a short `transformers.Trainer` run (10 steps, batch size 1) on the windows; the model's
vocabulary must cover the output's ids (`vocab_size` in OUT_DIR/manifest.json: utk's special
tokens come after the tokenizer's ids, so resize the embeddings if they do not fit).

`labels_for` needs numpy only, so the label rule can be checked without datasets or torch.
"""

import json
import os
import sys

import numpy as np

IGNORE_INDEX = -100


def labels_for(input_ids, loss_mask):
    """Labels of a batch of windows: input_ids where the mask is 1, -100 elsewhere (int64)."""
    ids = np.asarray(input_ids, dtype=np.int64)
    mask = np.asarray(loss_mask, dtype=np.uint8)
    return np.where(mask == 1, ids, IGNORE_INDEX)


def add_labels(batch):
    """A `datasets` transform: input_ids and labels as int64 arrays (loss_mask dropped)."""
    ids = np.asarray(batch["input_ids"], dtype=np.int64)
    return {"input_ids": ids, "labels": labels_for(ids, batch["loss_mask"])}


def load_windows(out_dir):
    """The windows of a utk output as a `datasets.Dataset` with input_ids and labels."""
    from datasets import load_dataset

    files = sorted(os.path.join(out_dir, f) for f in os.listdir(out_dir) if f.endswith(".parquet"))
    ds = load_dataset("parquet", data_files=files, split="train")
    return ds.with_transform(add_labels)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    out_dir, model_name = sys.argv[1], sys.argv[2]
    import torch
    from transformers import AutoModelForCausalLM, Trainer, TrainingArguments, default_data_collator

    with open(os.path.join(out_dir, "manifest.json")) as f:
        vocab_size = json.load(f)["vocab_size"]
    model = AutoModelForCausalLM.from_pretrained(model_name)
    if model.get_input_embeddings().weight.shape[0] < vocab_size:
        model.resize_token_embeddings(vocab_size)
    args = TrainingArguments(
        output_dir=sys.argv[3] if len(sys.argv) > 3 else "utk-trainer-out",
        per_device_train_batch_size=1,
        max_steps=10,
        remove_unused_columns=False,  # the transform, not the model signature, picks the columns
        report_to=[],
        use_cpu=not torch.cuda.is_available(),
    )
    trainer = Trainer(model=model, args=args, train_dataset=load_windows(out_dir), data_collator=default_data_collator)
    trainer.train()


if __name__ == "__main__":
    main()
