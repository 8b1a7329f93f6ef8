//! Byte-level mutations: bit flips, random and "interesting" bytes and integers, inserts,
//! deletes, duplicated ranges, splices with another corpus entry, dictionary tokens of the
//! target's format, and deep nesting (a run of one opening token, hundreds to a hundred
//! thousand times).

use crate::rng::Rng;

/// What a target tells the mutator about its format.
pub struct Hints {
    /// Tokens of the format (keywords, headers, punctuation).
    pub dict: &'static [&'static [u8]],
    /// Opening tokens whose repetition nests (`0x91`, `[`, `( `).
    pub nest: &'static [&'static [u8]],
    /// Inputs are cut to this length.
    pub max_len: usize,
}

const INTERESTING_8: &[u8] =
    &[0, 1, 0x7f, 0x80, 0xff, 0xc0, 0xc1, 0xc4, 0xd9, 0xdc, 0xdd, 0xde, 0xdf, 0x90, 0x9f, 0x80, 0x8f, 0xa0, 0xbf, b'\n', b' ', b'\0'];

const INTERESTING_32: &[u32] = &[
    0,
    1,
    2,
    0x7f,
    0x80,
    0xff,
    0x100,
    0x7fff,
    0x8000,
    0xffff,
    0x1_0000,
    1 << 20,
    (64 << 20) - 1,
    64 << 20,
    (64 << 20) + 1,
    0x7fff_ffff,
    0x8000_0000,
    u32::MAX - 4,
    u32::MAX - 3,
    u32::MAX - 1,
    u32::MAX,
];

const DEPTHS: &[usize] = &[64, 100, 101, 127, 128, 129, 255, 256, 257, 511, 512, 1000, 1023, 1024, 1025, 2000, 10_000, 100_000];

/// Applies one to eight stacked mutations to a copy of `base`.
pub fn mutate(rng: &mut Rng, base: &[u8], corpus: &[Vec<u8>], hints: &Hints) -> Vec<u8> {
    let mut data = base.to_vec();
    let rounds = rng.skewed(8);
    for _ in 0..rounds {
        mutate_once(rng, &mut data, corpus, hints);
    }
    data.truncate(hints.max_len);
    data
}

fn pos(rng: &mut Rng, data: &[u8]) -> usize {
    rng.below(data.len() + 1)
}

fn mutate_once(rng: &mut Rng, data: &mut Vec<u8>, corpus: &[Vec<u8>], hints: &Hints) {
    match rng.below(16) {
        0 if !data.is_empty() => {
            let i = rng.below(data.len());
            data[i] ^= 1 << rng.below(8);
        }
        1 if !data.is_empty() => {
            let i = rng.below(data.len());
            data[i] = rng.byte();
        }
        2 if !data.is_empty() => {
            let i = rng.below(data.len());
            data[i] = *rng.pick(INTERESTING_8);
        }
        3 => {
            // An interesting integer, big- or little-endian, 1, 2 or 4 bytes, over or into the data.
            let v = *rng.pick(INTERESTING_32);
            let bytes = if rng.one_in(2) { v.to_be_bytes() } else { v.to_le_bytes() };
            let width = *rng.pick(&[1usize, 2, 4]);
            let bytes = if rng.one_in(2) { &bytes[4 - width..] } else { &bytes[..width] };
            let at = pos(rng, data);
            if rng.one_in(2) && at + bytes.len() <= data.len() {
                data[at..at + bytes.len()].copy_from_slice(bytes);
            } else {
                data.splice(at..at, bytes.iter().copied());
            }
        }
        4 => {
            let n = rng.skewed(16);
            let at = pos(rng, data);
            let bytes: Vec<u8> = (0..n).map(|_| rng.byte()).collect();
            data.splice(at..at, bytes);
        }
        5 | 6 if !data.is_empty() => {
            let at = rng.below(data.len());
            let n = rng.skewed(data.len() - at);
            data.drain(at..at + n);
        }
        7 if !data.is_empty() => {
            // Duplicate a range somewhere else.
            let at = rng.below(data.len());
            let n = rng.skewed((data.len() - at).min(256));
            let chunk = data[at..at + n].to_vec();
            let to = pos(rng, data);
            data.splice(to..to, chunk);
        }
        8 if !corpus.is_empty() => {
            // Splice: a prefix of this input and a suffix of another.
            let other = rng.pick(corpus);
            let cut = pos(rng, data);
            let from = rng.below(other.len() + 1);
            data.truncate(cut);
            data.extend_from_slice(&other[from..]);
        }
        9 if !corpus.is_empty() => {
            // Insert a piece of another entry.
            let other = rng.pick(corpus);
            if !other.is_empty() {
                let at = rng.below(other.len());
                let n = rng.skewed(other.len() - at);
                let to = pos(rng, data);
                data.splice(to..to, other[at..at + n].iter().copied());
            }
        }
        10..=12 if !hints.dict.is_empty() => {
            let token = *rng.pick(hints.dict);
            let at = pos(rng, data);
            if rng.one_in(3) && at + token.len() <= data.len() {
                data[at..at + token.len()].copy_from_slice(token);
            } else {
                data.splice(at..at, token.iter().copied());
            }
        }
        13 if !hints.nest.is_empty() && rng.one_in(4) => {
            let token = *rng.pick(hints.nest);
            let depth = *rng.pick(DEPTHS);
            let at = pos(rng, data);
            let run: Vec<u8> = token.iter().copied().cycle().take(token.len() * depth).collect();
            data.splice(at..at, run);
        }
        14 if data.len() > 1 => {
            let a = rng.below(data.len());
            let b = rng.below(data.len());
            data.swap(a, b);
        }
        15 => {
            let cut = pos(rng, data);
            data.truncate(cut);
        }
        _ => {
            let at = pos(rng, data);
            data.insert(at, rng.byte());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_stay_within_the_limit_and_are_deterministic() {
        let hints = Hints { dict: &[b"and", b"or"], nest: &[b"( "], max_len: 300 };
        let corpus = vec![b"a and b".to_vec(), b"L@x,y".to_vec()];
        let (mut r1, mut r2) = (Rng::new(3), Rng::new(3));
        for _ in 0..10_000 {
            let a = mutate(&mut r1, &corpus[0], &corpus, &hints);
            let b = mutate(&mut r2, &corpus[0], &corpus, &hints);
            assert_eq!(a, b);
            assert!(a.len() <= 300);
        }
    }
}
