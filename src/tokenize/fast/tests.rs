//! Unit tests of the parts; the differential tests against the crate are in
//! `tests/it/fast_tokenizer.rs`.

use super::bpe::{Bpe, Pairs, Scratch};
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

/// A toy vocabulary made as tiktoken's are: tokens over the first `letters` of `a`–`d`, each new one the
/// concatenation of two earlier ones, with the id after theirs, and the merge list naming every
/// split of each token into two others (in a shuffled order). The merges of the last `front`
/// tokens are moved to the start of the list, as Gemma's whitespace runs are, so merged ids
/// decrease once along the list. Returns the merges as `(left, right, merged)` ids.
fn tiktoken_like(seed: u64, letters: u8, tokens: usize, front: usize) -> Vec<(u32, u32, u32)> {
    let mut state = seed | 1;
    let mut next = move |n: usize| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as usize % n
    };
    let n = usize::from(letters);
    let mut vocab: Vec<Vec<u8>> = (b'a'..b'a' + letters).map(|b| vec![b]).collect();
    let id = |i: usize| {
        if i < n {
            97 + i as u32
        } else {
            (256 - n + i) as u32
        }
    };
    while vocab.len() < n + tokens {
        let t = [
            vocab[next(vocab.len())].clone(),
            vocab[next(vocab.len())].clone(),
        ]
        .concat();
        if t.len() <= 8 && !vocab.contains(&t) {
            vocab.push(t);
        }
    }
    let index: std::collections::HashMap<&[u8], usize> =
        vocab.iter().enumerate().map(|(i, t)| (&t[..], i)).collect();
    let mut groups: Vec<Vec<(u32, u32, u32)>> = (n..vocab.len())
        .map(|t| {
            let mut splits: Vec<(u32, u32, u32)> = (1..vocab[t].len())
                .filter_map(|k| {
                    let (l, r) = vocab[t].split_at(k);
                    Some((id(*index.get(l)?), id(*index.get(r)?), id(t)))
                })
                .collect();
            for i in (1..splits.len()).rev() {
                splits.swap(i, next(i + 1));
            }
            splits
        })
        .collect();
    let tail = groups.split_off(groups.len() - front);
    tail.into_iter().chain(groups).flatten().collect()
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

    /// Packed priorities (merged id and place, in runs) merge exactly as ranks do, on models
    /// where many merges make one token and merged ids decrease along the list: words of bytes,
    /// and sequences of any tokens (which reach states such as `[a, aa, a]`, where two merges
    /// into `aaa` compete and only the ranks decide).
    #[test]
    fn packed_priorities_merge_as_ranks_do(
        seed in proptest::prelude::any::<u64>(),
        letters in 2u8..=4,
        front in 0usize..20,
        words in proptest::collection::vec(proptest::collection::vec(0usize..1000, 0..60), 1..20),
    ) {
        let merges = tiktoken_like(seed, letters, 60, front);
        let mut byte_ids = [0u32; 256];
        for (b, id) in byte_ids.iter_mut().enumerate() {
            *id = b as u32;
        }
        let packed = Bpe::new(byte_ids, merges.iter().copied(), None);
        let ranked = Bpe::with_ranks(byte_ids, &merges);
        proptest::prop_assert!(packed.packed() && !ranked.packed());
        let mut tokens: Vec<u32> = (97..97 + u32::from(letters)).collect();
        tokens.extend(merges.iter().map(|m| m.2));
        for w in words {
            let bytes: Vec<u8> = w.iter().map(|&c| b'a' + (c % 4) as u8 % letters).collect();
            let mut expected: Vec<u32> = bytes.iter().map(|&b| u32::from(b)).collect();
            ranked.merge_heap(&mut expected);
            proptest::prop_assert_eq!(&packed.encode_word(&bytes), &expected);
            proptest::prop_assert_eq!(&ranked.encode_word(&bytes), &expected);
            let syms: Vec<u32> = w.iter().map(|&c| tokens[c % tokens.len()]).collect();
            let (mut expected, mut got) = (syms.clone(), syms);
            ranked.merge_heap(&mut expected);
            packed.merge_scan(&mut got, &mut Scratch::default());
            proptest::prop_assert_eq!(got, expected);
        }
    }
}

