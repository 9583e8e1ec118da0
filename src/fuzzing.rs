//! Entry points for the fuzz targets in `fuzz/` and for `tests/it/fuzz_regressions.rs`, which replays
//! the inputs the fuzzers found interesting. Each takes arbitrary bytes and drives one reader of
//! outside data the way a run does; the only requirement is that it returns (errors are fine)
//! instead of panicking, hanging or allocating without bound. Not part of the stable API.

use crate::codec::megatron::decode_idx;
use crate::codec::npy::parse_npy_header;
use crate::input::jsonl::parse_line;
use crate::input::{Input, InputFormat, Reader, TextOptions, BATCH_TOKENS};
use crate::inspect::{window_view, KnotDistances};
use crate::output::reader::OutputReader;
use crate::record::DocBatch;
use crate::tokenize::fast::{cache, FastEncoder};
use indicatif::ProgressBar;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A fuzz target: bytes in, nothing out (a panic is the failure).
pub type Target = fn(&[u8]);

/// The fuzz targets, by name (the directory names of `fuzz/corpus/` and `fuzz/regressions/`).
pub const TARGETS: &[(&str, Target)] = &[
    ("jsonl_line", jsonl_line),
    ("text_file", text_file),
    ("megatron_idx", megatron_idx),
    ("datatrove_index", datatrove_index),
    ("npy", npy),
    ("tokenizer_json", tokenizer_json),
    ("tokenizer_cache", tokenizer_cache),
    ("output_dir", output_dir),
];

/// A JSONL line and its text key (`text`, as runs use by default), then a nested key.
pub fn jsonl_line(data: &[u8]) {
    let _ = parse_line(data, &["text".to_string()]);
    let _ = parse_line(data, &["meta".to_string(), "text".to_string()]);
}

/// A whole text input file, plain or gzip/zstd framed (detected from its first bytes), read
/// document by document with bad lines skipped and, separately, with bad lines fatal.
pub fn text_file(data: &[u8]) {
    let dir = Scratch::new();
    let path = dir.write("input.jsonl", data);
    for skip_bad_lines in [true, false] {
        read_all(
            std::slice::from_ref(&path),
            InputFormat::Jsonl,
            skip_bad_lines,
        );
    }
}

/// A Megatron `.idx` (the fuzzed bytes) decoded alone, then read as a shard beside a `.bin`
/// whose size is taken from the first two bytes.
pub fn megatron_idx(data: &[u8]) {
    let _ = decode_idx(data);
    let (bin_len, idx) = split_len(data);
    let dir = Scratch::new();
    let bin = dir.write("shard.bin", &ids_bytes(bin_len));
    dir.write("shard.idx", idx);
    read_all(&[bin], InputFormat::Megatron, false);
}

/// A datatrove `.ds.index` (the fuzzed bytes) beside a `.ds` whose size is taken from the first
/// two bytes.
pub fn datatrove_index(data: &[u8]) {
    let (ds_len, index) = split_len(data);
    let dir = Scratch::new();
    let ds = dir.write("shard.ds", &ids_bytes(ds_len));
    dir.write("shard.ds.index", index);
    read_all(&[ds], InputFormat::Datatrove, false);
}

/// A `.npy` file: its header parsed alone, then the whole file read as a token shard.
pub fn npy(data: &[u8]) {
    let _ = parse_npy_header(data);
    let dir = Scratch::new();
    let path = dir.write("shard.npy", data);
    read_all(&[path], InputFormat::Npy, false);
}

/// Awkward texts the fuzz targets encode with a tokenizer that loaded.
const TEXTS: &[&str] = &[
    "Hello, world!  It's 2026\n\n\tdone",
    "漢字かなカナ 🙂👍🏽 e\u{301} ﬁ ①",
    "<|endoftext|>   \r\n x",
];

