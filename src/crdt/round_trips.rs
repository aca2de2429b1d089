//! The pre-parser accepts what yrs writes: incremental updates and full
//! states (`encode_state_as_update_v1`) of documents with text,
//! formatting, embeds, maps holding every `Any` type, nested types, XML,
//! subdocuments, deletions, GC'd content and pending content (skip
//! structs), their state vectors, and awareness updates. The few contents
//! yrs decodes but never writes (JSON, binary, XML hooks, undefined types)
//! are written by hand in the form yrs reads.

use std::collections::HashMap;
use std::sync::Arc;

use yrs::encoding::write::Write;
use yrs::sync::AwarenessUpdate;
use yrs::sync::awareness::AwarenessUpdateEntry;
use yrs::types::Attrs;
use yrs::types::xml::XmlIn;
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{
    Any, Array, ArrayPrelim, ClientID, Doc, GetString, Map, MapPrelim, ReadTxn, StateVector, Text,
    TextPrelim, Transact, Update, Xml, XmlElementPrelim, XmlFragment, XmlFragmentPrelim,
    XmlTextPrelim,
};

use super::v1_check::{self, Seen};

/// What the pre-parser saw in `bytes`, which it and yrs both accept.
fn accepted(bytes: &[u8]) -> Seen {
    let seen = v1_check::update(bytes).unwrap_or_else(|e| panic!("refused {bytes:?}: {e}"));
    Update::decode_v1(bytes).expect("yrs decodes it");
    seen
}

/// The updates, then the full state and the state vector of `doc`.
fn binaries(doc: &Doc, mut updates: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let txn = doc.transact();
    updates.push(txn.encode_state_as_update_v1(&StateVector::default()));
    v1_check::state_vector(&txn.state_vector().encode_v1()).expect("state vector accepted");
    updates
}

/// Every binary of every sample document below.
fn samples() -> Vec<Vec<u8>> {
    [text_doc(), map_doc(), xml_doc(), pending_doc()].concat()
}

fn union(into: &mut Seen, other: Seen) {
    into.structs |= other.structs;
    into.type_refs |= other.type_refs;
    into.any_tags |= other.any_tags;
}

fn bits(kinds: &[u8]) -> u16 {
    kinds.iter().fold(0, |bits, kind| bits | 1 << kind)
}

/// Text with formatting attributes, an embed, and deletions.
fn text_doc() -> Vec<Vec<u8>> {
    let doc = Doc::with_client_id(1);
    let text = doc.get_or_insert_text("text");
    let mut updates = Vec::new();
    let mut txn = doc.transact_mut();
    text.insert(&mut txn, 0, "hello wörld 👋");
    updates.push(txn.encode_update_v1());
    drop(txn);
    let mut txn = doc.transact_mut();
    let bold: Attrs = HashMap::from([(Arc::from("bold"), Any::Bool(true))]);
    text.insert_with_attributes(&mut txn, 5, " big", bold);
    let color: Attrs = HashMap::from([(Arc::from("color"), Any::from("#f00"))]);
    text.format(&mut txn, 0, 3, color);
    let image = HashMap::from([("src".to_owned(), Any::from("a.png"))]);
    text.insert_embed(&mut txn, 0, Any::from(image));
    updates.push(txn.encode_update_v1());
    drop(txn);
    let mut txn = doc.transact_mut();
    text.remove_range(&mut txn, 1, 4);
    updates.push(txn.encode_update_v1());
    drop(txn);
    binaries(&doc, updates)
}

/// A map holding every `Any` type, nested maps, arrays and text, a
/// subdocument; then a nested array is deleted, which GCs its content.
fn map_doc() -> Vec<Vec<u8>> {
    let doc = Doc::with_client_id(u64::from(u32::MAX) + 5);
    let map = doc.get_or_insert_map("map");
    let mut updates = Vec::new();
    let mut txn = doc.transact_mut();
    let values = [
        Any::Undefined,
        Any::Null,
        Any::Bool(true),
        Any::Bool(false),
        Any::from(-12i64),
        Any::from(i64::MIN + 1),
        Any::from(1i64 << 40),
        Any::from(0.25),
        Any::from(0.1),
        Any::from("ünïcode"),
        Any::Buffer(Arc::from(&[0u8, 255, 7][..])),
        Any::from(vec![Any::from(1i64), Any::from(vec![Any::Null])]),
        Any::from(HashMap::from([(
            "inner".to_owned(),
            Any::from(HashMap::from([("x".to_owned(), Any::from(1.5))])),
        )])),
    ];
    for (i, value) in values.into_iter().enumerate() {
        map.insert(&mut txn, format!("k{i}"), value);
    }
    let nested = map.insert(&mut txn, "nested", MapPrelim::default());
    nested.insert(
        &mut txn,
        "list",
        ArrayPrelim::from([Any::from(1i64), Any::from("two")]),
    );
    nested.insert(&mut txn, "note", TextPrelim::new("nested text"));
    map.insert(&mut txn, "sub", Doc::new());
    let doomed = map.insert(&mut txn, "doomed", ArrayPrelim::default());
    doomed.insert(&mut txn, 0, MapPrelim::from([("deep", Any::from(3i64))]));
    doomed.push_back(&mut txn, "gone soon");
    updates.push(txn.encode_update_v1());
    drop(txn);
    let mut txn = doc.transact_mut();
    map.insert(&mut txn, "k0", "overwritten");
    map.remove(&mut txn, "doomed");
    updates.push(txn.encode_update_v1());
    drop(txn);
    binaries(&doc, updates)
}

