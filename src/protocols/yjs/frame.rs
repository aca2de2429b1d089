//! Decoding and encoding y-protocols frames (lib0 encoding): every message
//! of a frame is decoded and validated before any is acted on. The Yjs
//! binaries inside (state vectors, awareness updates) are checked by
//! [`crate::crdt`]'s pre-parser before yrs decodes them; updates are
//! checked the same way by the session (`crdt::decode_update`).

use bytes::Bytes;
use yrs::encoding::write::Write as _;
use yrs::sync::{Message, SyncMessage};
use yrs::updates::encoder::Encode;

use crate::crdt;
use crate::protocols::ProtocolLimits;
use crate::vocabulary::Frame;
use crate::vocabulary::close_code::{INVALID_PAYLOAD, UNSUPPORTED_DATA};

/// One y-protocols sync `Update` message carrying `update`.
pub fn update_frame(update: &[u8]) -> Bytes {
    Bytes::from(Message::Sync(SyncMessage::Update(update.to_vec())).encode_v1())
}

/// One y-protocols sync step 2 message carrying `update`, made of parts:
/// the update itself (often the document's shared full state) is not
/// copied, and the transport sends it in fragments.
pub fn sync_step2(update: Bytes) -> Frame {
    let mut header = vec![MESSAGE_SYNC as u8, SYNC_STEP_2 as u8];
    header.write_var(update.len());
    Frame::Parts {
        text: false,
        parts: vec![Bytes::from(header), update],
    }
}

/// One decoded y-protocols message of a frame.
#[derive(Debug)]
pub(super) enum Incoming {
    SyncStep1(Bytes),
    /// Sync step 2 or update: both carry an update to apply.
    Update(Bytes),
    Awareness(Bytes),
    QueryAwareness,
}

/// Why a frame was refused: the close code and reason.
type FrameError = (u16, String);

/// lib0 encoding reader over one frame.
struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn var_uint(&mut self, what: &str) -> Result<u64, FrameError> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let Some(&byte) = self.data.get(self.at) else {
                return Err((INVALID_PAYLOAD, format!("truncated {what}")));
            };
            self.at += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err((INVALID_PAYLOAD, format!("{what} is not a valid varUint")))
    }

    fn buf(&mut self, what: &str) -> Result<&'a [u8], FrameError> {
        let len = self.var_uint(what)?;
        let end = usize::try_from(len)
            .ok()
            .and_then(|len| self.at.checked_add(len))
            .filter(|end| *end <= self.data.len())
            .ok_or_else(|| (INVALID_PAYLOAD, format!("truncated {what}")))?;
        let buf = &self.data[self.at..end];
        self.at = end;
        Ok(buf)
    }

    fn done(&self) -> bool {
        self.at == self.data.len()
    }
}

/// Decodes and validates every message of a frame before any is acted on,
/// so a frame with one bad message contributes nothing; an awareness state
/// over `limits` is as bad as one that is not JSON.
pub(super) fn decode_frame(
    data: &[u8],
    limits: &ProtocolLimits,
) -> Result<Vec<Incoming>, FrameError> {
    let mut reader = Reader { data, at: 0 };
    let mut messages = Vec::new();
    if data.is_empty() {
        return Err((INVALID_PAYLOAD, "empty binary frame".to_owned()));
    }
    while !reader.done() {
        match reader.var_uint("message type")? {
            MESSAGE_SYNC => match reader.var_uint("sync message type")? {
                SYNC_STEP_1 => {
                    let sv = reader.buf("state vector")?;
                    crdt::decode_state_vector(sv).map_err(|e| (INVALID_PAYLOAD, e.to_string()))?;
                    messages.push(Incoming::SyncStep1(Bytes::copy_from_slice(sv)));
                }
                SYNC_STEP_2 | SYNC_UPDATE => {
                    let update = reader.buf("update")?;
                    messages.push(Incoming::Update(Bytes::copy_from_slice(update)));
                }
                other => {
                    return Err((
                        UNSUPPORTED_DATA,
                        format!("unknown sync message type {other}"),
                    ));
                }
            },
            MESSAGE_AWARENESS => {
                let update = reader.buf("awareness update")?;
                crdt::validate_awareness(update, limits.max_awareness_state_bytes)
                    .map_err(|e| (INVALID_PAYLOAD, e.to_string()))?;
                messages.push(Incoming::Awareness(Bytes::copy_from_slice(update)));
            }
            MESSAGE_QUERY_AWARENESS => messages.push(Incoming::QueryAwareness),
            MESSAGE_AUTH => {
                return Err((
                    UNSUPPORTED_DATA,
                    "auth messages are not supported".to_owned(),
                ));
            }
            other => {
                return Err((
                    UNSUPPORTED_DATA,
                    format!("unknown y-protocols message type {other}"),
                ));
            }
        }
    }
    Ok(messages)
}

const MESSAGE_SYNC: u64 = 0;
const MESSAGE_AWARENESS: u64 = 1;
const MESSAGE_AUTH: u64 = 2;
const MESSAGE_QUERY_AWARENESS: u64 = 3;
const SYNC_STEP_1: u64 = 0;
const SYNC_STEP_2: u64 = 1;
const SYNC_UPDATE: u64 = 2;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sync_step_2_of_parts_is_the_y_protocols_message() {
        for len in [0usize, 1, 127, 128, 16_383, 16_384, 300_000] {
            let update = Bytes::from(vec![7u8; len]);
            let Frame::Parts { text, parts } = sync_step2(update.clone()) else {
                panic!("parts");
            };
            assert!(!text);
            let joined: Vec<u8> = parts.iter().flat_map(|p| p.to_vec()).collect();
            let expected = Message::Sync(SyncMessage::SyncStep2(update.to_vec())).encode_v1();
            assert_eq!(joined, expected, "update of {len} bytes");
            assert_eq!(
                parts[1].as_ptr(),
                update.as_ptr(),
                "the update is shared, not copied"
            );
        }
    }
}
