//! Times the fast encoder alone, in memory: cold passes (a fresh encoder, so empty caches) and
//! warm ones (the same encoder again), over the documents of JSONL inputs.
//!
//! ```text
//! cargo run --release --example encoder_passes -- TOKENIZER.json ROUNDS INPUT...
//! ```
//! Each round builds the encoder (not timed), encodes every document (cold), then again (warm),
//! and prints both times; the documents are spread over the rayon pool (`RAYON_NUM_THREADS=1`
//! for one thread). On a shared machine, compare the minimum of several rounds, builds
//! alternated: this leaves out reading, parsing and writing, which `utk tokenize` includes.

use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Instant;
use utk::input::{expand_inputs, DocumentReader};
use utk::tokenize::FastEncoder;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        bail!("usage: encoder_passes TOKENIZER.json ROUNDS INPUT...");
    }
    let json =
        std::fs::read_to_string(&args[0]).with_context(|| format!("cannot read {}", args[0]))?;
    let rounds: usize = args[1].parse().context("ROUNDS is a number")?;
    let sources = expand_inputs(&args[2..])?;
    let mut reader = DocumentReader::new(sources, "text", false, Arc::new(AtomicU64::new(0)));
    let mut docs = Vec::new();
    while let Some(d) = reader.next_doc()? {
        docs.push(d.text);
    }
    println!("round\tcold_s\twarm_s\ttokens");
    for round in 0..rounds {
        let fast = match FastEncoder::new(&json, true) {
            Ok((f, _)) => f,
            Err(why) => bail!("the fast encoder does not take this tokenizer: {why}"),
        };
        let pass = || {
            let t = Instant::now();
            let tokens: usize = docs.par_iter().map(|d| fast.encode(d).len()).sum();
            (t.elapsed().as_secs_f64(), tokens)
        };
        let (cold, tokens) = pass();
        let (warm, _) = pass();
        println!("{round}\t{cold:.3}\t{warm:.3}\t{tokens}");
    }
    Ok(())
}
