//! A document's shared root types as JSON, the way Yjs's `toJSON` shows
//! them: a text as its string, a map as an object, an array as an array,
//! an XML fragment (ProseMirror, Tiptap) as its XML string.
//!
//! An update does not say which kind of type a root is (Yjs learns it when
//! the application calls `doc.getText(name)`); the caller may name the
//! kinds, and the other roots are inferred from what they hold: characters
//! make a text, keys a map, XML elements a fragment, other items an array.
//! A root whose content was all deleted holds nothing to infer from and is
//! shown as an empty map, unless its kind is named.

use std::collections::BTreeMap;
use std::str::FromStr;

use serde_json::{Map, Value};
use yrs::any::Number;
use yrs::types::{AsPrelim, ToJson};
use yrs::updates::decoder::Decode;
use yrs::{Any, Doc, GetString, In, Out, ReadTxn, Transact, Update};

use super::to_base64;

/// The kind of a root type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootKind {
    Text,
    Map,
    Array,
    Xml,
}

impl FromStr for RootKind {
    type Err = ContentProblem;

    fn from_str(name: &str) -> Result<Self, ContentProblem> {
        match name {
            "text" => Ok(RootKind::Text),
            "map" => Ok(RootKind::Map),
            "array" => Ok(RootKind::Array),
            "xml" => Ok(RootKind::Xml),
            other => Err(ContentProblem::UnknownKind(other.to_owned())),
        }
    }
}

/// Why content could not be shown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContentProblem {
    #[error("unknown root type {0:?}: one of text, map, array, xml")]
    UnknownKind(String),
    #[error("a root type is named without a kind: {0:?} (write name:kind)")]
    MissingKind(String),
    #[error("the stored state does not decode: {0}")]
    Undecodable(String),
}

/// Parses `name:kind,other:kind` (the `types` query parameter).
pub fn parse_root_kinds(list: &str) -> Result<BTreeMap<String, RootKind>, ContentProblem> {
    let mut kinds = BTreeMap::new();
    for entry in list.split(',').filter(|e| !e.is_empty()) {
        let (name, kind) = entry
            .rsplit_once(':')
            .ok_or_else(|| ContentProblem::MissingKind(entry.to_owned()))?;
        kinds.insert(name.to_owned(), kind.parse()?);
    }
    Ok(kinds)
}

/// The roots of the document whose whole state is `state` (a Yjs v1
/// update the server produced), by name, as JSON; `named` fixes the kind
/// of some roots. CPU-heavy for big documents: call it off actor threads.
pub fn content_json(
    state: &[u8],
    named: &BTreeMap<String, RootKind>,
) -> Result<Map<String, Value>, ContentProblem> {
    let update =
        Update::decode_v1(state).map_err(|e| ContentProblem::Undecodable(e.to_string()))?;
    let doc = Doc::new();
    // Named roots first, so the update integrates into types of that kind.
    for (name, kind) in named {
        Root::of(&doc, name, *kind);
    }
    doc.transact_mut()
        .apply_update(update)
        .map_err(|e| ContentProblem::Undecodable(e.to_string()))?;
    let kinds: Vec<(String, RootKind)> = {
        let txn = doc.transact();
        txn.root_refs()
            .map(|(name, value)| {
                let kind = named
                    .get(name)
                    .copied()
                    .unwrap_or_else(|| kind_of(&value, &txn));
                (name.to_owned(), kind)
            })
            .collect()
    };
    // Typing a root needs no open transaction (see the crate notes on
    // read and write transactions on one thread).
    for (name, kind) in &kinds {
        Root::of(&doc, name, *kind);
    }
    let txn = doc.transact();
    let mut content = Map::new();
    for (name, kind) in kinds {
        let value = match kind {
            RootKind::Text => txn
                .get_text(name.as_str())
                .map(|t| Value::String(t.get_string(&txn))),
            RootKind::Xml => txn
                .get_xml_fragment(name.as_str())
                .map(|x| Value::String(x.get_string(&txn))),
            RootKind::Map => txn
                .get_map(name.as_str())
                .map(|m| any_to_json(&m.to_json(&txn))),
            RootKind::Array => txn
                .get_array(name.as_str())
                .map(|a| any_to_json(&a.to_json(&txn))),
        };
        content.insert(name, value.unwrap_or(Value::Null));
    }
    Ok(content)
}

/// A root type of a document, of its kind.
pub(crate) enum Root {
    Text(yrs::TextRef),
    Map(yrs::MapRef),
    Array(yrs::ArrayRef),
    Xml(yrs::XmlFragmentRef),
}

impl Root {
    /// Root `name` of `doc` as a `kind` (typing it if yrs did not know
    /// it). Takes the document's lock: no transaction of `doc` may be
    /// open on this thread.
    pub(crate) fn of(doc: &Doc, name: &str, kind: RootKind) -> Root {
        match kind {
            RootKind::Text => Root::Text(doc.get_or_insert_text(name)),
            RootKind::Map => Root::Map(doc.get_or_insert_map(name)),
            RootKind::Array => Root::Array(doc.get_or_insert_array(name)),
            RootKind::Xml => Root::Xml(doc.get_or_insert_xml_fragment(name)),
        }
    }
}

