//! The input an output is proved against (`verify --input`): its documents read in order as
//! `augment` read them (text re-tokenized with the one batched encoder, token shards read with
//! the one shard stream), loaded ahead in batches and released once checked, so memory holds
//! only the documents that windows have started and not finished.

use super::{Problem, Report};
use crate::input::shards::Tokenization;
use crate::input::{Input, InputFormat, Reader, TextOptions, BATCH_BYTES, BATCH_TOKENS};
use crate::output::reader::OutputReader;
use crate::record::{DocBatch, DocRecord};
use crate::tokenize::batch::encode_batch;
use crate::tokenize::{Backend, Encoder, EncoderOptions};
use anyhow::{bail, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// The input to compare against, read as the manifest says augment read it.
pub struct InputCheck {
    /// The manifest's tokenizer, with its EOD (text is re-tokenized with it; shard ids are
    /// checked against its vocabulary).
    pub encoder: Encoder,
    pub input: Input,
}

/// Input documents by ordinal, loaded ahead and released once complete.
pub(super) struct Reference<'a> {
    check: &'a InputCheck,
    reader: Reader<'a>,
    names: Vec<String>,
    pub docs: HashMap<u64, Vec<u32>>,
    pub loaded: u64,
    done: bool,
}

impl<'a> Reference<'a> {
    pub fn new(check: &'a InputCheck) -> Reference<'a> {
        let eod = check.encoder.eod.id;
        let max_id = check.encoder.max_known_id();
        Reference {
            check,
            reader: Reader::new(&check.input, Arc::new(AtomicU64::new(0)), eod, max_id),
            names: check.input.names(),
            docs: HashMap::new(),
            loaded: 0,
            done: false,
        }
    }

    /// Also reads the field at `path` of every text document (see [`DocBatch::fields`]).
    pub fn read_field(&mut self, path: Vec<String>) {
        if let Reader::Text(r) = &mut self.reader {
            r.read_field(path);
        }
    }

    /// "line 7" of a text source, "document 6" of a shard (the sidecar's `line` field).
    fn place(&self, line: u64) -> String {
        if self.check.input.is_shards() {
            format!("document {line}")
        } else if self.check.input.is_parquet() {
            format!("row {line}")
        } else {
            format!("line {line}")
        }
    }

    /// The next documents in order (empty at the end), in the caller's rayon pool.
    pub(super) fn next_batch(&mut self) -> Result<DocBatch> {
        match &mut self.reader {
            Reader::Text(reader) => {
                let text = reader.next_batch(BATCH_BYTES)?;
                encode_batch(&self.check.encoder, &text, &self.names, Vec::with_capacity)
            }
            Reader::Shards(stream) => {
                let mut batch = DocBatch::default();
                stream.next_batch(&mut batch, BATCH_TOKENS)?;
                Ok(batch)
            }
        }
    }

    /// Loads documents until document `doc` is loaded or the input ends, checking each against
    /// the sidecar's record of it.
    pub fn load_through(
        &mut self,
        doc: u64,
        out: &OutputReader,
        report: &mut Report,
        keep: usize,
    ) -> Result<()> {
        while self.loaded <= doc && !self.done {
            let batch = self.next_batch()?;
            self.done = batch.is_empty();
            for (d, ids) in batch.iter() {
                if let Some(what) = self.mismatch(out, d, ids.len() as u64) {
                    report.add(Problem::general(what), keep);
                }
                self.docs.insert(self.loaded, ids.to_vec());
                self.loaded += 1;
            }
        }
        Ok(())
    }

    /// What is wrong with the input's next document against the sidecar's record, if anything.
    fn mismatch(&self, out: &OutputReader, d: &DocRecord, n: u64) -> Option<String> {
        let ordinal = self.loaded;
        let Some(r) = out.doc(ordinal as usize) else {
            return Some(format!(
                "the input has more documents than the output ({} recorded)",
                out.doc_count()
            ));
        };
        if r.source == d.source && r.line == d.line && r.tokens == n {
            return None;
        }
        Some(format!(
            "document {ordinal}: the input has {n} tokens at source {} {}, the sidecar says {} \
             tokens at source {} {}",
            d.source,
            self.place(d.line),
            r.tokens,
            r.source,
            self.place(r.line)
        ))
    }
}

/// How `verify --input` re-tokenizes text.
#[derive(Clone, Debug)]
pub struct Retokenize {
    /// The implementation; [`Backend::Tokenizers`] checks independently of utk's encoder.
    pub backend: Backend,
    /// The fast encoder's table cache ([`crate::tokenize::fast::cache`]), if any.
    pub cache: Option<PathBuf>,
}

impl InputCheck {
    /// The inputs given to check `out` against, read as the manifest says `augment` read them:
    /// text for an output made from text (re-tokenized by `tokenizer` with `retokenize`'s backend:
    /// the reference `tokenizers` crate, whatever backend augment used, is an independent check),
    /// token shards for an output made from shards. `tokenizer` must be the manifest's file (the
    /// caller checks its sha256).
    pub fn resolve(
        out: &OutputReader,
        paths: &[String],
        format: InputFormat,
        tokenizer: &Path,
        retokenize: Retokenize,
    ) -> Result<InputCheck> {
        let m = &out.manifest;
        let text = TextOptions {
            text_key: m.input.text_key.clone(),
            skip_bad_lines: m.input.skip_bad_lines,
        };
        let mut input = Input::resolve(paths, format, text)?;
        if let Some(p) = &m.part {
            // A part was read from its share of the inputs: select it again, as the run did.
            let part = crate::part::Part::new(p.index, p.count)?;
            input = input.select_part(&part)?.0;
        }
        let text = matches!(m.input.format.as_str(), "jsonl" | "parquet");
        match (text, input.is_shards()) {
            (true, false) | (false, true) => {}
            (false, false) => bail!(
                "{} was made from token shards ({}) but the input is JSONL text: give the \
                 shards it was made from{}",
                out.dir.display(),
                m.input.format,
                if matches!(m.input.format.as_str(), "u16" | "u32") {
                    format!(" (input format {})", m.input.format)
                } else {
                    String::new()
                }
            ),
            (true, true) => bail!(
                "{} was made from JSONL text but the input is token shards ({}): give the \
                 text it was made from",
                out.dir.display(),
                input.names()[0]
            ),
        }
        input.check_sidecars(&Tokenization {
            tokenizer,
            sha256: &m.tokenizer.sha256,
            eod: m.tokenizer.eod.id,
            add_special_tokens: m.tokenizer.add_special_tokens,
            parse_special: m.tokenizer.parse_special,
        })?;
        let options = EncoderOptions {
            eod_token: None,
            eod_id: Some(m.tokenizer.eod.id),
            add_special_tokens: m.tokenizer.add_special_tokens,
            parse_special: m.tokenizer.parse_special,
            // Shards are read, not re-tokenized: the crate only names the EOD and the
            // vocabulary, as before, whatever backend was asked for.
            backend: match input.is_shards() {
                true => Backend::Tokenizers,
                false => retokenize.backend,
            },
            cache: retokenize.cache,
        };
        Ok(InputCheck {
            encoder: Encoder::load(tokenizer, &options)?,
            input,
        })
    }
}
