//! Stage 4: augment each packed window.
//!
//! - [`shape`] decides, while packing, whether a piece is split, into how many chunks, with which
//!   labels, and what that costs (it implements [`crate::pack::Shaper`]);
//! - [`labels`] draws chunk labels that are unique in their window *as token sequences*;
//! - [`chunks`] places the split points inside a piece;
//! - [`arrange`] shuffles the chunks and writes the window's tokens, loss mask and provenance.
//!
//! Everything here is a pure function of the window plan, the configuration and generators derived
//! from `(seed, window)`, so windows are augmented in parallel with identical results.

pub mod arrange;
pub mod chunks;
pub mod labels;
pub mod shape;

pub use arrange::{arrange, arrange_into, Span, Window};
pub use shape::WindowShaper;
