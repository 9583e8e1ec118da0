//! The integration tests, one module per area, built as one test binary (`tests/it/`): a
//! binary per file linked the crate and its dependencies (parquet, arrow) with LTO once each,
//! which made `cargo test --release` spend most of its time linking. Each module runs the `utk`
//! binary on fixtures or drives the library; `common/` holds what they share.

mod augment;
mod backend;
mod bad_input;
mod common;
mod eod;
mod fast_tokenizer;
mod faults;
mod formats;
mod fuzz_regressions;
mod inspect;
mod long_line;
mod paper;
mod parquet;
mod parts;
mod properties;
mod security;
mod shards;
mod statistics;
mod stream;
mod tokenizer_cache;
mod verify;
