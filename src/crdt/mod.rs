//! The few yrs operations the server needs: validating a client's update,
//! awareness update or state vector, and encoding a full state. Free of
//! actix so it is unit-testable.
//!
//! Every Yjs binary a client sends is walked by the pre-parser
//! ([`v1_check`]) before yrs decodes it: yrs reserves memory for the
//! entry counts a binary declares, and the pre-parser refuses any count
//! larger than the bytes that follow, so a few hostile bytes cannot make
//! the server reserve GiBs (or overflow the stack with nested `Any`
//! values). Decode client bytes only through the functions here.

pub mod content;
pub mod replay;
pub mod restore;
mod v1_any;
mod v1_check;
mod v1_reader;
mod v1_struct;

#[cfg(test)]
mod probes;
#[cfg(test)]
mod round_trips;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use yrs::sync::AwarenessUpdate;
use yrs::updates::decoder::Decode;
use yrs::{Doc, ReadTxn, StateVector, Transact, Update};

/// The bytes of a client update that passed the pre-parser and decoded as
/// a non-empty Yjs v1 update.
///
/// Only [`decode_update`] makes one, so holding a `ValidUpdate` proves the
/// check happened (on the session's thread, off the document's). The bytes
/// are logged and broadcast exactly as received; the document decodes them
/// again when it applies them (a decoded `yrs::Update` cannot cross threads).
#[derive(Debug, Clone)]
pub struct ValidUpdate(Bytes);

impl ValidUpdate {
    pub fn bytes(&self) -> &Bytes {
        &self.0
    }

    pub fn into_bytes(self) -> Bytes {
        self.0
    }
}

/// Why an update was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpdateProblem {
    #[error("update is not valid base64 (standard alphabet, padded): {0}")]
    NotBase64(String),
    #[error("update is not a decodable Yjs v1 update: {0}")]
    Undecodable(String),
    #[error("update is empty: it contains no insertions and no deletions")]
    Empty,
}

/// Why an awareness update was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AwarenessProblem {
    #[error("awareness update is not valid base64 (standard alphabet, padded): {0}")]
    NotBase64(String),
    #[error("awareness update cannot be decoded: {0}")]
    Undecodable(String),
    #[error("awareness state of client {client} is not JSON: {reason}")]
    NotJson { client: u64, reason: String },
    /// Named first in the message, so the limit survives a close reason
    /// cut to 123 bytes.
    #[error(
        "awareness state over limits.max_awareness_state_bytes ({limit}): client {client} sent {bytes} bytes"
    )]
    StateTooLarge {
        client: u64,
        bytes: usize,
        limit: usize,
    },
}

/// Why a state vector was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("state vector cannot be decoded: {0}")]
pub struct BadStateVector(pub String);

/// Decodes the base64 `update` field of an `op` message.
pub fn decode_base64_update(text: &str) -> Result<ValidUpdate, UpdateProblem> {
    let raw = BASE64
        .decode(text)
        .map_err(|e| UpdateProblem::NotBase64(e.to_string()))?;
    decode_update(Bytes::from(raw))
}

/// Checks that `raw` is a decodable, non-empty Yjs v1 update: the
/// pre-parser first, then yrs.
pub fn decode_update(raw: Bytes) -> Result<ValidUpdate, UpdateProblem> {
    v1_check::update(&raw).map_err(|e| UpdateProblem::Undecodable(e.to_string()))?;
    let update = Update::decode_v1(&raw).map_err(|e| UpdateProblem::Undecodable(e.to_string()))?;
    if update.is_empty() {
        return Err(UpdateProblem::Empty);
    }
    Ok(ValidUpdate(raw))
}

/// Decodes the base64 `update` of a native `awareness` message and checks
/// it with [`validate_awareness`].
pub fn decode_base64_awareness(
    text: &str,
    max_state_bytes: usize,
) -> Result<Bytes, AwarenessProblem> {
    let raw = BASE64
        .decode(text)
        .map_err(|e| AwarenessProblem::NotBase64(e.to_string()))?;
    validate_awareness(&raw, max_state_bytes)?;
    Ok(Bytes::from(raw))
}

/// Decodes a y-protocols awareness update: the pre-parser first, then
/// yrs. The states are not looked at (see [`validate_awareness`]).
pub fn decode_awareness(raw: &[u8]) -> Result<AwarenessUpdate, AwarenessProblem> {
    v1_check::awareness(raw).map_err(|e| AwarenessProblem::Undecodable(e.to_string()))?;
    AwarenessUpdate::decode_v1(raw).map_err(|e| AwarenessProblem::Undecodable(e.to_string()))
}

/// Checks that `raw` is a y-protocols awareness update whose states are
/// JSON (clients parse them; one bad state would break every receiver) of
/// at most `max_state_bytes` each (`limits.max_awareness_state_bytes`).
///
/// The size is checked here, on the session's thread, rather than in the
/// document: it needs nothing but the update itself, it comes before the
/// JSON parse (the expensive part, skipped for an oversized state), and a
/// refused update never reaches the document's thread, which every session
/// of the document shares. Which client ids a session may publish needs
/// the document's registry, so that limit is the document's.
pub fn validate_awareness(raw: &[u8], max_state_bytes: usize) -> Result<(), AwarenessProblem> {
    let update = decode_awareness(raw)?;
    if let Some((client, entry)) = update
        .clients
        .iter()
        .find(|(_, entry)| entry.json.len() > max_state_bytes)
    {
        return Err(AwarenessProblem::StateTooLarge {
            client: client.get(),
            bytes: entry.json.len(),
            limit: max_state_bytes,
        });
    }
    for (client, entry) in &update.clients {
        serde_json::from_str::<serde::de::IgnoredAny>(&entry.json).map_err(|e| {
            AwarenessProblem::NotJson {
                client: client.get(),
                reason: e.to_string(),
            }
        })?;
    }
    Ok(())
}

