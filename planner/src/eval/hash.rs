//! Hashable keys: the equality and hash used by grouping, `distinct`, `$in`
//! sets and hash joins.
//!
//! `compare(a, b) == Some(Equal)` implies [`key_eq`]`(a, b)`, and `key_eq`
//! implies equal [`hash_value`] hashes: numbers hash by value across
//! integer, float and decimal, JSON structurally.

use std::cmp::Ordering;
use std::hash::{BuildHasherDefault, Hash, Hasher};

use objectql_query_ast::Value;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde_json::Value as Json;

use super::compare::{cmp_float_exact, decimal_parts, json_number, values_equal};

/// Equality for grouping, `distinct`, `$in` sets and join keys: NULL equals
/// NULL, numbers are equal by value across types (NaN equals NaN), JSON is
/// equal structurally, arrays elementwise; otherwise
/// [`compare`](super::compare::compare) equality.
pub fn key_eq(a: &Value, b: &Value) -> bool {
    use Value as V;
    match (a, b) {
        // The common key types first.
        (V::String(x), V::String(y)) => x == y,
        (V::Int(x), V::Int(y)) => x == y,
        (V::Null, V::Null) => true,
        (V::Null, _) | (_, V::Null) => false,
        (V::Float(x), V::Float(y)) => x == y || (x.is_nan() && y.is_nan()),
        (V::Array(x), V::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| key_eq(p, q))
        }
        _ => values_equal(a, b),
    }
}

/// Whether two rows are equal under [`key_eq`], column by column.
pub fn row_key_eq(a: &[Value], b: &[Value]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(p, q)| key_eq(p, q))
}

/// Canonical numeric key: equal numbers (by [`compare`]) get equal keys.
#[derive(Hash)]
enum NumKey {
    Int(i64),
    Float(u64),
    Decimal(Decimal),
}

fn float_key(f: f64) -> NumKey {
    const LIMIT: f64 = 9_223_372_036_854_775_808.0; // 2^63, exact
    if f.fract() == 0.0 && (-LIMIT..LIMIT).contains(&f) {
        // Integral and in range: the conversion is exact.
        #[allow(clippy::cast_possible_truncation)]
        return NumKey::Int(f as i64);
    }
    if f.is_nan() {
        return NumKey::Float(f64::NAN.to_bits());
    }
    NumKey::Float(f.to_bits())
}

fn decimal_key(d: &Decimal) -> NumKey {
    if d.fract().is_zero()
        && let Some(i) = d.to_i64()
    {
        return NumKey::Int(i);
    }
    if let Some(f) = d.to_f64()
        && cmp_float_exact(f, decimal_parts(d)) == Some(Ordering::Equal)
    {
        return float_key(f);
    }
    NumKey::Decimal(d.normalize())
}

/// Feeds a value into a hasher consistently with [`key_eq`].
pub fn hash_value<H: Hasher>(v: &Value, h: &mut H) {
    use Value as V;
    match v {
        V::Null => h.write_u8(0),
        V::Bool(b) => {
            h.write_u8(1);
            b.hash(h);
        }
        V::Int(i) => {
            h.write_u8(2);
            NumKey::Int(*i).hash(h);
        }
        V::Float(f) => {
            h.write_u8(2);
            float_key(*f).hash(h);
        }
        V::Decimal(d) => {
            h.write_u8(2);
            decimal_key(d).hash(h);
        }
        V::String(s) => {
            h.write_u8(3);
            s.hash(h);
        }
        V::Bytes(b) => {
            h.write_u8(4);
            b.hash(h);
        }
        V::Date(d) => {
            h.write_u8(5);
            d.hash(h);
        }
        V::DateTime(t) => {
            h.write_u8(6);
            t.hash(h);
        }
        V::Time(t) => {
            h.write_u8(7);
            t.hash(h);
        }
        V::Uuid(u) => {
            h.write_u8(8);
            u.as_bytes().hash(h);
        }
        V::Json(j) => {
            h.write_u8(9);
            hash_json(j, h);
        }
        V::Array(items) => {
            h.write_u8(10);
            h.write_usize(items.len());
            for item in items {
                hash_value(item, h);
            }
        }
        _ => h.write_u8(11),
    }
}

fn hash_json<H: Hasher>(j: &Json, h: &mut H) {
    match j {
        Json::Null => h.write_u8(0),
        Json::Bool(b) => {
            h.write_u8(1);
            b.hash(h);
        }
        Json::Number(n) => {
            h.write_u8(2);
            hash_value(&json_number(n), h);
        }
        Json::String(s) => {
            h.write_u8(3);
            s.hash(h);
        }
        Json::Array(items) => {
            h.write_u8(4);
            h.write_usize(items.len());
            for item in items {
                hash_json(item, h);
            }
        }
        Json::Object(m) => {
            // Order-independent: combine per-entry hashes commutatively.
            h.write_u8(5);
            h.write_usize(m.len());
            let mut acc: u64 = 0;
            for (k, v) in m {
                let mut eh = FxHasher::default();
                k.hash(&mut eh);
                hash_json(v, &mut eh);
                acc = acc.wrapping_add(eh.finish());
            }
            h.write_u64(acc);
        }
    }
}

/// Hashes a row of key values with [`FxHasher`].
pub fn hash_row<'v, I: IntoIterator<Item = &'v Value>>(values: I) -> u64 {
    let mut h = FxHasher::default();
    for v in values {
        hash_value(v, &mut h);
    }
    h.finish()
}

/// A value usable as a `HashMap`/`HashSet` key, with [`key_eq`] equality.
///
/// `T` is `Value`, `&Value`, or anything that borrows a value.
#[derive(Debug, Clone)]
pub struct ValueKey<T>(pub T);

impl<T: std::borrow::Borrow<Value>> PartialEq for ValueKey<T> {
    fn eq(&self, other: &Self) -> bool {
        key_eq(self.0.borrow(), other.0.borrow())
    }
}

impl<T: std::borrow::Borrow<Value>> Eq for ValueKey<T> {}

impl<T: std::borrow::Borrow<Value>> Hash for ValueKey<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_value(self.0.borrow(), state);
    }
}

/// A row (a slice of values) usable as a hash key, with [`row_key_eq`] equality.
#[derive(Debug, Clone)]
pub struct RowKey<T>(pub T);

impl<T: AsRef<[Value]>> PartialEq for RowKey<T> {
    fn eq(&self, other: &Self) -> bool {
        row_key_eq(self.0.as_ref(), other.0.as_ref())
    }
}

impl<T: AsRef<[Value]>> Eq for RowKey<T> {}

impl<T: AsRef<[Value]>> Hash for RowKey<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        for v in self.0.as_ref() {
            hash_value(v, state);
        }
    }
}

/// A small, fast, non-cryptographic hasher (the rustc "Fx" hash). Keys here
/// come from stored data, not from an adversary choosing collisions.
#[derive(Debug, Default, Clone, Copy)]
pub struct FxHasher {
    hash: u64,
}

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(FX_SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0_u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0_u8; 8];
            for (d, s) in w.iter_mut().zip(rest) {
                *d = *s;
            }
            self.add(u64::from_le_bytes(w));
        }
        self.add(u64::try_from(bytes.len()).unwrap_or(u64::MAX));
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(u64::try_from(i).unwrap_or(u64::MAX));
    }

    #[inline]
    fn finish(&self) -> u64 {
        // Final avalanche so the low bits (used by hash tables) mix well.
        let mut x = self.hash;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x
    }
}

/// `BuildHasher` for [`FxHasher`].
pub type FxBuildHasher = BuildHasherDefault<FxHasher>;
