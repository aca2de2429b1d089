//! Restore as a new op: the update that makes a document's content equal
//! to an older state of it, for every root type: a text with its
//! formatting and embeds, a map's keys, an array's items, an XML
//! fragment's elements with their attributes and children (nested shared
//! types are copied whole). Applied on top of the current state by every
//! client like any other update: history is not rewritten.
//!
//! Each root is replaced, not diffed: what is there now is deleted and
//! the old content inserted again (cursors in a restored text move to its
//! start). Roots created after the old state are emptied.

use std::collections::{BTreeMap, BTreeSet};

use yrs::types::text::YChange;
use yrs::types::xml::{XmlIn, XmlOut};
use yrs::types::{AsPrelim, Delta};
use yrs::updates::decoder::Decode;
use yrs::{Array, Doc, Map, ReadTxn, Text, Transact, TransactionMut, Update, XmlFragment};

use super::content::{Root, RootKind, kind_of};

/// Why a restore could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the restore could not be computed: {0}")]
pub struct RestoreProblem(String);

/// The update (Yjs v1) that turns the document whose whole state is
/// `current` into one whose content equals `old`'s; `None` when both hold
/// nothing. `named` fixes the kind of roots the states cannot tell.
/// CPU-heavy for big documents: call it off actor threads.
pub fn restore_update(
    current: &[u8],
    old: &[u8],
    named: &BTreeMap<String, RootKind>,
) -> Result<Option<Vec<u8>>, RestoreProblem> {
    let work = doc_of(current)?;
    let past = doc_of(old)?;
    let names: BTreeSet<String> = root_names(&work)
        .union(&root_names(&past))
        .cloned()
        .collect();
    let kinds: Vec<(String, RootKind)> = names
        .into_iter()
        .map(|name| {
            let kind = named
                .get(&name)
                .copied()
                .or_else(|| inferred(&work, &name))
                .or_else(|| inferred(&past, &name))
                .unwrap_or(RootKind::Map);
            (name, kind)
        })
        .collect();
    // Typing (and getting) roots takes the document's lock: all of it
    // before any transaction is opened (a transaction alive on the same
    // thread would deadlock it).
    let roots: Vec<(Root, Root)> = kinds
        .iter()
        .map(|(name, kind)| (Root::of(&work, name, *kind), Root::of(&past, name, *kind)))
        .collect();
    let past_txn = past.transact();
    let mut txn = work.transact_mut();
    for (now, then) in &roots {
        replace_root(&mut txn, now, then, &past_txn);
    }
    let update = txn.encode_update_v1();
    drop(txn);
    let empty = Update::decode_v1(&update)
        .map(|u| u.is_empty())
        .unwrap_or(false);
    Ok((!empty).then_some(update))
}

fn doc_of(state: &[u8]) -> Result<Doc, RestoreProblem> {
    let update = Update::decode_v1(state).map_err(|e| RestoreProblem(e.to_string()))?;
    let doc = Doc::new();
    doc.transact_mut()
        .apply_update(update)
        .map_err(|e| RestoreProblem(e.to_string()))?;
    Ok(doc)
}

fn root_names(doc: &Doc) -> BTreeSet<String> {
    doc.transact()
        .root_refs()
        .map(|(name, _)| name.to_owned())
        .collect()
}

/// The kind of root `name` of `doc` as its content shows, if it holds any.
fn inferred(doc: &Doc, name: &str) -> Option<RootKind> {
    let txn = doc.transact();
    let (_, value) = txn.root_refs().find(|(n, _)| *n == name)?;
    let kind = kind_of(&value, &txn);
    // An empty root tells nothing (it infers as a map).
    let holds_something = match &value {
        yrs::Out::UndefinedRef(_) => kind != RootKind::Map || !value.to_string(&txn).is_empty(),
        _ => true,
    };
    holds_something.then_some(kind)
}

