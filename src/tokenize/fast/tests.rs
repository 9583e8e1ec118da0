//! Unit tests of the parts; the differential tests against the crate are in
//! `tests/it/fast_tokenizer.rs`.

use super::bpe::Bpe;
use super::classes::L;
use super::pretok::{class_flags, cut_points, PreTokenizer};
use unicode_normalization_alignments::char::compose;

/// The NFC argument of [`PreTokenizer::safe_cut`]: no character composes with a following ASCII
/// character, so normalization never reaches across a cut before one.
#[test]
fn nothing_composes_with_a_following_ascii_character() {
    for cp in 0..=0x10ffffu32 {
        let Some(c) = char::from_u32(cp) else {
            continue;
        };
        for a in 0..128u8 {
            assert_eq!(compose(c, a as char), None, "{c:?} + {:?}", a as char);
        }
    }
}

/// The rest of the normalization argument of [`PreTokenizer::safe_cut`]: the ASCII letter after a
/// cut may compose with what follows it, but always into a letter, which is all the proofs use.
#[test]
fn an_ascii_letter_composes_only_into_letters() {
    for a in (b'A'..=b'Z').chain(b'a'..=b'z') {
        for cp in 0..=0x10ffffu32 {
            let Some(c) = char::from_u32(cp) else {
                continue;
            };
            if let Some(r) = compose(a as char, c) {
                assert!(class_flags(r) & L != 0, "{:?} + {c:?} = {r:?}", a as char);
            }
        }
    }
}

/// A toy model: bytes are their own ids, merges are listed as (left, right, merged).
fn toy(merges: &[(u32, u32, u32)]) -> Bpe {
    let mut byte_ids = [0u32; 256];
    for (b, id) in byte_ids.iter_mut().enumerate() {
        *id = b as u32;
    }
    Bpe::new(byte_ids, merges.iter().copied(), None)
}

#[test]
fn scan_and_heap_merge_the_same_way() {
    // a=97 b=98; ab=300, aa=301, aab=302, abab=303, aaaa=304 (rank order as listed).
    let m = toy(&[
        (97, 98, 300),
        (97, 97, 301),
        (301, 98, 302),
        (300, 300, 303),
        (301, 301, 304),
    ]);
    let mut state = 12345u64;
    for len in 2..200 {
        for _ in 0..20 {
            let word: Vec<u32> = (0..len)
                .map(|_| {
                    state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                    97 + ((state >> 33) % 2) as u32
                })
                .collect();
            let mut a = word.clone();
            let mut b = word.clone();
            m.merge_scan(&mut a, &mut Vec::new());
            m.merge_heap(&mut b);
            assert_eq!(a, b, "{word:?}");
        }
    }
    let mut w = vec![97, 97, 97];
    m.merge_scan(&mut w, &mut Vec::new());
    assert_eq!(w, vec![301, 97], "leftmost of equal ranks first");
}

#[test]
fn cuts_are_safe_and_cover_the_text() {
    let text = "Some words.\nAnd more\n lines\n\nHere x\nb".repeat(50);
    let cuts = cut_points(&text, 64);
    assert_eq!(*cuts.last().unwrap(), text.len());
    assert!(cuts.len() > 5);
    for &c in &cuts[..cuts.len() - 1] {
        assert!(PreTokenizer::safe_cut(text.as_bytes(), c), "{c}");
    }
    assert_eq!(cut_points("short", 64), vec![5]);
    // A long stretch without a safe place (4,000 bytes of "x "): cut again after it.
    let lines = "Some words.\nAnd more\n".repeat(50);
    let text = format!("{lines}{}{lines}", "x ".repeat(2000));
    let cuts = cut_points(&text, 64);
    assert!(cuts
        .iter()
        .any(|&c| c > lines.len() + 4000 && c < text.len()));
    for &c in &cuts[..cuts.len() - 1] {
        assert!(PreTokenizer::safe_cut(text.as_bytes(), c), "{c}");
    }
}
