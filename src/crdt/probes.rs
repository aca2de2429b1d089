//! Hostile binaries: counts of 2^28, 2^40 and 2^64 - 1 entries in a few
//! bytes, at every place yrs reserves from a count, plus deep nesting,
//! overlong varints, clock overflows and truncation. Each must be refused
//! with a message that names what was wrong, by the pre-parser and by the
//! public functions, before yrs sees it.

use super::v1_check::{self, Seen};
use super::v1_reader::Malformed;
use super::{AwarenessProblem, UpdateProblem};
use yrs::encoding::write::Write;

const COUNTS: [u64; 3] = [1 << 28, 1 << 40, u64::MAX];

fn var(value: u64) -> Vec<u8> {
    let mut bytes = Vec::new();
    bytes.write_var(value);
    bytes
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// An update of one item of client 7 at clock 0, in root type `t`, with
/// content ref `content_ref` and `content`; then an empty delete set.
fn item_update(content_ref: u8, content: &[u8]) -> Vec<u8> {
    cat(&[&[1, 1, 7, 0, content_ref, 1, 1, b't'], content, &[0]])
}

/// The error of the pre-parser for an update, which must also be what
/// `decode_update` answers.
fn refused_update(bytes: &[u8]) -> Malformed {
    let e = v1_check::update(bytes).expect_err("refused");
    let answer = super::decode_update(bytes.to_vec().into()).expect_err("refused");
    assert_eq!(answer, UpdateProblem::Undecodable(e.to_string()));
    e
}

/// Asserts that `e` refuses `count` and says so.
fn names(e: &Malformed, count: u64) {
    assert!(
        e.to_string().contains(&count.to_string()),
        "{e} should name {count}"
    );
    match e {
        Malformed::TooMany { count: c, .. } | Malformed::TooLarge { value: c, .. } => {
            assert_eq!(*c, count, "{e}")
        }
        other => panic!("{other:?} is not about a count"),
    }
}

#[test]
fn an_8_byte_update_declaring_2_28_clients_names_the_count() {
    let probe = cat(&[&var(1 << 28), &[0, 0, 0]]);
    assert_eq!(probe.len(), 8);
    let e = refused_update(&probe);
    assert_eq!(
        e.to_string(),
        "update declares 268435456 clients but only 3 bytes follow (each takes at least 3)"
    );
    for count in COUNTS {
        names(&refused_update(&cat(&[&var(count), &[0, 0, 0]])), count);
    }
}

#[test]
fn struct_lists_declaring_huge_counts_are_refused() {
    for count in COUNTS {
        let probe = cat(&[&[1], &var(count), &[7, 0, 0, 0]]);
        names(&refused_update(&probe), count);
    }
    let e = refused_update(&cat(&[&[1], &var(1 << 28), &[7, 0, 0, 0]]));
    assert!(
        e.to_string()
            .starts_with("a client's struct list declares 268435456 structs")
    );
}

#[test]
fn any_and_json_contents_declaring_huge_counts_are_refused() {
    for count in COUNTS {
        // Any content, an Any array in it, an Any map in it.
        names(&refused_update(&item_update(8, &var(count))), count);
        let array = cat(&[&[1, 117], &var(count), &[126]]);
        names(&refused_update(&item_update(8, &array)), count);
        let map = cat(&[&[1, 118], &var(count), &[1, b'k', 126]]);
        names(&refused_update(&item_update(8, &map)), count);
        // Nested: an array holding a map holding an array that lies.
        let nested = cat(&[&[1, 117, 1, 118, 1, 1, b'k', 117], &var(count), &[126]]);
        names(&refused_update(&item_update(8, &nested)), count);
        // A subdocument's options.
        let options = cat(&[&[1, b'g', 118], &var(count)]);
        names(&refused_update(&item_update(9, &options)), count);
        // JSON content.
        names(&refused_update(&item_update(2, &var(count))), count);
    }
    let e = refused_update(&item_update(2, &var(1 << 28)));
    assert!(
        e.to_string()
            .starts_with("JSON content declares 268435456 strings")
    );
    let e = refused_update(&item_update(2, &var(u64::from(u32::MAX))));
    assert!(matches!(e, Malformed::TooLarge { bits: 31, .. }), "{e}");
}

#[test]
fn deep_any_nesting_is_refused() {
    let deep = cat(&[&[1], &[117, 1].repeat(100_000), &[126]]);
    let e = refused_update(&item_update(8, &deep));
    assert_eq!(
        e.to_string(),
        "Any value nests arrays and maps deeper than 64 levels"
    );
}

#[test]
fn delete_sets_declaring_huge_counts_are_refused() {
    for count in COUNTS {
        let clients = cat(&[&[0], &var(count), &[7, 0]]);
        names(&refused_update(&clients), count);
        let ranges = cat(&[&[0, 1, 7], &var(count), &[0, 1]]);
        names(&refused_update(&ranges), count);
    }
    let e = refused_update(&cat(&[&[0], &var(1 << 28), &[7, 0]]));
    assert!(
        e.to_string()
            .starts_with("delete set declares 268435456 clients")
    );
    let e = refused_update(&cat(&[&[0, 1, 7], &var(1 << 28), &[0, 1]]));
    assert!(
        e.to_string()
            .starts_with("a delete set client declares 268435456 ranges")
    );
}

#[test]
fn an_8_byte_state_vector_declaring_2_28_entries_names_the_count() {
    let probe = cat(&[&var(1 << 28), &[1, 2, 3]]);
    assert_eq!(probe.len(), 8);
    let e = super::decode_state_vector(&probe).expect_err("refused");
    assert_eq!(
        e.0,
        "state vector declares 268435456 entries but only 3 bytes follow (each takes at least 2)"
    );
    for count in COUNTS {
        let probe = cat(&[&var(count), &[1, 2, 3]]);
        let e = v1_check::state_vector(&probe).expect_err("refused");
        names(&e, count);
        assert_eq!(
            super::decode_state_vector(&probe).expect_err("refused").0,
            e.to_string()
        );
    }
}

#[test]
fn an_awareness_update_declaring_2_28_clients_names_the_count() {
    for count in COUNTS {
        let probe = cat(&[&var(count), &[1, 0, 2, b'{', b'}']]);
        let e = v1_check::awareness(&probe).expect_err("refused");
        names(&e, count);
        assert_eq!(
            super::validate_awareness(&probe, usize::MAX),
            Err(AwarenessProblem::Undecodable(e.to_string()))
        );
    }
    let probe = cat(&[&var(1 << 28), &[1, 0, 2, b'{', b'}']]);
    assert!(
        super::validate_awareness(&probe, usize::MAX)
            .expect_err("refused")
            .to_string()
            .contains("awareness update declares 268435456 clients but only 5 bytes follow")
    );
}

#[test]
fn overlong_varints_clock_overflows_truncation_and_trailing_bytes_are_refused() {
    let mut overlong = vec![0xff; 10];
    overlong.push(0x01);
    assert!(matches!(
        refused_update(&overlong),
        Malformed::VarintOver64 { .. }
    ));
    // A GC struct of 2^32 - 1 clocks at clock 1.
    let gc = cat(&[&[1, 1, 7, 1, 0], &var(u64::from(u32::MAX)), &[0]]);
    assert!(matches!(
        refused_update(&gc),
        Malformed::ClockOverflow { .. }
    ));
    // Two strings of one clock each, the second past u32::MAX.
    let at_end = cat(&[
        &[1, 2, 7],
        &var(u64::from(u32::MAX) - 1),
        &[4, 1, 1, b't', 1, b'a'],
    ]);
    let strings = cat(&[&at_end, &[4, 1, 1, b't', 1, b'b', 0]]);
    assert!(matches!(
        refused_update(&strings),
        Malformed::ClockOverflow { .. }
    ));
    let range = cat(&[&[0, 1, 7, 1], &var(u64::from(u32::MAX)), &[1]]);
    assert!(matches!(
        refused_update(&range),
        Malformed::ClockOverflow { .. }
    ));
    assert!(matches!(
        refused_update(&item_update(4, &[5, b'a'])),
        Malformed::Truncated { .. }
    ));
    assert!(matches!(
        refused_update(&[0, 0, 0]),
        Malformed::Trailing { .. }
    ));
    assert!(matches!(
        refused_update(&[1, 1, 7, 0, 0, 0, 0]),
        Malformed::EmptyStruct { .. }
    ));
    for info in [0x80, 0x8a, 0x10, 0x20, 0x1f] {
        assert!(matches!(
            refused_update(&item_update(info, &[0])),
            Malformed::UnknownTag { .. }
        ));
    }
    // Type ref 7 (weak link, not built into yrs) and 16.
    for type_ref in [7, 16] {
        assert!(matches!(
            refused_update(&item_update(7, &[type_ref])),
            Malformed::UnknownTag { .. }
        ));
    }
    assert!(matches!(
        v1_check::state_vector(&[1, 7, 0x80]),
        Err(Malformed::Truncated { .. })
    ));
    assert!(matches!(
        v1_check::awareness(&[0, 0]),
        Err(Malformed::Trailing { .. })
    ));
}

#[test]
fn the_smallest_valid_binaries_are_accepted() {
    assert_eq!(v1_check::update(&[0, 0]), Ok(Seen::default()));
    assert_eq!(v1_check::state_vector(&[0]), Ok(()));
    assert_eq!(v1_check::awareness(&[0]), Ok(()));
    // Exactly as many entries as the bytes allow.
    assert_eq!(v1_check::state_vector(&[1, 7, 0]), Ok(()));
}
