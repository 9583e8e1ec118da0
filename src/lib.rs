//! `utk` prepares long-context pretraining data with the "Untie the Knots" (UtK) augmentation.
//!
//! The pipeline has five stages, one module each, and data flows one way through them:
//!
//! 1. [`input`] streams documents from JSONL files (plain, gzip or zstd) or standard input, or
//!    reads already-tokenized token shards (Megatron, datatrove, `.npy`, raw), which skip stage 2;
//! 2. [`tokenize`] turns each document into token ids with a Hugging Face `tokenizer.json`,
//!    appends the end-of-document token, and resolves the special-token ids UtK inserts;
//! 3. [`pack`] fills windows of exactly `seq_len` tokens in stream order, asking a [`pack::Shaper`]
//!    how many tokens each piece's markup will cost *before* the piece is placed, so no original
//!    token is ever pushed out of a window;
//! 4. [`augment`] chunks every piece, labels the chunks, ties them with knots, shuffles them and
//!    appends the backtracing list, producing the window's tokens, loss mask and provenance;
//! 5. [`output`] writes the token and mask files of every format (Megatron, OLMo, `.npy`), the
//!    provenance sidecar and the manifest, under temporary names that are renamed only once
//!    everything is complete.
//!
//! Each subcommand's run is one module: [`pipeline`] (`utk augment`: a reader thread, rayon for
//! the parallel stages, a writer thread), [`pretokenize`] (`utk tokenize`: stages 1–2 into a
//! Megatron dataset), [`verify`], [`inspect`] and [`merge`] (`utk merge`: the parts of a run,
//! see [`part`], joined). Byte layouts both read and written are in
//! [`codec`]; [`rng`] derives every random generator from `(seed, window, purpose)`, so the
//! output bytes never depend on the thread count. `docs/architecture.md` has the whole picture.

pub mod augment;
pub mod choice;
pub mod codec;
pub mod config;
#[doc(hidden)]
pub mod fuzzing;
pub mod input;
pub mod inspect;
pub mod mapped;
pub mod merge;
pub mod output;
pub mod pack;
pub mod part;
pub mod pipeline;
pub mod pretokenize;
pub mod progress;
pub mod record;
pub mod rng;
pub mod setting;
pub mod tokenize;
pub mod untie;
pub mod upsample;
pub mod verify;
pub mod workers;
