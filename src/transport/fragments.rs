//! WebSocket details the session actor needs and that need no actor:
//! reassembling a message sent as continuation frames, and cutting a close
//! reason to fit a close frame.

use actix_http::ws::Item;
use bytes::BytesMut;

/// A message being reassembled from continuation frames.
#[derive(Debug, Default)]
pub struct Fragments {
    /// `Some((is_text, data))` between a first frame and the last one.
    partial: Option<(bool, BytesMut)>,
}

/// What a continuation frame completed.
#[derive(Debug, PartialEq, Eq)]
pub enum Reassembled {
    /// The message goes on.
    Pending,
    /// A complete text message (or, `Err`, one that is not UTF-8).
    Text(Result<String, std::string::FromUtf8Error>),
    /// A complete binary message.
    Binary(BytesMut),
    /// The message grew past the limit; it was dropped.
    TooLarge,
    /// A continuation without a first frame.
    NoFirstFrame,
}

impl Fragments {
    /// Adds one continuation frame; a message may be at most `limit` bytes.
    pub fn push(&mut self, item: Item, limit: usize) -> Reassembled {
        let (first, text, chunk, last) = match item {
            Item::FirstText(b) => (true, true, b, false),
            Item::FirstBinary(b) => (true, false, b, false),
            Item::Continue(b) => (false, false, b, false),
            Item::Last(b) => (false, false, b, true),
        };
        if first {
            self.partial = Some((text, BytesMut::new()));
        }
        let Some((_, data)) = self.partial.as_mut() else {
            return Reassembled::NoFirstFrame;
        };
        if data.len() + chunk.len() > limit {
            self.partial = None;
            return Reassembled::TooLarge;
        }
        data.extend_from_slice(&chunk);
        match (last, self.partial.take()) {
            (true, Some((true, data))) => Reassembled::Text(String::from_utf8(data.into())),
            (true, Some((false, data))) => Reassembled::Binary(data),
            (false, partial) => {
                self.partial = partial;
                Reassembled::Pending
            }
            (true, None) => Reassembled::NoFirstFrame,
        }
    }
}

/// A close frame carries at most 123 bytes of reason (RFC 6455 5.5): cut
/// longer ones at a character boundary.
pub fn close_reason(reason: &str) -> &str {
    const MAX: usize = 123;
    if reason.len() <= MAX {
        return reason;
    }
    let mut end = MAX;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn close_reasons_fit_a_close_frame() {
        assert_eq!(close_reason("short"), "short");
        let long = "é".repeat(100);
        let cut = close_reason(&long);
        assert!(cut.len() <= 123 && long.starts_with(cut) && !cut.is_empty());
    }

    #[test]
    fn messages_are_reassembled_within_the_limit() {
        let mut f = Fragments::default();
        let bytes = Bytes::from_static;
        let steps = [
            (Item::FirstText(bytes(b"he")), 10, Reassembled::Pending),
            (Item::Continue(bytes(b"l")), 10, Reassembled::Pending),
            (
                Item::Last(bytes(b"lo")),
                10,
                Reassembled::Text(Ok("hello".to_owned())),
            ),
            (Item::Last(bytes(b"x")), 10, Reassembled::NoFirstFrame),
            (Item::FirstBinary(bytes(b"12345")), 8, Reassembled::Pending),
            (Item::Continue(bytes(b"6789")), 8, Reassembled::TooLarge),
            (Item::Continue(bytes(b"1")), 8, Reassembled::NoFirstFrame),
            (Item::FirstBinary(bytes(b"ab")), 8, Reassembled::Pending),
            (
                Item::Last(bytes(b"c")),
                8,
                Reassembled::Binary(BytesMut::from(&b"abc"[..])),
            ),
        ];
        for (n, (item, limit, expected)) in steps.into_iter().enumerate() {
            assert_eq!(f.push(item, limit), expected, "step {n}");
        }
    }
}
