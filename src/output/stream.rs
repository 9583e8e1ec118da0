//! `-o -`: windows as JSON lines on a stream (standard output), for shell pipelines that feed a
//! loader or an uploader. One line per window, in order:
//! `{"input_ids": [id,…], "loss_mask": [0|1,…]}`.
//!
//! Nothing is written to disk: a stream has no provenance sidecar and no manifest (the summary,
//! with the counts a manifest would hold, goes to standard error). A reader that closes the pipe
//! early ends the run; [`is_broken_pipe`] tells the caller so, to end quietly.

use super::WindowOutput;
use crate::augment::Window;
use crate::record::DocRecord;
use anyhow::{bail, Context, Result};
use std::io::Write;

/// The output name that means standard output.
pub const STDOUT: &str = "-";

/// Writes windows as JSON lines to `out`.
pub struct JsonLines<W: Write + Send> {
    out: W,
    seq_len: usize,
    line: Vec<u8>,
    windows: u64,
}

impl<W: Write + Send> JsonLines<W> {
    pub fn new(out: W, seq_len: usize) -> Self {
        JsonLines {
            out,
            seq_len,
            line: Vec::new(),
            windows: 0,
        }
    }

    /// Flushes the last lines; returns the destination.
    pub fn finish(mut self) -> Result<W> {
        self.out.flush().context("cannot write the windows")?;
        Ok(self.out)
    }
}

impl<W: Write + Send> WindowOutput for JsonLines<W> {
    fn write_window(&mut self, w: &Window) -> Result<()> {
        if w.tokens.len() != self.seq_len || w.mask.len() != self.seq_len {
            bail!(
                "internal error: a window of {} tokens on a stream of windows of {}",
                w.tokens.len(),
                self.seq_len
            );
        }
        let line = &mut self.line;
        line.clear();
        line.extend_from_slice(b"{\"input_ids\": [");
        push_list(line, w.tokens.iter().copied());
        line.extend_from_slice(b"], \"loss_mask\": [");
        push_list(line, w.mask.iter().map(|&m| m as u32));
        line.extend_from_slice(b"]}\n");
        self.out
            .write_all(line)
            .context("cannot write the windows")?;
        self.windows += 1;
        Ok(())
    }

    /// Documents are not recorded on a stream (there is no provenance sidecar).
    fn write_doc(&mut self, _d: &DocRecord) -> Result<()> {
        Ok(())
    }

    fn windows(&self) -> u64 {
        self.windows
    }
}

/// `v1,v2,…` in decimal.
fn push_list(line: &mut Vec<u8>, values: impl Iterator<Item = u32>) {
    let mut digits = [0u8; 10];
    for (i, mut v) in values.enumerate() {
        if i > 0 {
            line.push(b',');
        }
        let mut at = digits.len();
        loop {
            at -= 1;
            digits[at] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        line.extend_from_slice(&digits[at..]);
    }
}

/// Whether `e` comes from writing to a pipe whose reader has gone.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_one_json_line_per_window() {
        let mut s = JsonLines::new(Vec::new(), 3);
        let w = Window {
            index: 0,
            tokens: vec![0, 4294967295, 10],
            mask: vec![1, 0, 1],
            spans: Vec::new(),
        };
        s.write_window(&w).unwrap();
        s.write_window(&w).unwrap();
        assert_eq!(s.windows(), 2);
        let out = String::from_utf8(s.finish().unwrap()).unwrap();
        let line = r#"{"input_ids": [0,4294967295,10], "loss_mask": [1,0,1]}"#;
        assert_eq!(out, format!("{line}\n{line}\n"));
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["input_ids"][1], 4294967295u64);
        let mut s = JsonLines::new(Vec::new(), 2);
        assert!(s.write_window(&w).is_err());
    }
}