/// Makes `now` (written through `txn`) hold what `then` holds (read
/// through `past_txn`); both are of the same kind.
fn replace_root<T: ReadTxn>(txn: &mut TransactionMut, now: &Root, then: &Root, past_txn: &T) {
    match (now, then) {
        (Root::Text(now), Root::Text(then)) => {
            let len = now.len(txn);
            now.remove_range(txn, 0, len);
            let delta: Vec<Delta<yrs::In>> = then
                .diff(past_txn, YChange::identity)
                .into_iter()
                .map(|d| Delta::Inserted(d.insert.as_prelim(past_txn), d.attributes))
                .collect();
            now.apply_delta(txn, delta);
        }
        (Root::Map(now), Root::Map(then)) => {
            let stale: Vec<String> = now
                .keys(txn)
                .filter(|k| then.get(past_txn, k).is_none())
                .map(str::to_owned)
                .collect();
            for key in stale {
                now.remove(txn, &key);
            }
            for (key, value) in then.iter(past_txn) {
                now.insert(txn, key, value.as_prelim(past_txn));
            }
        }
        (Root::Array(now), Root::Array(then)) => {
            let len = now.len(txn);
            now.remove_range(txn, 0, len);
            for (i, value) in then.iter(past_txn).enumerate() {
                now.insert(txn, i as u32, value.as_prelim(past_txn));
            }
        }
        (Root::Xml(now), Root::Xml(then)) => {
            let len = now.len(txn);
            now.remove_range(txn, 0, len);
            let children: Vec<XmlIn> = then
                .children(past_txn)
                .map(|child| match child {
                    XmlOut::Element(e) => XmlIn::from(e.as_prelim(past_txn)),
                    XmlOut::Fragment(f) => XmlIn::from(f.as_prelim(past_txn)),
                    XmlOut::Text(t) => XmlIn::from(t.as_prelim(past_txn)),
                })
                .collect();
            for (i, child) in children.into_iter().enumerate() {
                now.insert(txn, i as u32, child);
            }
        }
        // `Root::of` made both of one kind.
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crdt::content::content_json;
    use crate::crdt::encode_full_state;
    use yrs::{GetString, Xml, XmlElementPrelim, XmlTextPrelim};

    fn edit(doc: &Doc, f: impl FnOnce(&mut TransactionMut)) {
        let mut txn = doc.transact_mut();
        f(&mut txn);
    }

    #[test]
    fn restoring_makes_every_kind_of_root_what_it_was() {
        let doc = Doc::new();
        let text = doc.get_or_insert_text("text");
        let map = doc.get_or_insert_map("map");
        let array = doc.get_or_insert_array("array");
        let xml = doc.get_or_insert_xml_fragment("xml");
        edit(&doc, |txn| {
            text.insert(txn, 0, "hello");
            map.insert(txn, "a", 1);
            map.insert(txn, "b", "two");
            array.push_back(txn, "x");
            let p = xml.push_back(txn, XmlElementPrelim::empty("paragraph"));
            p.insert_attribute(txn, "align", "left");
            p.push_back(txn, XmlTextPrelim::new("old"));
        });
        let old = encode_full_state(&doc);
        let expected = content_json(&old, &BTreeMap::new()).expect("content");
        edit(&doc, |txn| {
            text.insert(txn, 5, " world");
            map.remove(txn, "a");
            map.insert(txn, "c", true);
            array.push_back(txn, "y");
            xml.remove_range(txn, 0, 1);
            xml.push_back(txn, XmlElementPrelim::empty("heading"));
        });
        let later = doc.get_or_insert_text("later");
        edit(&doc, |txn| later.insert(txn, 0, "new root"));
        let current = encode_full_state(&doc);
        let update = restore_update(&current, &old, &BTreeMap::new())
            .expect("computed")
            .expect("a change");
        doc.transact_mut()
            .apply_update(Update::decode_v1(&update).expect("decodes"))
            .expect("applies");
        let restored = content_json(&encode_full_state(&doc), &BTreeMap::new()).expect("content");
        for root in ["text", "map", "array", "xml"] {
            assert_eq!(restored[root], expected[root], "{root}");
        }
        assert_eq!(
            later.get_string(&doc.transact()),
            "",
            "a root created later is emptied"
        );
    }

    #[test]
    fn nothing_to_restore_between_empty_states() {
        let empty = encode_full_state(&Doc::new());
        assert_eq!(restore_update(&empty, &empty, &BTreeMap::new()), Ok(None));
    }
}