/// A `tokenizer.json` given to the fast encoder's loader; when it loads, a few awkward texts are
/// encoded with it (whole and cut into parts), and again after a round trip through a tokenizer
/// cache entry, which must give the same ids.
pub fn tokenizer_json(data: &[u8]) {
    let Ok(json) = std::str::from_utf8(data) else {
        return;
    };
    for encode_special_tokens in [true, false] {
        let Ok(built) = FastEncoder::build(json, encode_special_tokens) else {
            continue;
        };
        let ids: Vec<Vec<u32>> = TEXTS.iter().map(|t| built.fast.encode(t)).collect();
        for text in TEXTS {
            let _ = built.fast.encode_in_parts(text, 3);
        }
        let sha = "0".repeat(64);
        let Ok(entry) = built.cache_entry(json, &sha) else {
            continue;
        };
        let entry = cache::decode(&entry, json.len() as u64).expect("an entry just made reads");
        let (fast, _) = FastEncoder::from_cache(entry, encode_special_tokens)
            .expect("an entry of a file that loads builds");
        let again: Vec<Vec<u32>> = TEXTS.iter().map(|t| fast.encode(t)).collect();
        assert_eq!(again, ids, "the cache entry gives other ids");
    }
}

/// A tokenizer cache entry (its source length taken from its own header): when it reads and
/// builds, a few awkward texts are encoded with it.
pub fn tokenizer_cache(data: &[u8]) {
    let Some(len) = data.get(16..24) else {
        return;
    };
    let len = u64::from_le_bytes(len.try_into().expect("8 bytes"));
    let Some(entry) = cache::decode(data, len) else {
        return;
    };
    if let Ok((fast, _)) = FastEncoder::from_cache(entry, true) {
        for text in TEXTS {
            let _ = fast.encode(text);
            let _ = fast.encode_in_parts(text, 3);
        }
    }
}

/// A finished output directory (`tests/fixtures/fuzz/output`, made by `utk augment`) in which
/// one file — chosen by the first byte — is replaced by the rest of the bytes; then opened the
/// way `verify` and `inspect` open it and read through.
pub fn output_dir(data: &[u8]) {
    let Some((&which, content)) = data.split_first() else {
        return;
    };
    let base = output_fixture();
    let Ok(entries) = std::fs::read_dir(&base) else {
        return;
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    if names.is_empty() {
        return;
    }
    let replaced = &names[which as usize % names.len()];
    let dir = Scratch::new();
    for name in &names {
        let bytes = match name == replaced {
            true => content.to_vec(),
            false => std::fs::read(base.join(name)).unwrap_or_default(),
        };
        dir.write(name, &bytes);
    }
    read_output(&dir.0);
}

/// The committed output the `output_dir` target starts from.
pub fn output_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz/output")
}

fn read_output(dir: &Path) {
    let Ok(out) = OutputReader::open(dir) else {
        return;
    };
    let _ = crate::verify::verify(&out, None, 4, &ProgressBar::hidden());
    for w in 0..out.windows().min(4) {
        let _ = window_view(&out, w);
    }
    let _ = KnotDistances::collect(&out);
}

/// Resolves `paths` as a run would and reads every document (EOD 0, ids up to 1,000).
fn read_all(paths: &[PathBuf], format: InputFormat, skip_bad_lines: bool) {
    let paths: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    let text = TextOptions {
        text_key: "text".into(),
        skip_bad_lines,
    };
    let Ok(input) = Input::resolve(&paths, format, text) else {
        return;
    };
    let counter = Arc::new(AtomicU64::new(0));
    match Reader::new(&input, counter, 0, 1000) {
        Reader::Text(mut docs) => while let Ok(Some(_)) = docs.next_doc() {},
        Reader::Shards(mut stream) => {
            let mut batch = DocBatch::default();
            while let Ok(true) = stream.next_batch(&mut batch, BATCH_TOKENS) {
                batch.ids.clear();
                batch.docs.clear();
            }
        }
    }
}

/// A size from the first two bytes (little-endian), and the rest.
fn split_len(data: &[u8]) -> (usize, &[u8]) {
    match data {
        [a, b, rest @ ..] => (u16::from_le_bytes([*a, *b]) as usize, rest),
        _ => (0, data),
    }
}

/// `len` bytes of small little-endian ids (every second byte zero).
fn ids_bytes(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| if i % 2 == 0 { (i % 251) as u8 } else { 0 })
        .collect()
}

/// A fresh directory under the system's temporary directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("utk-fuzz-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("cannot create a scratch directory for fuzzing");
        Scratch(dir)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).expect("cannot write a scratch file for fuzzing");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
