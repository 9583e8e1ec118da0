//! Byte layouts that utk both reads and writes, in one place so the readers of stage 1 and the
//! writers of stage 5 agree on them without importing each other:
//!
//! - [`dtype`]: the element types of token and mask arrays (numpy's names, Megatron's codes,
//!   `.npy` descriptors) and the little-endian element encoder and decoders;
//! - [`megatron`]: the Megatron indexed-dataset `.idx` file;
//! - [`npy`]: the `.npy` header;
//! - [`crc_hex`]: a CRC-32C as manifests and `PREFIX.json` write it.
//!
//! Everything here is pure: bytes in, values out (or values in, bytes out), with round-trip tests.

pub mod dtype;
pub mod megatron;
pub mod npy;

pub use dtype::Dtype;

/// A CRC-32C as the manifest and `PREFIX.json` write it: 8 lowercase hex digits.
pub fn crc_hex(crc: u32) -> String {
    format!("{crc:08x}")
}
