//! One-edit fuzzy matching of single clinical words (staff typos: "metfromin", "diabetis",
//! "colonscopy"), by symmetric deletion: a word and a term match when they share a string made
//! by deleting at most one letter from each, confirmed by an edit-distance check (substitution,
//! insertion, deletion, adjacent transposition). Ordinary words within one edit of a term are
//! listed in `vocab/fuzzy_stop.txt` and never fuzz-matched.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::fold::boundary_before;
use super::{Finding, Kind, LANG_ALL, LANG_EN, LANG_ES};

const MIN_WORD: usize = 6;
const MAX_WORD: usize = 24;

pub(crate) struct Fuzzy {
    terms: Vec<(Kind, u8, &'static str)>,
    /// Hash of the term or of the term less one letter → term indices.
    index: HashMap<u64, Vec<u32>, BuildHasherDefault<Prehashed>>,
    /// One bit per [`BLOOM_BITS`] slot of the index keys: a clear bit means no key, so most
    /// deletions of an ordinary word cost a bit test rather than a map probe.
    bloom: Vec<u64>,
    /// Hash of the word → stop words with that hash.
    stop: HashMap<u64, Vec<&'static str>, BuildHasherDefault<Prehashed>>,
}

const BLOOM_BITS: u32 = 20;

/// The bloom slot of a key: its top bits (word index, bit mask).
fn bloom_slot(h: u64) -> (usize, u64) {
    let slot = usize::try_from(h >> (64 - BLOOM_BITS)).unwrap_or(0);
    (slot / 64, 1 << (slot % 64))
}

impl Fuzzy {
    pub(crate) fn new(list: &'static str, stop: &'static str) -> Fuzzy {
        let mut terms = Vec::new();
        let mut index: HashMap<u64, Vec<u32>, BuildHasherDefault<Prehashed>> = HashMap::default();
        for line in list.lines() {
            let mut parts = line.splitn(3, ' ');
            let (Some(kind), Some(lang), Some(term)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let Some(kind) = Kind::parse(kind) else {
                continue;
            };
            let lang = match lang {
                "en" => LANG_EN,
                "es" => LANG_ES,
                _ => LANG_ALL,
            };
            let Ok(id) = u32::try_from(terms.len()) else {
                break;
            };
            terms.push((kind, lang, term));
            // Longer terms are more than one edit from any word that is looked up.
            let Some((hashes, n)) = deletion_hashes(term.as_bytes()) else {
                continue;
            };
            for &h in hashes.get(..n).unwrap_or(&[]) {
                let ids = index.entry(h).or_default();
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
        let mut bloom = vec![0u64; (1 << BLOOM_BITS) / 64];
        for &h in index.keys() {
            let (i, bit) = bloom_slot(h);
            if let Some(x) = bloom.get_mut(i) {
                *x |= bit;
            }
        }
        let mut stops: HashMap<u64, Vec<&'static str>, BuildHasherDefault<Prehashed>> =
            HashMap::default();
        for w in stop.lines().filter(|l| !l.is_empty()) {
            stops.entry(whole_hash(w.as_bytes())).or_default().push(w);
        }
        Fuzzy {
            terms,
            index,
            bloom,
            stop: stops,
        }
    }

    /// Adds a finding for each letters-only word of `lower` (not already inside a finding) that is
    /// one edit away from a term of the wanted languages.
    pub(crate) fn scan(&self, lower: &str, langs: u8, out: &mut Vec<Finding>) {
        let bytes = lower.as_bytes();
        let mut found = Vec::new();
        let mut start = None;
        for i in 0..=bytes.len() {
            let letter = bytes.get(i).is_some_and(u8::is_ascii_alphabetic);
            match (letter, start) {
                (true, None) => start = Some(i),
                (false, Some(s)) => {
                    start = None;
                    let word_ok = (MIN_WORD..=MAX_WORD).contains(&(i - s))
                        && boundary_before(bytes, s)
                        && bytes.get(i).is_none_or(|b| !b.is_ascii_alphanumeric());
                    if !word_ok || out.iter().any(|f| f.start < i && s < f.end) {
                        continue;
                    }
                    if let Some(kind) = lower.get(s..i).and_then(|w| self.lookup(w, langs)) {
                        found.push(Finding {
                            kind,
                            start: s,
                            end: i,
                        });
                    }
                }
                _ => {}
            }
        }
        out.extend(found);
    }

    fn lookup(&self, word: &str, langs: u8) -> Option<Kind> {
        let (hashes, n) = deletion_hashes(word.as_bytes())?;
        let hashes = hashes.get(..n).unwrap_or(&[]);
        if hashes
            .first()
            .and_then(|h| self.stop.get(h))
            .is_some_and(|ws| ws.contains(&word))
        {
            return None;
        }
        for &h in hashes {
            let (i, bit) = bloom_slot(h);
            if self.bloom.get(i).is_none_or(|x| x & bit == 0) {
                continue;
            }
            let Some(ids) = self.index.get(&h) else {
                continue;
            };
            for &id in ids {
                let Some(&(kind, lang, term)) =
                    usize::try_from(id).ok().and_then(|i| self.terms.get(i))
                else {
                    continue;
                };
                if lang & langs != 0 && within_one_edit(word.as_bytes(), term.as_bytes()) {
                    return Some(kind);
                }
            }
        }
        None
    }
}

/// The keys are hashes already; hashing them again would only cost time.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

const HASH_BASE: u64 = 0x0100_0000_01b3;

/// The hashes of `b` and of `b` less each byte in turn (in that order; `n` of them), in
/// O(len): a polynomial hash splits as `H(x ++ y) = H(x) * BASE^len(y) + H(y)`. `None` when
/// `b` is longer than one edit from the longest word looked up.
fn deletion_hashes(b: &[u8]) -> Option<([u64; MAX_WORD + 2], usize)> {
    let n = b.len();
    if n > MAX_WORD + 1 {
        return None;
    }
    // prefix[i] = H(b[..i]).
    let mut prefix = [0u64; MAX_WORD + 2];
    for (i, &c) in b.iter().enumerate() {
        let h = prefix.get(i).copied().unwrap_or(0);
        if let Some(p) = prefix.get_mut(i + 1) {
            *p = h.wrapping_mul(HASH_BASE).wrapping_add(u64::from(c));
        }
    }
    let mut out = [0u64; MAX_WORD + 2];
    if let Some(o) = out.first_mut() {
        *o = finish(prefix.get(n).copied().unwrap_or(0), n);
    }
    // Right to left: suffix = H(b[i + 1..]), power = BASE^(n - 1 - i).
    let (mut suffix, mut power) = (0u64, 1u64);
    for (i, &c) in b.iter().enumerate().rev() {
        let h = prefix
            .get(i)
            .copied()
            .unwrap_or(0)
            .wrapping_mul(power)
            .wrapping_add(suffix);
        if let Some(o) = out.get_mut(i + 1) {
            *o = finish(h, n - 1);
        }
        suffix = u64::from(c).wrapping_mul(power).wrapping_add(suffix);
        power = power.wrapping_mul(HASH_BASE);
    }
    Some((out, n + 1))
}

/// The hash of the whole of `b` (the first of [`deletion_hashes`]).
fn whole_hash(b: &[u8]) -> u64 {
    deletion_hashes(b).map_or(0, |(h, _)| h.first().copied().unwrap_or(0))
}

/// Mixes the length in and spreads the bits (splitmix64's finaliser), so the top bits serve
/// the bloom filter.
fn finish(h: u64, len: usize) -> u64 {
    let mut x = h ^ u64::try_from(len).unwrap_or(0).rotate_right(8);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Optimal-string-alignment distance ≤ 1.
fn within_one_edit(a: &[u8], b: &[u8]) -> bool {
    let p = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let (a, b) = (a.get(p..).unwrap_or(&[]), b.get(p..).unwrap_or(&[]));
    match (a.len(), b.len()) {
        (x, y) if x == y => {
            x == 0
                || a.get(1..) == b.get(1..)
                || (x >= 2
                    && a.first() == b.get(1)
                    && a.get(1) == b.first()
                    && a.get(2..) == b.get(2..))
        }
        (x, y) if x + 1 == y => Some(a) == b.get(1..),
        (x, y) if y + 1 == x => a.get(1..) == Some(b),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_edit() {
        for (a, b, ok) in [
            ("metfromin", "metformin", true),
            ("diabetis", "diabetes", true),
            ("colonscopy", "colonoscopy", true),
            ("insulna", "insulina", true),
            ("metformin", "metformin", true),
            ("metfrmn", "metformin", false),
            ("abcdef", "badcef", false),
        ] {
            assert_eq!(within_one_edit(a.as_bytes(), b.as_bytes()), ok, "{a} {b}");
        }
    }

    #[test]
    fn deletion_hashes_are_hashes_of_deletions() {
        let (h, n) = deletion_hashes(b"metformin").unwrap();
        assert_eq!(n, 10);
        assert_eq!(h[0], whole_hash(b"metformin"));
        assert_eq!(h[1], whole_hash(b"etformin"));
        assert_eq!(h[4], whole_hash(b"metormin"));
        assert_eq!(h[9], whole_hash(b"metformi"));
        assert_ne!(h[0], whole_hash(b"metfromin"));
        assert!(deletion_hashes(&[b'a'; MAX_WORD + 2]).is_none());
    }
}
