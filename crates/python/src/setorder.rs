//! The iteration order of CPython 3.11's sets, reproduced so that `str({3, 1, 2})` and
//! `list(set(xs))` read as they do in CPython.
//!
//! A set's order is the order of its hash table's slots, which follows from the elements'
//! hashes (CPython's hash of ints, floats and tuples is reproduced; strings are hashed with
//! a random key per CPython process, so any fixed order is one CPython could show), the
//! table size, and the sequence of inserts and removals. This module keeps that slot table
//! beside the set's entries: open addressing with linear probes then perturbed jumps,
//! dummies on removal, resizing at 60% fill, written from the published algorithm.

use crate::obj::Key;

const LINEAR_PROBES: usize = 9;
const PERTURB_SHIFT: u32 = 5;
const MIN_SIZE: usize = 8;
/// The Mersenne prime CPython reduces numeric hashes by.
const MODULUS: u64 = (1 << 61) - 1;

const EMPTY: u32 = 0;
const DUMMY: u32 = 1;

/// CPython's `hash()` of a key, as the bits of a signed 64-bit value.
pub fn py_hash(k: &Key) -> u64 {
    match k {
        Key::Int(i) => int_hash(*i as i128),
        Key::Big(b) => {
            use num_traits::{Signed, ToPrimitive};
            let m = (b.abs() % MODULUS).to_u64().unwrap_or(0) as i128;
            int_hash(if b.is_negative() { -m } else { m })
        }
        Key::Float(bits) => float_hash(f64::from_bits(*bits)),
        Key::Tuple(items) => {
            const P1: u64 = 11400714785074694791;
            const P2: u64 = 14029467366897019727;
            const P5: u64 = 2870177450012600261;
            let mut acc = P5;
            for x in items {
                acc = acc.wrapping_add(py_hash(x).wrapping_mul(P2));
                acc = acc.rotate_left(31);
                acc = acc.wrapping_mul(P1);
            }
            acc = acc.wrapping_add((items.len() as u64) ^ (P5 ^ 3527539));
            if acc == u64::MAX {
                1546275796
            } else {
                acc
            }
        }
        Key::Str(s) => fnv(s.as_bytes()),
        Key::Frozen(items) => items.iter().fold(0x9e37_79b9_7f4a_7c15u64, |h, k| {
            h ^ py_hash(k).rotate_left(17)
        }),
        Key::None => fnv(b"None"),
        Key::Range(a, b, c) => fnv(format!("range{a},{b},{c}").as_bytes()),
        Key::Ident(i) => (*i as u64) >> 4,
    }
}

fn fnv(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for x in b {
        h ^= *x as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    if h == u64::MAX {
        h - 1
    } else {
        h
    }
}

fn int_hash(v: i128) -> u64 {
    let m = (v.unsigned_abs() % MODULUS as u128) as i64;
    let h = if v < 0 { -m } else { m };
    (if h == -1 { -2 } else { h }) as u64
}

fn float_hash(v: f64) -> u64 {
    if v.is_nan() {
        return 0;
    }
    if v.is_infinite() {
        return if v > 0.0 { 314159 } else { (-314159i64) as u64 };
    }
    let (mut m, mut e) = frexp(v.abs());
    let sign: i64 = if v < 0.0 { -1 } else { 1 };
    let mut x: u64 = 0;
    while m != 0.0 {
        x = ((x << 28) & MODULUS) | (x >> (61 - 28));
        m *= 268435456.0;
        e -= 28;
        let y = m as u64;
        m -= y as f64;
        x += y;
        if x >= MODULUS {
            x -= MODULUS;
        }
    }
    let e = if e >= 0 {
        (e % 61) as u32
    } else {
        (61 - 1 - ((-1 - e) % 61)) as u32
    };
    x = ((x << e) & MODULUS) | (x >> (61 - e));
    let h = x as i64 * sign;
    (if h == -1 { -2 } else { h }) as u64
}

/// `v = m * 2**e` with `0.5 <= m < 1` (for finite, positive `v`).
fn frexp(v: f64) -> (f64, i32) {
    if v == 0.0 {
        return (0.0, 0);
    }
    let bits = v.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i32;
    if exp == 0 {
        let (m, e) = frexp(v * 2f64.powi(64));
        return (m, e - 64);
    }
    let m = f64::from_bits((bits & !(0x7ffu64 << 52)) | (1022u64 << 52));
    (m, exp - 1022)
}

/// The slot table of one set: `slots[i]` is EMPTY, DUMMY or an entry's position + 2.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    slots: Vec<u32>,
    hashes: Vec<u64>,
    fill: usize,
    used: usize,
}

impl Layout {
    fn mask(&self) -> usize {
        self.slots.len().max(1) - 1
    }

    fn ensure(&mut self) {
        if self.slots.is_empty() {
            self.slots = vec![EMPTY; MIN_SIZE];
        }
    }

    /// Add entry `pos` (appended by the caller) with hash `h`: CPython's `set_add_entry`.
    pub fn add(&mut self, pos: usize, h: u64) {
        self.ensure();
        self.hashes.push(h);
        let mask = self.mask();
        let mut i = (h as usize) & mask;
        let mut perturb = h as usize;
        let mut freeslot = None;
        loop {
            let probes = if i + LINEAR_PROBES <= mask {
                LINEAR_PROBES
            } else {
                0
            };
            for j in i..=i + probes {
                match self.slots[j] {
                    EMPTY => {
                        match freeslot {
                            Some(f) => self.slots[f] = pos as u32 + 2,
                            None => {
                                self.slots[j] = pos as u32 + 2;
                                self.fill += 1;
                            }
                        }
                        self.used += 1;
                        if freeslot.is_none() && self.fill * 5 >= mask * 3 {
                            let n = if self.used > 50000 {
                                self.used * 2
                            } else {
                                self.used * 4
                            };
                            self.resize(n);
                        }
                        return;
                    }
                    DUMMY if freeslot.is_none() => freeslot = Some(j),
                    _ => {}
                }
            }
            perturb >>= PERTURB_SHIFT;
            i = (i.wrapping_mul(5).wrapping_add(1).wrapping_add(perturb)) & mask;
        }
    }