/// A pair table as a cache entry keeps it, packed or with ranks, reads back to the same bytes and
/// merges as the table built from the merges; a cut, an unknown kind, a slot count that is no
/// power of two, a table without an empty slot (where looking up an absent pair would never
/// end), or one with a merged id above the merges' is refused.
#[test]
fn a_pair_table_reads_back_as_written() {
    let merges = tiktoken_like(7, 3, 60, 5);
    let mut byte_ids = [0u32; 256];
    for (b, id) in byte_ids.iter_mut().enumerate() {
        *id = b as u32;
    }
    for built in [Pairs::build(&merges), Pairs::ranked(&merges)] {
        let from_merges = Bpe::with_pairs(byte_ids, &merges, None, Some(built));
        let mut bytes = Vec::new();
        from_merges.write_pairs(&mut bytes);
        let max = merges.iter().map(|m| m.2).max().unwrap();
        let read = Pairs::read(&bytes, merges.len(), max).expect("reads back");
        let from_read = Bpe::with_pairs(byte_ids, &merges, None, Some(read));
        let mut again = Vec::new();
        from_read.write_pairs(&mut again);
        assert_eq!(again, bytes);
        for w in [&b"abcabcaabbcc"[..], b"aaaaaaaaaaaaaaab", b"cba", b"a"] {
            assert_eq!(from_read.encode_word(w), from_merges.encode_word(w));
        }
        assert!(Pairs::read(&bytes, merges.len(), max - 1).is_none());
        assert!(Pairs::read(&bytes[..bytes.len() - 1], merges.len(), max).is_none());
        let mut foreign = bytes.clone();
        foreign[0] = 2;
        assert!(Pairs::read(&foreign, merges.len(), max).is_none());
        let mut odd = bytes.clone();
        odd[8] += 1;
        assert!(Pairs::read(&odd, merges.len(), max).is_none());
        let slot = if bytes[0] == 1 { 8 } else { 16 };
        let mut full = bytes.clone();
        for s in full[16..].chunks_exact_mut(slot) {
            s[..8].copy_from_slice(&0u64.to_le_bytes());
        }
        assert!(Pairs::read(&full, merges.len(), max).is_none());
    }
}

/// The fixtures' byte-level models are packed; ids at or above 2^18 - 1 are not.
#[test]
fn which_models_pack() {
    assert!(qwen3_mini().packed());
    assert!(toy(&[(97, 98, 300), (97, 97, 301), (300, 97, 302)]).packed());
    let big = toy(&[(97, 98, (1 << 18) - 1)]);
    assert!(!big.packed());
    let mut w = vec![97, 98];
    big.merge_scan(&mut w, &mut Scratch::default());
    assert_eq!(w, vec![(1 << 18) - 1]);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

    /// A pre-token encodes the same through the per-thread cache, when it misses and then when it
    /// hits (short ones of one to three ids inline in the slot, longer ones through the store),
    /// as merged directly.
    #[test]
    fn cached_encodings_equal_the_merges(words in proptest::collection::vec(
        proptest::collection::vec(proptest::prelude::any::<u8>(), 1..40), 1..30)
    ) {
        let m = qwen3_mini();
        let text: Vec<u8> = words.concat();
        let mut expected = Vec::new();
        for w in &words {
            expected.extend(m.encode_word(w));
        }
        for _ in 0..2 {
            let mut out = Vec::new();
            m.with_cache(|e| {
                let mut start = 0;
                for w in &words {
                    e.encode(&text, start, start + w.len(), &mut out);
                    start += w.len();
                }
            });
            proptest::prop_assert_eq!(&out, &expected);
        }
    }
}

/// Text mixing what the normalization checks skip (ASCII, CJK, precomposed letters) with what
/// they must look at (combining marks, Hangul jamo, singletons such as the Ohm and Ångström
/// signs, compatibility characters), in runs.
fn mixed_text() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    let chars = [
        'a', 'Z', ' ', '\n', '中', '文', '語', 'é', 'Å', '\u{301}', '\u{308}', '\u{1100}',
        '\u{1161}', '\u{11a8}', '\u{2126}', '\u{212b}', 'ﬁ', '①', '가', 'ｱ', '\u{3099}', 'か',
    ];
    proptest::collection::vec((proptest::sample::select(chars.to_vec()), 1usize..6), 0..40)
        .prop_map(|runs| {
            runs.into_iter()
                .flat_map(|(c, n)| std::iter::repeat_n(c, n))
                .collect()
        })
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

    /// `is_nfc` and `is_nfkc` say "certainly normalized" only of text that normalizing leaves
    /// as it is, and say it of ASCII and CJK text, which they skip without decoding it all.
    #[test]
    fn the_normalization_checks_never_skip_a_change(s in mixed_text()) {
        use unicode_normalization_alignments::UnicodeNormalization;
        if super::is_nfc(&s) {
            proptest::prop_assert_eq!(s.nfc().map(|(c, _)| c).collect::<String>(), s.clone());
        }
        if super::is_nfkc(&s) {
            proptest::prop_assert_eq!(s.nfkc().map(|(c, _)| c).collect::<String>(), s.clone());
        }
        let plain: String = s.chars().filter(|c| c.is_ascii() || ('\u{4e00}'..='\u{9fff}').contains(c)).collect();
        proptest::prop_assert!(super::is_nfc(&plain));
        proptest::prop_assert!(super::is_nfkc(&plain));
    }
}