/// The kind of a root as yrs knows it, or as its content suggests.
pub(crate) fn kind_of<T: ReadTxn>(value: &Out, txn: &T) -> RootKind {
    match value {
        Out::YText(_) | Out::YXmlText(_) => RootKind::Text,
        Out::YMap(_) => RootKind::Map,
        Out::YArray(_) => RootKind::Array,
        Out::YXmlFragment(_) | Out::YXmlElement(_) => RootKind::Xml,
        Out::UndefinedRef(_) => match value.as_prelim(txn) {
            In::Text(_) | In::XmlText(_) => RootKind::Text,
            In::XmlElement(_) | In::XmlFragment(_) => RootKind::Xml,
            In::Array(items) => {
                let xml = |item: &In| {
                    matches!(
                        item,
                        In::XmlElement(_) | In::XmlText(_) | In::XmlFragment(_)
                    )
                };
                if !items.is_empty() && items.iter().all(xml) {
                    RootKind::Xml
                } else {
                    RootKind::Array
                }
            }
            _ => RootKind::Map,
        },
        _ => RootKind::Map,
    }
}

/// yrs's JSON-like value as JSON: binary as base64, undefined as null.
pub fn any_to_json(any: &Any) -> Value {
    match any {
        Any::Null | Any::Undefined => Value::Null,
        Any::Bool(b) => Value::Bool(*b),
        Any::Number(Number::Int(n)) => Value::Number((*n).into()),
        Any::Number(Number::Float(n)) => {
            serde_json::Number::from_f64(*n).map_or(Value::Null, Value::Number)
        }
        Any::String(s) => Value::String(s.to_string()),
        Any::Buffer(bytes) => Value::String(to_base64(bytes)),
        Any::Array(items) => Value::Array(items.iter().map(any_to_json).collect()),
        Any::Map(entries) => Value::Object(
            entries
                .iter()
                .map(|(k, v)| (k.clone(), any_to_json(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::{Array, Map as _, Text, XmlElementPrelim, XmlFragment, XmlTextPrelim};

    fn state_of(doc: &Doc) -> Vec<u8> {
        super::super::encode_full_state(doc)
    }

    #[test]
    fn each_kind_is_inferred_from_its_content() {
        let doc = Doc::new();
        let text = doc.get_or_insert_text("text");
        let map = doc.get_or_insert_map("map");
        let array = doc.get_or_insert_array("array");
        let xml = doc.get_or_insert_xml_fragment("prosemirror");
        {
            let mut txn = doc.transact_mut();
            text.insert(&mut txn, 0, "hello");
            map.insert(&mut txn, "k", 1.5);
            map.insert(&mut txn, "s", "v");
            array.push_back(&mut txn, 1);
            array.push_back(&mut txn, "two");
            let p = xml.push_back(&mut txn, XmlElementPrelim::empty("paragraph"));
            p.push_back(&mut txn, XmlTextPrelim::new("hi"));
        }
        let content = content_json(&state_of(&doc), &BTreeMap::new()).expect("content");
        assert_eq!(content["text"], Value::String("hello".into()));
        assert_eq!(content["map"], serde_json::json!({"k": 1.5, "s": "v"}));
        assert_eq!(content["array"], serde_json::json!([1, "two"]));
        assert_eq!(
            content["prosemirror"],
            Value::String("<paragraph>hi</paragraph>".into())
        );
    }

    #[test]
    fn a_named_kind_wins_over_inference() {
        let doc = Doc::new();
        let text = doc.get_or_insert_text("t");
        {
            let mut txn = doc.transact_mut();
            text.insert(&mut txn, 0, "abc");
            text.remove_range(&mut txn, 0, 3);
        }
        let inferred = content_json(&state_of(&doc), &BTreeMap::new()).expect("content");
        assert_ne!(inferred["t"], Value::String(String::new()));
        let named = parse_root_kinds("t:text").expect("kinds");
        let content = content_json(&state_of(&doc), &named).expect("content");
        assert_eq!(content["t"], Value::String(String::new()));
    }

    #[test]
    fn root_kind_lists_are_checked() {
        assert_eq!(parse_root_kinds("a:text,b:xml").expect("kinds").len(), 2);
        assert!(matches!(
            parse_root_kinds("a:tree"),
            Err(ContentProblem::UnknownKind(_))
        ));
        assert!(matches!(
            parse_root_kinds("a"),
            Err(ContentProblem::MissingKind(_))
        ));
        // A root name may itself hold a colon: the kind is after the last.
        let kinds = parse_root_kinds("x:y:map").expect("kinds");
        assert_eq!(kinds.get("x:y"), Some(&RootKind::Map));
    }
}