/// Decodes a v1 state vector: the pre-parser first, then yrs.
pub fn decode_state_vector(raw: &[u8]) -> Result<StateVector, BadStateVector> {
    v1_check::state_vector(raw).map_err(|e| BadStateVector(e.to_string()))?;
    StateVector::decode_v1(raw).map_err(|e| BadStateVector(e.to_string()))
}

/// Decodes base64 (standard, padded).
pub fn decode_base64(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    BASE64.decode(text)
}

/// Base64 (standard, padded) of `bytes`.
pub fn to_base64(bytes: &[u8]) -> String {
    BASE64.encode(bytes)
}

/// The whole document as one v1 update, pending (not yet integrable)
/// structs included: exactly what a new client needs.
pub fn encode_full_state(doc: &Doc) -> Vec<u8> {
    doc.transact()
        .encode_state_as_update_v1(&StateVector::default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::{GetString, Text};

    fn insert_update(text: &str) -> Vec<u8> {
        let doc = Doc::new();
        let t = doc.get_or_insert_text("t");
        let mut txn = doc.transact_mut();
        t.insert(&mut txn, 0, text);
        txn.encode_update_v1()
    }

    #[test]
    fn accepts_a_real_update() {
        let raw = insert_update("hi");
        let valid = decode_base64_update(&to_base64(&raw)).expect("valid");
        assert_eq!(&valid.bytes()[..], &raw[..]);
        let doc = Doc::new();
        let t = doc.get_or_insert_text("t");
        doc.transact_mut()
            .apply_update(Update::decode_v1(valid.bytes()).expect("decodes"))
            .expect("applies");
        assert_eq!(t.get_string(&doc.transact()), "hi");
    }

    #[test]
    fn rejects_bad_base64_garbage_and_empty_updates() {
        let e = decode_base64_update("not base64!").unwrap_err();
        assert!(matches!(e, UpdateProblem::NotBase64(_)), "{e}");
        assert!(e.to_string().contains("base64"));
        let e = decode_base64_update(&to_base64(&[0xff, 0xff, 0xff, 0x01])).unwrap_err();
        assert!(matches!(e, UpdateProblem::Undecodable(_)), "{e}");
        assert!(e.to_string().contains("Yjs"));
        let e = decode_base64_update(&to_base64(Update::EMPTY_V1)).unwrap_err();
        assert_eq!(e, UpdateProblem::Empty);
        let e = decode_base64_update("").unwrap_err();
        assert!(matches!(e, UpdateProblem::Undecodable(_)), "{e}");
    }

    #[test]
    fn awareness_states_over_the_size_limit_are_refused_before_parsing() {
        use yrs::sync::awareness::AwarenessUpdateEntry;
        use yrs::updates::encoder::Encode;
        let update = |json: &str| {
            let entry = AwarenessUpdateEntry {
                clock: 1,
                json: json.into(),
            };
            let clients = [(yrs::ClientID::new(42), entry)].into_iter().collect();
            yrs::sync::AwarenessUpdate { clients }.encode_v1()
        };
        assert_eq!(validate_awareness(&update(r#""12345678""#), 10), Ok(()));
        // Eleven bytes and not even JSON: the size is what is refused.
        let e = validate_awareness(&update("{{{{{{{{{{{"), 10).unwrap_err();
        assert_eq!(
            e,
            AwarenessProblem::StateTooLarge {
                client: 42,
                bytes: 11,
                limit: 10
            }
        );
        assert!(e.to_string().starts_with(
            "awareness state over limits.max_awareness_state_bytes (10): client 42 sent 11 bytes"
        ));
        assert!(matches!(
            validate_awareness(&update("{{"), 10),
            Err(AwarenessProblem::NotJson { .. })
        ));
    }

    /// The update used as an example in README.md and docs/protocol.md.
    #[test]
    fn documented_example_update_inserts_hi() {
        let valid = decode_base64_update("AQEBAAQBB2NvbnRlbnQCaGkA").expect("valid");
        let doc = Doc::new();
        let t = doc.get_or_insert_text("content");
        doc.transact_mut()
            .apply_update(Update::decode_v1(valid.bytes()).expect("decodes"))
            .expect("applies");
        assert_eq!(t.get_string(&doc.transact()), "hi");
    }

    #[test]
    fn full_state_round_trips() {
        let doc = Doc::new();
        let t = doc.get_or_insert_text("t");
        t.insert(&mut doc.transact_mut(), 0, "hello");
        let state = encode_full_state(&doc);
        let copy = Doc::new();
        let t2 = copy.get_or_insert_text("t");
        copy.transact_mut()
            .apply_update(Update::decode_v1(&state).expect("decodes"))
            .expect("applies");
        assert_eq!(t2.get_string(&copy.transact()), "hello");
    }
}
