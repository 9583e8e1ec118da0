//! What the stages tell each other about documents, defined apart from all of them so that the
//! readers (`input`) and the writers (`output`) share it without importing each other.

use serde::{Deserialize, Serialize};

/// One input document's origin and length, as the provenance sidecar records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DocRecord {
    /// Index of the source (file or shard) in the run's input list.
    pub source: u32,
    /// 1-based line of a JSONL source, 0-based row of a parquet file, or the 0-based document
    /// index inside a token shard.
    pub line: u64,
    /// Token ids, EOD included.
    pub tokens: u64,
}

/// Documents as ids, in stream order, in one buffer: document `i`'s ids are the `docs[i].tokens`
/// ids following those of document `i - 1` (one allocation per batch, not one per document).
#[derive(Debug, Default)]
pub struct DocBatch {
    pub ids: Vec<u32>,
    pub docs: Vec<DocRecord>,
    /// Each document's `--upsample-source-key` value (`None`: the line has none), or empty when
    /// no document of the batch has one (the run reads no such field, or no line had it).
    pub fields: Vec<Option<String>>,
}

impl DocBatch {
    /// Each document's origin and ids.
    pub fn iter(&self) -> impl Iterator<Item = (&DocRecord, &[u32])> {
        let mut at = 0;
        self.docs.iter().map(move |d| {
            let ids = &self.ids[at..at + d.tokens as usize];
            at += d.tokens as usize;
            (d, ids)
        })
    }

    /// Document `i`'s source field value, if it has one.
    pub fn field(&self, i: usize) -> Option<&str> {
        self.fields.get(i).and_then(Option::as_deref)
    }

    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }
}

/// Lines skipped as bad (malformed JSON, missing text, …) when the run allows it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct BadLines {
    pub count: u64,
    /// The first few ([`BadLines::MAX_EXAMPLES`]), as `file:line: reason`.
    pub examples: Vec<String>,
}

impl BadLines {
    /// How many skipped lines are quoted in the manifest and summary.
    pub const MAX_EXAMPLES: usize = 10;

    /// Counts one skipped line, quoting it (`example()`) if it is among the first few.
    pub fn add(&mut self, example: impl FnOnce() -> String) {
        self.count += 1;
        if self.examples.len() < Self::MAX_EXAMPLES {
            self.examples.push(example());
        }
    }

    /// Adds `other`'s count, and its examples while there is room.
    pub fn extend(&mut self, other: &BadLines) {
        self.count += other.count;
        let room = Self::MAX_EXAMPLES.saturating_sub(self.examples.len());
        self.examples
            .extend(other.examples.iter().take(room).cloned());
    }
}
