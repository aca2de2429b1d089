//! What a session writes to its socket, in order: whole frames, and big
//! messages of shared parts ([`Frame::Parts`]) cut into fragments of at
//! most [`FRAGMENT_BYTES`]. Only one fragment of a big message is handed
//! out per turn of the session (the session asks again once its socket
//! took it), so a joiner of a big document holds one fragment, not a copy
//! of the document; frames sent meanwhile wait behind the message (a
//! WebSocket message cannot be interleaved with another).

use std::collections::VecDeque;

use bytes::Bytes;
use bytestring::ByteString;

use crate::document::BacklogTicket;
use crate::vocabulary::Frame;

/// Largest fragment of a big message.
pub const FRAGMENT_BYTES: usize = 256 * 1024;

/// One write to the socket.
#[derive(Debug, PartialEq, Eq)]
pub enum Write {
    Text(ByteString),
    Binary(Bytes),
    /// A fragment of a big message: `first` opens it (with its kind),
    /// `last` ends it.
    Fragment {
        text: bool,
        first: bool,
        last: bool,
        data: Bytes,
    },
}

/// A big message being written.
#[derive(Debug)]
struct InProgress {
    text: bool,
    parts: VecDeque<Bytes>,
    started: bool,
}

/// See the module docs.
#[derive(Debug, Default)]
pub struct Outgoing {
    current: Option<InProgress>,
    queued: VecDeque<Frame>,
    /// Backlog tickets of committed ops whose frames are queued here: the
    /// document keeps counting them (and drops a reader too slow) until
    /// everything queued is written.
    held: Vec<BacklogTicket>,
}

impl Outgoing {
    /// Queues `frame` behind what is being written.
    pub fn push(&mut self, frame: Frame) {
        self.queued.push_back(frame);
    }

    /// Keeps `ticket` until everything queued now is written.
    pub fn hold(&mut self, ticket: BacklogTicket) {
        self.held.push(ticket);
    }

    /// Whether a big message is being written (the session must come back
    /// for its next fragment).
    pub fn in_progress(&self) -> bool {
        self.current.is_some()
    }

    /// The writes to make now: the next fragment of the big message being
    /// written, and once that was its last, every frame queued behind it
    /// up to the first fragment of the next big message. While
    /// [`Outgoing::in_progress`] afterwards, the caller comes back later;
    /// otherwise nothing is left queued.
    pub fn next_writes(&mut self) -> Vec<Write> {
        let mut writes = Vec::new();
        loop {
            if let Some(current) = &mut self.current {
                writes.push(next_fragment(current));
                if !current.parts.is_empty() {
                    return writes;
                }
                self.current = None;
                continue;
            }
            match self.queued.pop_front() {
                None => {
                    self.held.clear();
                    return writes;
                }
                Some(Frame::Text(text)) => writes.push(Write::Text(text)),
                Some(Frame::Binary(data)) => writes.push(Write::Binary(data)),
                Some(Frame::Parts { text, parts }) => {
                    let parts: VecDeque<Bytes> =
                        parts.into_iter().filter(|p| !p.is_empty()).collect();
                    if parts.is_empty() {
                        // An empty message still has to be sent.
                        writes.push(whole(text, Bytes::new()));
                        continue;
                    }
                    self.current = Some(InProgress {
                        text,
                        parts,
                        started: false,
                    });
                }
            }
        }
    }
}

/// The next fragment of `current`: up to [`FRAGMENT_BYTES`] of its parts
/// (small parts are joined into one fragment, big ones cut).
fn next_fragment(current: &mut InProgress) -> Write {
    let mut data = Vec::new();
    while data.len() < FRAGMENT_BYTES {
        let Some(part) = current.parts.front_mut() else {
            break;
        };
        if data.is_empty() && part.len() >= FRAGMENT_BYTES / 2 {
            // A slice of a big part: shared, not copied.
            let chunk = part.split_to(part.len().min(FRAGMENT_BYTES));
            if part.is_empty() {
                current.parts.pop_front();
            }
            return fragment(current, chunk);
        }
        let take = part.len().min(FRAGMENT_BYTES - data.len());
        data.extend_from_slice(&part.split_to(take));
        if part.is_empty() {
            current.parts.pop_front();
        }
    }
    fragment(current, Bytes::from(data))
}

