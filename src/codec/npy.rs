//! The `.npy` header (numpy's format, versions 1.0 to 3.0).
//!
//! A `.npy` file is the magic `\x93NUMPY`, the version bytes `1 0`, a little-endian u16 header
//! length, then a Python dict literal `{'descr': '<u2', 'fortran_order': False, 'shape': (W, L), }`
//! padded with spaces and ended by `\n` so that the data starts at a multiple of 64 bytes, then the
//! array in C order. [`npy_header`] writes exactly the bytes `np.save` writes (checked against
//! numpy 2.4), including the spare spaces numpy leaves so that the first dimension can grow in
//! place: the header's length does not depend on the first dimension, which lets a writer put a
//! placeholder first and the real row count last. [`parse_npy_header`] reads any version's header;
//! token shards (`input`) and utk's own `.npy` outputs (`output::reader`) check what they need.

use super::Dtype;
use anyhow::{bail, Context, Result};

pub const MAGIC: &[u8; 6] = b"\x93NUMPY";
/// numpy aligns the start of the data to this many bytes.
const ALIGN: usize = 64;
/// numpy leaves room for a first dimension of this many digits (`GROWTH_AXIS_MAX_DIGITS`).
const GROWTH_DIGITS: usize = 21;

/// The header of a C-order `.npy` file of `dtype` and `shape`, byte for byte as numpy writes it.
pub fn npy_header(dtype: Dtype, shape: &[u64]) -> Vec<u8> {
    let dims = match shape {
        [] => "()".to_string(),
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {dims}, }}",
        dtype.npy_descr()
    );
    if let Some(first) = shape.first() {
        let digits = first.to_string().len();
        dict.push_str(&" ".repeat(GROWTH_DIGITS.saturating_sub(digits)));
    }
    // Spaces, then the newline, up to the next multiple of 64 (a whole 64 if already aligned).
    let unpadded = MAGIC.len() + 2 + 2 + dict.len() + 1;
    let pad = ALIGN - unpadded % ALIGN;
    dict.push_str(&" ".repeat(pad));
    dict.push('\n');
    let mut out = Vec::with_capacity(unpadded + pad);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out
}

/// What a `.npy` header says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NpyHeader {
    pub dtype: Dtype,
    pub fortran_order: bool,
    pub shape: Vec<u64>,
    /// Where the data starts.
    pub data_offset: usize,
}

/// Parses the header at the start of `bytes` (versions 1.0, 2.0 and 3.0). The caller checks the
/// dtype, order and shape it needs.
pub fn parse_npy_header(bytes: &[u8]) -> Result<NpyHeader> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        bail!("not a .npy file (no \\x93NUMPY magic)");
    }
    let (len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes")) as usize,
            12,
        ),
        v => bail!("unsupported .npy format version {v}.{}", bytes[7]),
    };
    let text = bytes
        .get(start..start + len)
        .context("the .npy header is truncated")?;
    let text = std::str::from_utf8(text).context("the .npy header is not text")?;
    Ok(NpyHeader {
        dtype: descr(text)?,
        fortran_order: !field(text, "fortran_order")?.starts_with("False"),
        shape: shape(text)?,
        data_offset: start + len,
    })
}

/// The text after `'key':` in the header's dict literal.
fn field<'t>(header: &'t str, key: &str) -> Result<&'t str> {
    let at = header
        .find(&format!("'{key}':"))
        .with_context(|| format!("the .npy header has no '{key}'"))?;
    Ok(header[at + key.len() + 3..].trim_start())
}

fn descr(header: &str) -> Result<Dtype> {
    let descr = field(header, "descr")?
        .strip_prefix('\'')
        .and_then(|d| d.split('\'').next())
        .context("the .npy header's 'descr' is not a simple dtype string")?;
    Dtype::from_npy_descr(descr).with_context(|| {
        format!(
            ".npy dtype {descr:?} is not supported (little-endian integers, bool and floats are)"
        )
    })
}

fn shape(header: &str) -> Result<Vec<u64>> {
    let shape = field(header, "shape")?;
    let inner = shape
        .strip_prefix('(')
        .and_then(|s| s.split(')').next())
        .context("the .npy header's 'shape' is not a tuple")?;
    inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches('L').parse::<u64>())
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("bad .npy shape ({inner})"))
}
#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes numpy 2.4 wrote with `np.save` (and `write_array_header_1_0` for the huge shape).
    fn numpy_wrote(dict: &str) -> Vec<u8> {
        let mut v = b"\x93NUMPY\x01\x00\x76\x00".to_vec();
        v.extend_from_slice(dict.as_bytes());
        v.extend(std::iter::repeat_n(b' ', 128 - 1 - v.len()));
        v.push(b'\n');
        v
    }

    #[test]
    fn headers_equal_the_bytes_numpy_writes() {
        for (dtype, shape, dict) in [
            (
                Dtype::Uint16,
                &[3u64, 4][..],
                "{'descr': '<u2', 'fortran_order': False, 'shape': (3, 4), }",
            ),
            (
                Dtype::Uint32,
                &[29, 8192],
                "{'descr': '<u4', 'fortran_order': False, 'shape': (29, 8192), }",
            ),
            (
                Dtype::Uint8,
                &[0, 5],
                "{'descr': '|u1', 'fortran_order': False, 'shape': (0, 5), }",
            ),
            (
                Dtype::Bool,
                &[7],
                "{'descr': '|b1', 'fortran_order': False, 'shape': (7,), }",
            ),
            (
                Dtype::Uint16,
                &[123456789012, 2],
                "{'descr': '<u2', 'fortran_order': False, 'shape': (123456789012, 2), }",
            ),
        ] {
            let h = npy_header(dtype, shape);
            assert_eq!(h, numpy_wrote(dict), "{dict}");
            assert_eq!(h.len() % 64, 0);
            let back = parse_npy_header(&h).unwrap();
            assert_eq!((back.dtype, &back.shape[..]), (dtype, shape));
            assert_eq!(back.data_offset, 128);
        }
    }

    #[test]
    fn header_length_does_not_depend_on_the_row_count() {
        for l in [1u64, 64, 131_072, 1 << 20] {
            let base = npy_header(Dtype::Uint16, &[0, l]).len();
            for w in [1u64, 9, 10, 99_999, u32::MAX as u64, 10u64.pow(15)] {
                assert_eq!(npy_header(Dtype::Uint16, &[w, l]).len(), base);
            }
        }
    }

    #[test]
    fn parse_rejects_damage() {
        let h = npy_header(Dtype::Uint16, &[2, 3]);
        assert!(parse_npy_header(&h[..20]).is_err());
        let mut bad = h.clone();
        bad[0] = b'X';
        assert!(parse_npy_header(&bad).is_err());
        // Same length replacements inside the dict: Fortran order, then a float dtype.
        let swap = |from: &[u8], to: &[u8]| {
            let at = h.windows(from.len()).position(|w| w == from).unwrap();
            let mut b = h.clone();
            b[at..at + to.len()].copy_from_slice(to);
            b
        };
        assert!(
            parse_npy_header(&swap(b"False", b"True "))
                .unwrap()
                .fortran_order
        );
        assert!(parse_npy_header(&swap(b"<u2", b">f4")).is_err());
        assert_eq!(
            parse_npy_header(&swap(b"<u2", b"<f4")).unwrap().dtype,
            Dtype::Float32
        );
        assert!(parse_npy_header(&h).is_ok());
    }
}
