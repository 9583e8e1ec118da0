//! Compares the fast encoder with the `tokenizers` crate over whole corpora, document by document.
//!
//! ```text
//! cargo run --release --example check_fast_tokenizer -- TOKENIZER.json [--parse-special] INPUT...
//! ```
//! INPUTs are JSONL files (plain, .gz or .zst) with a `text` field, as for `utk augment`. For each
//! input it prints one tab-separated line: input, documents compared, differing documents, crate
//! tokens, fast tokens, then wall and CPU seconds of the crate and of the fast encoder (all cores). A tokenizer the fast
//! encoder does not support prints `fallback` and the reason instead, and that is not a failure:
//! utk then uses the crate. Exit status 1 if any document differs (the first few are shown).

use anyhow::{anyhow, bail, Context, Result};
use rayon::prelude::*;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Instant;
use tokenizers::Tokenizer;
use utk::input::{expand_inputs, DocumentReader};
use utk::tokenize::FastEncoder;

const BATCH_BYTES: usize = 32 << 20;

/// CPU seconds (user + system) this process has used so far (Linux; 0 elsewhere), so timings
/// can be read on a busy machine.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(vec![], |(_, r)| r.split_whitespace().collect());
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn main() -> Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let parse_special = args.iter().any(|a| a == "--parse-special");
    // --fast-only: time the fast encoder alone (no comparison), e.g. under a profiler.
    let fast_only = args.iter().any(|a| a == "--fast-only");
    args.retain(|a| a != "--parse-special" && a != "--fast-only");
    if args.len() < 2 {
        bail!(
            "usage: check_fast_tokenizer TOKENIZER.json [--parse-special] [--fast-only] INPUT..."
        );
    }
    let path = &args[0];
    let json = std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?;
    let mut tok: Tokenizer = json.parse().map_err(|e| anyhow!("{path}: {e}"))?;
    tok.with_padding(None);
    tok.with_truncation(None).map_err(|e| anyhow!("{e}"))?;
    tok.set_encode_special_tokens(!parse_special);
    let fast = match FastEncoder::new(&json, !parse_special) {
        Ok((f, _)) => f,
        Err(why) => {
            println!("fallback\t{why}");
            return Ok(());
        }
    };
    println!("fast\t{}", fast.description());
    println!(
        "input\tdocuments\tdiffering\tcrate_tokens\tfast_tokens\tcrate_s\tfast_s\tcrate_cpu_s\tfast_cpu_s"
    );
    let mut any_diff = false;
    for input in &args[1..] {
        let sources = expand_inputs(std::slice::from_ref(input))?;
        let mut reader = DocumentReader::new(sources, "text", false, Arc::new(AtomicU64::new(0)));
        let (mut docs, mut differing, mut crate_tokens, mut fast_tokens) = (0u64, 0u64, 0, 0);
        let (mut crate_s, mut fast_s, mut crate_cpu, mut fast_cpu) = (0.0, 0.0, 0.0, 0.0);
        loop {
            let mut batch = Vec::new();
            let mut bytes = 0;
            while bytes < BATCH_BYTES {
                match reader.next_doc()? {
                    Some(d) => {
                        bytes += d.text.len();
                        batch.push(d);
                    }
                    None => break,
                }
            }
            if batch.is_empty() {
                break;
            }
            let (t, c) = (Instant::now(), cpu_seconds());
            let want: Vec<Vec<u32>> = batch
                .par_iter()
                .filter(|_| !fast_only)
                .map(|d| {
                    tok.encode_fast(d.text.as_str(), false)
                        .map(|e| e.get_ids().to_vec())
                        .map_err(|e| anyhow!("line {}: {e}", d.line))
                })
                .collect::<Result<_>>()?;
            crate_s += t.elapsed().as_secs_f64();
            crate_cpu += cpu_seconds() - c;
            let (t, c) = (Instant::now(), cpu_seconds());
            let got: Vec<Vec<u32>> = batch.par_iter().map(|d| fast.encode(&d.text)).collect();
            fast_s += t.elapsed().as_secs_f64();
            fast_cpu += cpu_seconds() - c;
            if fast_only {
                docs += batch.len() as u64;
                fast_tokens += got.iter().map(Vec::len).sum::<usize>();
                continue;
            }
            for ((d, w), g) in batch.iter().zip(&want).zip(&got) {
                docs += 1;
                crate_tokens += w.len();
                fast_tokens += g.len();
                if w != g {
                    differing += 1;
                    if differing <= 3 {
                        let at = w.iter().zip(g).take_while(|(a, b)| a == b).count();
                        eprintln!(
                            "DIFFERENT: {input} line {}: first difference at token {at}: crate {:?} fast {:?}",
                            d.line,
                            &w[at..(at + 8).min(w.len())],
                            &g[at..(at + 8).min(g.len())]
                        );
                    }
                }
            }
        }
        any_diff |= differing > 0;
        println!(
            "{input}\t{docs}\t{differing}\t{crate_tokens}\t{fast_tokens}\t{crate_s:.2}\t{fast_s:.2}\t{crate_cpu:.2}\t{fast_cpu:.2}"
        );
    }
    if any_diff {
        std::process::exit(1);
    }
    Ok(())
}
