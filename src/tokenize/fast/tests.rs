//! Unit tests of the parts; the differential tests against the crate are in
//! `tests/it/fast_tokenizer.rs`.

use super::bpe::{Bpe, Scratch};
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
            m.merge_scan(&mut a, &mut Scratch::default());
            m.merge_heap(&mut b);
            assert_eq!(a, b, "{word:?}");
        }
    }
    let mut w = vec![97, 97, 97];
    m.merge_scan(&mut w, &mut Scratch::default());
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

/// The byte-level model of the `qwen3-mini` fixture (6,000 of Qwen's merges): runs of spaces
/// merge in several overlapping ways ("  " first, then "    ", "   "), so the order of merges
/// among equal and unequal ranks matters.
fn qwen3_mini() -> &'static Bpe {
    static MODEL: std::sync::OnceLock<Bpe> = std::sync::OnceLock::new();
    MODEL.get_or_init(|| {
        let json = include_str!("../../../tests/fixtures/tokenizers/qwen3-mini/tokenizer.json");
        let parsed = super::load::parse(json).expect("the fixture parses");
        super::load::build(parsed, false)
            .expect("the fixture builds")
            .0
            .bpe
    })
}

/// A word: runs of bytes, mostly from a few common ones (spaces, newlines, letters that merge),
/// some of any byte.
fn word() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
    use proptest::prelude::*;
    let byte = prop_oneof![
        8 => proptest::sample::select(b" \n\tainsterhou".to_vec()),
        1 => any::<u8>(),
    ];
    proptest::collection::vec((byte, 1usize..12), 0..120).prop_map(|runs| {
        let mut w: Vec<u8> = runs
            .into_iter()
            .flat_map(|(b, n)| std::iter::repeat_n(b, n))
            .collect();
        w.truncate(600);
        w
    })
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(400))]

    /// The scan and the tree (through the encoder's path, first ranks from the byte-pair table,
    /// and through `merge_scan`, ranks hashed) merge exactly as the crate's heap does: the lowest
    /// rank first, the leftmost among equals.
    #[test]
    fn merges_equal_the_heap_reference(w in word()) {
        let m = qwen3_mini();
        let ids = m.byte_ids();
        let syms: Vec<u32> = w.iter().map(|&b| ids[b as usize]).collect();
        let mut expected = syms.clone();
        m.merge_heap(&mut expected);
        let mut scanned = syms.clone();
        m.merge_scan(&mut scanned, &mut Scratch::default());
        proptest::prop_assert_eq!(&scanned, &expected);
        proptest::prop_assert_eq!(&m.encode_word(&w), &expected);
    }
}
