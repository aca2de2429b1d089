//! Hostile Yjs binaries shared by `tests/allocation.rs` and
//! `tests/api/hostile_input.rs`: a few bytes each that declare 2^28, 2^40
//! or 2^64 - 1 entries at a place where yrs reserves memory for the count
//! before reading the entries, and `Any` values nested 100 000 deep.

// Shared by two test binaries (allocation, api), each using part of it.
#![allow(dead_code)]

use yrs::encoding::write::Write;

/// What a probe pretends to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Update,
    StateVector,
    Awareness,
}

/// One hostile binary: `name` says where it lies, `count` is the number
/// of entries it declares (none for the deep nesting).
#[derive(Debug, Clone)]
pub struct Probe {
    pub name: String,
    pub kind: Kind,
    pub count: Option<u64>,
    pub bytes: Vec<u8>,
}

/// The entry counts the probes declare.
pub const COUNTS: [u64; 3] = [1 << 28, 1 << 40, u64::MAX];

/// lib0 `varUint` of `value`.
pub fn var(value: u64) -> Vec<u8> {
    let mut bytes = Vec::new();
    bytes.write_var(value);
    bytes
}

/// An update of one item of client 7 at clock 0 in root type `t` with
/// content ref `content_ref` and `content`, and an empty delete set.
fn item_update(content_ref: u8, content: &[u8]) -> Vec<u8> {
    [&[1, 1, 7, 0, content_ref, 1, 1, b't'], content, &[0]].concat()
}

/// An update whose `Any` content is arrays nested `levels` deep.
pub fn nested_any(levels: usize) -> Probe {
    let deep = [&[1][..], &[117, 1].repeat(levels), &[126]].concat();
    Probe {
        name: format!("Any arrays nested {levels} deep"),
        kind: Kind::Update,
        count: None,
        bytes: item_update(8, &deep),
    }
}

/// Every probe, each count at each place, and arrays nested 100 000 deep.
#[allow(dead_code)] // tests/api uses `counted` only
pub fn all() -> Vec<Probe> {
    let mut probes = counted();
    probes.push(nested_any(100_000));
    probes
}

/// Every probe that declares a count, each count at each place.
pub fn counted() -> Vec<Probe> {
    let mut probes = Vec::new();
    for count in COUNTS {
        let mut add = |name: String, kind: Kind, bytes: Vec<u8>| {
            probes.push(Probe {
                name,
                kind,
                count: Some(count),
                bytes,
            })
        };
        let n = var(count);
        let cat = |parts: &[&[u8]]| parts.concat();
        add(
            format!("update clients {count}"),
            Kind::Update,
            cat(&[&n, &[0, 0, 0]]),
        );
        add(
            format!("structs of a client {count}"),
            Kind::Update,
            cat(&[&[1], &n, &[7, 0, 0, 0]]),
        );
        add(
            format!("Any content {count}"),
            Kind::Update,
            item_update(8, &n),
        );
        add(
            format!("Any array {count}"),
            Kind::Update,
            item_update(8, &cat(&[&[1, 117], &n, &[126]])),
        );
        add(
            format!("Any object {count}"),
            Kind::Update,
            item_update(8, &cat(&[&[1, 118], &n, &[1, b'k', 126]])),
        );
        add(
            format!("Any array in an object in an array {count}"),
            Kind::Update,
            item_update(8, &cat(&[&[1, 117, 1, 118, 1, 1, b'k', 117], &n, &[126]])),
        );
        add(
            format!("subdocument options {count}"),
            Kind::Update,
            item_update(9, &cat(&[&[1, b'g', 118], &n])),
        );
        add(
            format!("JSON content strings {count}"),
            Kind::Update,
            item_update(2, &n),
        );
        add(
            format!("delete set clients {count}"),
            Kind::Update,
            cat(&[&[0], &n, &[7, 0]]),
        );
        add(
            format!("delete set ranges {count}"),
            Kind::Update,
            cat(&[&[0, 1, 7], &n, &[0, 1]]),
        );
        add(
            format!("state vector entries {count}"),
            Kind::StateVector,
            cat(&[&n, &[1, 2, 3]]),
        );
        add(
            format!("awareness clients {count}"),
            Kind::Awareness,
            cat(&[&n, &[1, 0, 2, b'{', b'}']]),
        );
    }
    probes
}
