//! The provenance sidecar: where every span of every window came from. Fixed-size little-endian
//! records, so numpy reads them with one structured dtype (layout in `docs/provenance.md`).
//!
//! `provenance.spans`, 32 bytes per chunk, in window order then placement order:
//! u64 doc, u64 doc_offset, u32 window, u32 start, u32 len, u16 chunk, u16 chunks.
//! `provenance.docs`, 24 bytes per input document, in stream order:
//! u32 source (index into the manifest's inputs), u32 flags (0), u64 line, u64 tokens (EOD included).

use crate::augment::Span;
use crate::record::DocRecord;
use anyhow::{bail, Result};

pub const SPAN_BYTES: usize = 32;
pub const DOC_BYTES: usize = 24;

pub fn encode_span(s: &Span, out: &mut Vec<u8>) -> Result<()> {
    let window = u32::try_from(s.window)
        .or_else(|_| bail!("window {} exceeds the sidecar's u32", s.window))?;
    out.extend_from_slice(&s.doc.to_le_bytes());
    out.extend_from_slice(&s.doc_offset.to_le_bytes());
    out.extend_from_slice(&window.to_le_bytes());
    out.extend_from_slice(&s.start.to_le_bytes());
    out.extend_from_slice(&s.len.to_le_bytes());
    out.extend_from_slice(&s.chunk.to_le_bytes());
    out.extend_from_slice(&s.chunks.to_le_bytes());
    Ok(())
}

pub fn decode_span(b: &[u8; SPAN_BYTES]) -> Span {
    let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().expect("8"));
    let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().expect("4"));
    let u16_at = |o: usize| u16::from_le_bytes(b[o..o + 2].try_into().expect("2"));
    Span {
        doc: u64_at(0),
        doc_offset: u64_at(8),
        window: u32_at(16) as u64,
        start: u32_at(20),
        len: u32_at(24),
        chunk: u16_at(28),
        chunks: u16_at(30),
    }
}

pub fn encode_doc(d: &DocRecord, out: &mut Vec<u8>) {
    out.extend_from_slice(&d.source.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&d.line.to_le_bytes());
    out.extend_from_slice(&d.tokens.to_le_bytes());
}

pub fn decode_doc(b: &[u8; DOC_BYTES]) -> DocRecord {
    DocRecord {
        source: u32::from_le_bytes(b[0..4].try_into().expect("4")),
        line: u64::from_le_bytes(b[8..16].try_into().expect("8")),
        tokens: u64::from_le_bytes(b[16..24].try_into().expect("8")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let s = Span {
            doc: 7,
            doc_offset: 1 << 40,
            window: 3,
            start: 9,
            len: 100,
            chunk: 2,
            chunks: 3,
        };
        let mut buf = Vec::new();
        encode_span(&s, &mut buf).unwrap();
        assert_eq!(buf.len(), SPAN_BYTES);
        assert_eq!(decode_span(buf.as_slice().try_into().unwrap()), s);
        let d = DocRecord {
            source: 2,
            line: 12345,
            tokens: 77,
        };
        let mut buf = Vec::new();
        encode_doc(&d, &mut buf);
        assert_eq!(buf.len(), DOC_BYTES);
        assert_eq!(decode_doc(buf.as_slice().try_into().unwrap()), d);
    }
}
