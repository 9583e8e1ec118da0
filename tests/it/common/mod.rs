//! Helpers shared by the integration tests: fixture paths, running the built binary, and an
//! independent re-encoding of the fixture documents with the `tokenizers` crate.
#![allow(dead_code)]

pub mod check;
pub mod lib_run;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// `augment` settings that together cover every mode: orders, backtracing, chunkings, methods,
/// tail policies, 32-bit ids, mapped special tokens, tiny windows.
pub const MODES: &[&[&str]] = &[
    &["-L", "2048"],
    &["-L", "1000", "--order", "shuffle"],
    &[
        "-L",
        "3000",
        "--no-backtrace",
        "--chunks",
        "2:0.2,3:0.3,5:0.5",
    ],
    &["-L", "3000", "--no-backtrace", "--order", "shuffle"],
    &["-L", "4096", "--chunking", "fixed", "--chunk-tokens", "200"],
    &[
        "-L",
        "777",
        "--chunking",
        "equal",
        "--split-prob",
        "1",
        "--chunks",
        "2:1,4:1,7:1",
        "--min-chunk-tokens",
        "5",
    ],
    &["-L", "1500", "--method", "plain"],
    &["-L", "64", "--label-len", "3", "--min-chunk-tokens", "4"],
    &["-L", "3000", "--tail", "drop"],
    &["-L", "2k", "--special-base", "70000"],
    &["-L", "2k", "--special-token", "cl=<|vision_pad|>"],
];

pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

pub fn qwen() -> PathBuf {
    fixture("tokenizers/qwen3-mini/tokenizer.json")
}

pub fn minilm() -> PathBuf {
    fixture("tokenizers/minilm/tokenizer.json")
}

pub fn docs() -> PathBuf {
    fixture("docs.jsonl")
}

/// The result of one run of the binary, with everything needed to explain a failure.
pub struct Run {
    pub cmd: String,
    pub out: Output,
}

impl Run {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }
    pub fn explain(&self) -> String {
        format!(
            "command: {}\nstatus: {}\nstdout:\n{}\nstderr:\n{}",
            self.cmd,
            self.out.status,
            self.stdout(),
            self.stderr()
        )
    }
    /// Asserts success and returns self.
    pub fn ok(self) -> Self {
        assert!(
            self.out.status.success(),
            "expected success\n{}",
            self.explain()
        );
        self
    }
    /// Asserts failure with a stderr containing every `needle`, and no panic.
    pub fn fails_with(self, needles: &[&str]) -> Self {
        let err = self.stderr();
        assert!(
            !self.out.status.success(),
            "expected failure\n{}",
            self.explain()
        );
        assert!(!err.contains("panicked"), "panic\n{}", self.explain());
        for n in needles {
            assert!(err.contains(n), "stderr lacks {n:?}\n{}", self.explain());
        }
        self
    }
}

/// The manifest of the output directory `dir`, as JSON.
pub fn manifest(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap()
}

/// The `utk` binary, its tokenizer cache in the test build's temporary directory (never the
/// user's): most runs then read the fixtures' tables from it, as a user's second run does.
pub fn utk_command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_utk"));
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("tokenizer-cache");
    cmd.env("UTK_TOKENIZER_CACHE", cache);
    cmd
}

/// Runs `utk ARGS` with optional standard input.
pub fn utk(args: &[&str], stdin: Option<&[u8]>) -> Run {
    let mut cmd = utk_command();
    cmd.args(args).stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn utk");
    // Standard input is fed from its own thread while this one collects the output, so a child
    // that fills its stdout pipe before reading all its input cannot deadlock the test, and a
    // child that exits (or refuses its arguments) without reading its input is a result to check,
    // not a broken-pipe panic here.
    let feeder = stdin.map(|input| {
        let input = input.to_vec();
        let mut si = child.stdin.take().expect("stdin");
        std::thread::spawn(move || {
            use std::io::Write;
            match si.write_all(&input) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    panic!("write stdin: {e}")
                }
                _ => {}
            }
        })
    });
    let out = child.wait_with_output().expect("wait utk");
    if let Some(feeder) = feeder {
        feeder.join().expect("stdin feeder");
    }
    Run {
        cmd: format!("utk {}", args.join(" ")),
        out,
    }
}

/// `utk augment INPUTS -t TOKENIZER -o OUT EXTRA…`, asserting success.
pub fn augment(inputs: &[&Path], tokenizer: &Path, out: &Path, extra: &[&str]) -> Run {
    let mut args: Vec<String> = vec!["augment".into()];
    args.extend(inputs.iter().map(|p| p.display().to_string()));
    args.extend([
        "-t".into(),
        tokenizer.display().to_string(),
        "-o".into(),
        out.display().to_string(),
    ]);
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    utk(&refs, None).ok()
}

/// The fixture documents' texts, in order (blank lines skipped).
pub fn doc_texts(path: &Path, key: &str) -> Vec<String> {
    std::fs::read_to_string(path)
        .expect("read docs")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json");
            v[key].as_str().expect("text").to_string()
        })
        .collect()
}

/// Encodes like utk should: no post-processor specials, special-token spellings as text, EOD last.
pub fn reference_ids(tokenizer: &Path, texts: &[String], eod: u32) -> Vec<Vec<u32>> {
    let mut tok = tokenizers::Tokenizer::from_file(tokenizer).expect("tokenizer");
    tok.with_padding(None);
    tok.with_truncation(None).expect("no truncation");
    tok.set_encode_special_tokens(true);
    texts
        .iter()
        .map(|t| {
            let mut ids = tok
                .encode(t.as_str(), false)
                .expect("encode")
                .get_ids()
                .to_vec();
            ids.push(eod);
            ids
        })
        .collect()
}
