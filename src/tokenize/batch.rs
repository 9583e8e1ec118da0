//! The one batched encoder: a batch of text documents becomes one [`DocBatch`] of ids, encoded
//! in parallel on the caller's rayon pool (threading stays with the caller), in document order,
//! with every error naming its `file:line`. `augment`, `tokenize` and `verify` all encode here.

use super::Encoder;
use crate::input::TextDoc;
use crate::record::{DocBatch, DocRecord};
use anyhow::{Context, Result};
use rayon::prelude::*;

/// About how much text one task of [`encode_batch`] encodes: consecutive documents up to this
/// much, each task on its own. Split only where rayon chooses, a batch of books became a few
/// long runs of documents, and one thread encoded the last of them while the others waited; one
/// task per document would be thousands of tasks for a batch of short ones.
const TASK_BYTES: usize = 64 << 10;

/// The documents of each task, as ranges of `docs`.
fn tasks(docs: &[TextDoc]) -> Vec<std::ops::Range<usize>> {
    let (mut tasks, mut start, mut bytes) = (Vec::new(), 0, 0);
    for (i, d) in docs.iter().enumerate() {
        bytes += d.text.len();
        if bytes >= TASK_BYTES {
            tasks.push(start..i + 1);
            (start, bytes) = (i + 1, 0);
        }
    }
    if start < docs.len() {
        tasks.push(start..docs.len());
    }
    tasks
}

/// Encodes `docs` (EOD appended to each) into a batch whose id buffer comes from `take` (given
/// the total id count, so a recycled buffer can be reused). `names[i]` names source `i` in errors.
pub fn encode_batch(
    encoder: &Encoder,
    docs: &[TextDoc],
    names: &[String],
    take: impl FnOnce(usize) -> Vec<u32>,
) -> Result<DocBatch> {
    let encoded: Vec<Result<Vec<u32>>> = tasks(docs)
        .into_par_iter()
        .with_max_len(1)
        .flat_map_iter(|r| docs[r].iter().map(|d| encoder.encode_doc(&d.text)))
        .collect();
    let total = encoded.iter().flatten().map(Vec::len).sum();
    let mut batch = DocBatch {
        // A batch of one document (a long one fills a batch by itself) keeps that document's
        // buffer instead of copying it.
        ids: match encoded.len() {
            1 => Vec::new(),
            _ => take(total),
        },
        docs: Vec::with_capacity(docs.len()),
        fields: Vec::new(),
    };
    if docs.iter().any(|d| d.field.is_some()) {
        batch.fields = docs.iter().map(|d| d.field.clone()).collect();
    }
    for (doc, ids) in docs.iter().zip(encoded) {
        let ids = ids.with_context(|| format!("{}:{}", names[doc.source as usize], doc.line))?;
        batch.docs.push(DocRecord {
            source: doc.source,
            line: doc.line,
            tokens: ids.len() as u64,
        });
        if batch.ids.is_empty() && batch.ids.capacity() == 0 {
            batch.ids = ids;
        } else {
            batch.ids.extend_from_slice(&ids);
        }
    }
    Ok(batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(bytes: usize) -> TextDoc {
        TextDoc {
            text: "x".repeat(bytes),
            source: 0,
            line: 0,
            long: None,
            field: None,
        }
    }

    /// The tasks cover the documents in order, each once; a task closes with the document that
    /// takes it to `TASK_BYTES`, so only the last one may hold less.
    #[test]
    fn tasks_cover_the_documents_in_runs_of_about_task_bytes() {
        let sizes = [
            10,
            TASK_BYTES,
            3,
            TASK_BYTES - 3,
            1,
            0,
            5 * TASK_BYTES,
            7,
            8,
        ];
        let docs: Vec<TextDoc> = sizes.iter().map(|&n| doc(n)).collect();
        let got = tasks(&docs);
        assert_eq!(got, vec![0..2, 2..4, 4..7, 7..9]);
        let bytes = |r: &std::ops::Range<usize>| sizes[r.clone()].iter().sum::<usize>();
        for t in &got[..got.len() - 1] {
            assert!(bytes(t) >= TASK_BYTES && bytes(&(t.start..t.end - 1)) < TASK_BYTES);
        }
        assert!(tasks(&[]).is_empty());
    }
}