/// An XML fragment with elements, attributes, text and a nested fragment.
fn xml_doc() -> Vec<Vec<u8>> {
    let doc = Doc::with_client_id(3);
    let xml = doc.get_or_insert_xml_fragment("xml");
    let mut txn = doc.transact_mut();
    let mut paragraph = XmlElementPrelim::new("p", [XmlTextPrelim::new("hello").into()]);
    paragraph
        .attributes
        .insert(Arc::from("class"), "intro".to_owned());
    let element = xml.insert(&mut txn, 0, paragraph);
    element.insert_attribute(&mut txn, "id", "first");
    let inner = XmlFragmentPrelim::new::<_, ()>([XmlElementPrelim::empty("br").into()]);
    element.insert(&mut txn, 1, XmlIn::from(inner));
    let update = txn.encode_update_v1();
    drop(txn);
    binaries(&doc, vec![update])
}

/// A document with content it cannot integrate yet: its full state holds
/// a skip struct where the missing update goes, and a pending deletion.
fn pending_doc() -> Vec<Vec<u8>> {
    let source = Doc::with_client_id(9);
    let text = source.get_or_insert_text("t");
    let mut updates = Vec::new();
    for chunk in ["a", "b", "c"] {
        let mut txn = source.transact_mut();
        text.push(&mut txn, chunk);
        updates.push(txn.encode_update_v1());
    }
    let mut txn = source.transact_mut();
    text.remove_range(&mut txn, 1, 1);
    updates.push(txn.encode_update_v1());
    drop(txn);

    let doc = Doc::with_client_id(10);
    let mut txn = doc.transact_mut();
    for update in [&updates[0], &updates[2], &updates[3]] {
        let update = Update::decode_v1(update).expect("decodes");
        txn.apply_update(update).expect("applies");
    }
    drop(txn);
    assert!(
        doc.transact().has_missing_updates(),
        "the second update is missing"
    );
    binaries(&doc, updates)
}

#[test]
fn updates_and_full_states_made_by_yrs_are_accepted() {
    let mut seen = Seen::default();
    for binary in samples() {
        union(&mut seen, accepted(&binary));
    }
    // GC, every content yrs writes (deleted, string, embed, format, type,
    // Any, doc), skip.
    assert_eq!(
        seen.structs,
        bits(&[0, 1, 4, 5, 6, 7, 8, 9, 10]),
        "{seen:?}"
    );
    // Array, map, text, XML element, fragment and text.
    assert_eq!(seen.type_refs, bits(&[0, 1, 2, 3, 4, 6]), "{seen:?}");
    assert_eq!(seen.any_tags, 0xfff, "every Any tag: {seen:?}");
}

/// An update of one item of client 7 at clock 0 in root type `t`, with
/// content ref `content_ref` and `content`, and the delete set `deletes`.
fn item_update(content_ref: u8, content: &[u8], deletes: &[u8]) -> Vec<u8> {
    [&[1, 1, 7, 0, content_ref, 1, 1, b't'], content, deletes].concat()
}