    /// Insert into a table known to hold no dummies and no equal key (`set_insert_clean`).
    fn insert_clean(slots: &mut [u32], mask: usize, slot_val: u32, h: u64) {
        let mut i = (h as usize) & mask;
        let mut perturb = h as usize;
        loop {
            if slots[i] == EMPTY {
                slots[i] = slot_val;
                return;
            }
            if i + LINEAR_PROBES <= mask {
                if let Some(free) = slots[i + 1..=i + LINEAR_PROBES]
                    .iter_mut()
                    .find(|s| **s == EMPTY)
                {
                    *free = slot_val;
                    return;
                }
            }
            perturb >>= PERTURB_SHIFT;
            i = (i.wrapping_mul(5).wrapping_add(1).wrapping_add(perturb)) & mask;
        }
    }

    /// `set_table_resize(minused)`: a new table, the old entries reinserted in slot order.
    fn resize(&mut self, minused: usize) {
        let mut size = MIN_SIZE;
        while size <= minused {
            size <<= 1;
        }
        let old = std::mem::replace(&mut self.slots, vec![EMPTY; size]);
        let mask = size - 1;
        for s in old {
            if s > DUMMY {
                let h = self.hashes[(s - 2) as usize];
                Self::insert_clean(&mut self.slots, mask, s, h);
            }
        }
        self.fill = self.used;
    }

    /// Entry `pos` was removed (and later entries shifted down by one).
    pub fn remove(&mut self, pos: usize) {
        let target = pos as u32 + 2;
        for s in self.slots.iter_mut() {
            if *s == target {
                *s = DUMMY;
            } else if *s > target {
                *s -= 1;
            }
        }
        if pos < self.hashes.len() {
            self.hashes.remove(pos);
        }
        self.used = self.used.saturating_sub(1);
    }

    /// Before merging `extra` elements of another set or dict: one resize up front, as
    /// CPython's `set_merge` and `set_update` do.
    pub fn reserve(&mut self, extra: usize) {
        self.ensure();
        if (self.fill + extra) * 5 >= self.mask() * 3 {
            self.resize((self.used + extra) * 2);
        }
    }

    /// An empty table presized for `n` elements, as `set_update` does for a dict.
    pub fn presized(n: usize) -> Layout {
        let mut l = Layout::default();
        l.ensure();
        if n * 5 >= (MIN_SIZE - 1) * 3 {
            l.resize(n * 2);
        }
        l
    }

    pub fn clear(&mut self) {
        *self = Layout::default();
    }

    /// Entry positions in iteration order.
    pub fn order(&self) -> Vec<usize> {
        self.slots
            .iter()
            .filter(|s| **s > DUMMY)
            .map(|s| (*s - 2) as usize)
            .collect()
    }

    /// The layout of a new set made from `other`'s elements (in `other`'s order), as
    /// CPython's `set_merge` into an empty set builds it: the same table when the sizes
    /// agree and `other` has no dummies, else a presized table filled by clean inserts.
    pub fn merged_from(other: &Layout, order: &[usize]) -> Layout {
        let n = order.len();
        let hashes: Vec<u64> = order.iter().map(|&p| other.hashes[p]).collect();
        let other_size = other.slots.len().max(MIN_SIZE);
        let size = if n * 5 >= (MIN_SIZE - 1) * 3 {
            let mut size = MIN_SIZE;
            while size <= n * 2 {
                size <<= 1;
            }
            size
        } else {
            MIN_SIZE
        };
        let mut slots = vec![EMPTY; size];
        if size == other_size && other.fill == other.used {
            // Same table size and no dummies: the very same slots.
            let mut new_pos = vec![0u32; other.hashes.len()];
            for (k, &p) in order.iter().enumerate() {
                new_pos[p] = k as u32 + 2;
            }
            for (i, s) in other.slots.iter().enumerate() {
                if *s > DUMMY {
                    slots[i] = new_pos[(*s - 2) as usize];
                }
            }
        } else {
            for (k, h) in hashes.iter().enumerate() {
                Self::insert_clean(&mut slots, size - 1, k as u32 + 2, *h);
            }
        }
        Layout {
            slots,
            hashes,
            fill: n,
            used: n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use num_bigint::BigInt;

    #[test]
    fn hashes_match_cpython() {
        // Values printed by CPython 3.11's hash().
        let f = |x: f64| py_hash(&Key::Float(x.to_bits())) as i64;
        let t = |a: i64, b: i64| py_hash(&Key::Tuple(vec![Key::Int(a), Key::Int(b)])) as i64;
        let big = |e: u32, neg: bool| {
            let b = BigInt::from(2).pow(e);
            py_hash(&Key::Big(if neg { -b } else { b })) as i64
        };
        assert_eq!(f(7.5), 1152921504606846983);
        assert_eq!(f(15.5), 1152921504606846991);
        assert_eq!(f(0.5), 1152921504606846976);
        assert_eq!(t(6, 384), 2070036003472166409);
        assert_eq!(t(15, -27), -4771891366787954212);
        assert_eq!(big(64, false), 8);
        assert_eq!(big(63, false), 4);
        assert_eq!(py_hash(&Key::Int(-1)) as i64, -2);
        assert_eq!(big(63, true), -4);
    }
}