fn fragment(current: &mut InProgress, data: Bytes) -> Write {
    let first = !current.started;
    current.started = true;
    let last = current.parts.is_empty();
    if first && last {
        // All of it in one fragment: a whole message.
        return whole(current.text, data);
    }
    Write::Fragment {
        text: current.text,
        first,
        last,
        data,
    }
}

/// A whole message of `data`; text must be UTF-8 (its producers make
/// sure), else it goes out as binary, which the client will refuse loudly.
fn whole(text: bool, data: Bytes) -> Write {
    if !text {
        return Write::Binary(data);
    }
    match ByteString::try_from(data.clone()) {
        Ok(text) => Write::Text(text),
        Err(_) => {
            log::error!("a text message of parts is not UTF-8; sent as binary");
            Write::Binary(data)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joined(writes: &[Write]) -> Vec<u8> {
        writes
            .iter()
            .flat_map(|w| match w {
                Write::Fragment { data, .. } => data.to_vec(),
                _ => Vec::new(),
            })
            .collect()
    }

    #[test]
    fn a_big_message_goes_out_a_fragment_per_turn_and_frames_wait_behind_it() {
        let mut out = Outgoing::default();
        let state = Bytes::from(vec![b'x'; 3 * FRAGMENT_BYTES + 10]);
        out.push(Frame::Text("before".into()));
        out.push(Frame::Parts {
            text: true,
            parts: vec![
                Bytes::from_static(b"{\"state\":\""),
                state.clone(),
                Bytes::from_static(b"\"}"),
            ],
        });
        out.push(Frame::Text("after".into()));
        let mut turns = Vec::new();
        loop {
            let writes = out.next_writes();
            if writes.is_empty() {
                break;
            }
            turns.push(writes);
        }
        assert_eq!(turns[0][0], Write::Text("before".into()));
        let fragments: Vec<&Write> = turns
            .iter()
            .flatten()
            .filter(|w| matches!(w, Write::Fragment { .. }))
            .collect();
        assert_eq!(fragments.len(), 4, "3 full fragments and the rest");
        assert!(matches!(
            fragments[0],
            Write::Fragment {
                first: true,
                last: false,
                text: true,
                ..
            }
        ));
        assert!(matches!(
            fragments[3],
            Write::Fragment {
                first: false,
                last: true,
                ..
            }
        ));
        for turn in &turns {
            let in_turn = turn
                .iter()
                .filter(|w| matches!(w, Write::Fragment { .. }))
                .count();
            assert!(in_turn <= 1, "one fragment per turn");
        }
        assert_eq!(
            turns.last().and_then(|t| t.last()),
            Some(&Write::Text("after".into()))
        );
        let all: Vec<Write> = turns.into_iter().flatten().collect();
        let mut expected = b"{\"state\":\"".to_vec();
        expected.extend_from_slice(&state);
        expected.extend_from_slice(b"\"}");
        assert_eq!(joined(&all), expected);
        assert!(!out.in_progress());
    }

    #[test]
    fn frames_queued_during_a_big_message_follow_its_last_fragment_at_once() {
        let mut out = Outgoing::default();
        out.push(Frame::Parts {
            text: false,
            parts: vec![Bytes::from(vec![1u8; FRAGMENT_BYTES + 1])],
        });
        assert_eq!(out.next_writes().len(), 1, "the first fragment");
        assert!(out.in_progress());
        out.push(Frame::Binary(Bytes::from_static(b"op")));
        out.push(Frame::Text("ack".into()));
        let writes = out.next_writes();
        assert!(matches!(writes[0], Write::Fragment { last: true, .. }));
        assert_eq!(
            writes[1..],
            [
                Write::Binary(Bytes::from_static(b"op")),
                Write::Text("ack".into())
            ]
        );
        assert!(!out.in_progress());
        assert!(out.next_writes().is_empty(), "nothing left behind");
    }

    #[test]
    fn a_small_message_of_parts_is_one_fragment() {
        let mut out = Outgoing::default();
        out.push(Frame::Parts {
            text: false,
            parts: vec![Bytes::from_static(&[0, 1, 3]), Bytes::from_static(b"abc")],
        });
        let writes = out.next_writes();
        assert_eq!(
            writes,
            vec![Write::Binary(Bytes::from_static(&[
                0, 1, 3, b'a', b'b', b'c'
            ]))]
        );
        assert!(out.next_writes().is_empty());
    }
}