/// Text for the window matcher: runs of the characters its rules tell apart (letters that make
/// contractions, apostrophes, digits, every ASCII white-space character, punctuation, a control
/// character that is none of these) and some non-ASCII ones (letters, the long s of `'ſ`,
/// white space, a number, a mark), long enough to span several windows.
fn window_text() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    let chars = [
        'a', 'Z', 's', 'S', 't', 'r', 'e', 'v', 'l', 'L', 'm', 'd', '\'', '\'', '1', '2', ' ', ' ',
        ' ', '\t', '\n', '\r', '\u{b}', '\u{c}', '.', ',', '/', '(', '\u{1c}', 'é', '中', 'ſ',
        '\u{3000}', '\u{a0}', '\u{85}', '²', '\u{301}',
    ];
    let ascii = proptest::sample::select(
        chars
            .iter()
            .copied()
            .filter(char::is_ascii)
            .collect::<Vec<_>>(),
    );
    let any = proptest::sample::select(chars.to_vec());
    // Mostly ASCII stretches, as in real text, some with non-ASCII characters among them.
    let run =
        prop_oneof![4 => (ascii, 1usize..5), 1 => (any, 1usize..4), 1 => (Just(' '), 60usize..70)];
    proptest::collection::vec(run, 0..200).prop_map(|runs| {
        runs.into_iter()
            .flat_map(|(c, n)| std::iter::repeat_n(c, n))
            .collect()
    })
}

/// The window matchers on the cases their rules single out, at the start, the middle and the
/// edge of a window.
#[test]
fn windows_split_the_corner_cases_as_the_matcher_does() {
    use super::pretok::Pattern;
    let cases = [
        "a's'sx",
        "it'sA",
        "IT'S",
        "don'tS",
        "'lL",
        "'tis",
        "you'Re",
        "a'Ll",
        ".\n/a",
        ".\n/.",
        "x./\n/.y",
        "a 's",
        "\t's",
        "  .",
        " .b",
        "..b",
        "1234567",
        "ABCdef",
        "aB",
        "HTTPServer",
        ".\n\n  a",
        "\n  a",
        " \n\r\n x",
        "a\u{b}b",
        "x\u{1c}y",
        "'s'sx",
        "a'ſx",
        " 's",
        "x.'s",
        "aa's",
        "a\n\nb",
        "  1",
        " 12345",
        "'S'sa",
    ];
    // Contractions at the window's last byte, after a letter that starts a pre-token at byte 1.
    let edge =
        ["c'll", "c's", "c're", "c'llx", "c'sx"].map(|c| format!("1a {}{c}", "b".repeat(59)));
    for case in cases.iter().copied().chain(edge.iter().map(String::as_str)) {
        for at in [0, 30, 60, 62, 63, 64, 66] {
            let text = format!("{}{case}{}", "a".repeat(at), " b".repeat(50));
            for pattern in [
                Pattern::Qwen2,
                Pattern::Cl100k,
                Pattern::O200k,
                Pattern::Tekken,
                Pattern::Gpt2,
            ] {
                let p = PreTokenizer::new(pattern);
                let mut got = vec![];
                p.for_each_range(&text, |a, b| got.push((a, b)));
                assert_eq!(got, p.one_at_a_time(&text), "{pattern:?} {text:?}");
            }
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3000))]

    /// The Qwen2, cl100k, o200k, Tekken and GPT-2 matchers give the same pre-tokens 64 bytes at
    /// a time as one at a time.
    #[test]
    fn windows_split_as_the_matcher_does(s in window_text()) {
        use super::pretok::Pattern;
        for pattern in [Pattern::Qwen2, Pattern::Cl100k, Pattern::O200k, Pattern::Tekken, Pattern::Gpt2] {
            let p = PreTokenizer::new(pattern);
            let mut got = vec![];
            p.for_each_range(&s, |a, b| got.push((a, b)));
            proptest::prop_assert_eq!(got, p.one_at_a_time(&s), "{:?} {:?}", pattern, s);
        }
    }

    /// The vector classifier agrees with the byte-at-a-time one on any bytes.
    #[test]
    fn windows_classify_every_byte_alike(w in proptest::collection::vec(proptest::prelude::any::<u8>(), 64)) {
        let w: [u8; 64] = w.try_into().unwrap();
        proptest::prop_assert_eq!(super::window::classify(&w), super::window::classify_bytes(&w));
    }

    /// The spreads along runs of bits equal spreading one bit at a time.
    #[test]
    fn spreads_follow_runs(seed in proptest::prelude::any::<u64>(), within in proptest::prelude::any::<u64>()) {
        let (mut up, mut down) = (seed & within, seed & within);
        for _ in 0..64 {
            up |= (up << 1) & within;
            down |= (down >> 1) & within;
        }
        proptest::prop_assert_eq!(super::window::spread_up(seed, within), up);
        proptest::prop_assert_eq!(super::window::spread_down(seed, within), down);
    }
}