#[test]
fn contents_yrs_reads_but_never_writes_are_accepted_as_yrs_reads_them() {
    // JSON content: yrs 0.28 reads one string more than the count.
    let mut json = Vec::new();
    json.write_var(1u32);
    json.write_string("{\"a\":1}");
    json.write_string("null");
    let json = item_update(2, &json, &[0]);
    assert_eq!(accepted(&json).structs, bits(&[2]));
    let mut binary = Vec::new();
    binary.write_buf([1u8, 2, 3]);
    assert_eq!(accepted(&item_update(3, &binary, &[0])).structs, bits(&[3]));
    // An XML hook (yrs reads no name after it) and an undefined type.
    for type_ref in [5u8, 15] {
        let seen = accepted(&item_update(7, &[type_ref], &[0]));
        assert_eq!(seen.type_refs, bits(&[type_ref]));
    }
    // A delete set of two clients, one with two ranges.
    let deletes = [2, 7, 2, 0, 1, 5, 2, 8, 1, 0, 3];
    accepted(&item_update(4, &[2, b'h', b'i'], &deletes));
}

#[test]
fn applied_updates_still_apply_after_the_check() {
    let doc = Doc::with_client_id(1);
    let text = doc.get_or_insert_text("t");
    let mut txn = doc.transact_mut();
    text.insert(&mut txn, 0, "checked");
    let update = txn.encode_update_v1();
    drop(txn);
    let valid = super::decode_update(update.into()).expect("valid");
    let copy = Doc::new();
    let t = copy.get_or_insert_text("t");
    copy.transact_mut()
        .apply_update(Update::decode_v1(valid.bytes()).expect("decodes"))
        .expect("applies");
    assert_eq!(t.get_string(&copy.transact()), "checked");
}

#[test]
fn state_vectors_and_awareness_updates_made_by_yrs_are_accepted() {
    let doc = Doc::with_client_id(1);
    let text = doc.get_or_insert_text("t");
    text.insert(&mut doc.transact_mut(), 0, "x");
    let other = Doc::with_client_id(u64::MAX >> 11);
    let other_text = other.get_or_insert_text("t");
    other_text.insert(
        &mut other.transact_mut(),
        0,
        "long enough to move the clock",
    );
    let update = other
        .transact()
        .encode_state_as_update_v1(&StateVector::default());
    doc.transact_mut()
        .apply_update(Update::decode_v1(&update).expect("decodes"))
        .expect("applies");
    let sv = doc.transact().state_vector();
    let bytes = sv.encode_v1();
    super::decode_state_vector(&bytes).expect("accepted");
    super::decode_state_vector(&StateVector::default().encode_v1()).expect("empty");

    let entry = |clock: u32, json: &str| AwarenessUpdateEntry {
        clock,
        json: Arc::from(json),
    };
    let update = AwarenessUpdate {
        clients: HashMap::from([
            (ClientID::new(1), entry(1, r#"{"user":{"name":"Zoë"}}"#)),
            (ClientID::new(u64::MAX >> 11), entry(u32::MAX, "null")),
        ]),
    };
    let decoded = super::decode_awareness(&update.encode_v1()).expect("accepted");
    assert_eq!(decoded, update);
    super::validate_awareness(&update.encode_v1(), usize::MAX).expect("valid");
}

/// A tiny deterministic generator (xorshift) for the mutations below.
struct Mutator(u64);

impl Mutator {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }

    /// `bytes` cut, with a byte changed, inserted or removed.
    fn mutate(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut out = bytes.to_vec();
        let at = self.below(out.len());
        let byte = [0x00, 0x01, 0x7f, 0x80, 0xff, self.below(256) as u8][self.below(6)];
        match self.below(4) {
            0 => out.truncate(at),
            1 => out[at] = byte,
            2 => out.insert(at, byte),
            _ => {
                out.remove(at);
            }
        }
        out
    }
}

/// The pre-parser and yrs stay in step: whatever mutated real update the
/// pre-parser accepts, yrs decodes without panicking, and refuses only
/// for a JSON string that does not parse (the pre-parser leaves JSON to
/// yrs). A walk out of step would let yrs read bytes as counts that were
/// never checked.
#[test]
fn mutated_updates_the_pre_parser_accepts_decode_in_yrs() {
    let mut mutator = Mutator(0x9e37_79b9_7f4a_7c15);
    let mut accepted = 0;
    for sample in samples() {
        for _ in 0..1000 {
            let mutated = mutator.mutate(&sample);
            if v1_check::update(&mutated).is_err() {
                continue;
            }
            accepted += 1;
            let decoded = std::panic::catch_unwind(|| Update::decode_v1(&mutated).err());
            match decoded {
                Ok(None | Some(yrs::encoding::read::Error::InvalidJSON(_))) => {}
                Ok(Some(e)) => panic!("yrs refused {mutated:?}: {e}"),
                Err(_) => panic!("yrs panicked on {mutated:?}"),
            }
        }
    }
    assert!(accepted > 1000, "only {accepted} mutations were accepted");
}
