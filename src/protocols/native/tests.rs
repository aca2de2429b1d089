//! Unit tests of the native protocol: frames in, actions out.

use super::*;
use crate::vocabulary::Permission;

fn joined(access: &Access) -> NativeProtocol {
    let mut protocol = NativeProtocol::for_access(access, ProtocolLimits::default());
    let mut out = Vec::new();
    protocol.on_text(r#"{"type":"hello","protocol":1,"client_id":"c"}"#, &mut out);
    assert!(matches!(out.as_slice(), [Action::Join(_)]), "{out:?}");
    protocol
}

fn texts(out: &[Action]) -> Vec<String> {
    out.iter()
        .map(|a| match a {
            Action::Send(Frame::Text(t)) => t.to_string(),
            other => format!("{other:?}"),
        })
        .collect()
}

#[test]
fn a_read_only_session_gets_forbidden_for_each_op_and_stays_open() {
    let reader = Access {
        permission: Permission::Read,
        ..Access::anonymous()
    };
    let mut protocol = joined(&reader);
    let mut out = Vec::new();
    protocol.on_text(
        r#"{"type":"op","client_op_id":7,"update":"AQEBAAQBB2NvbnRlbnQCaGkA"}"#,
        &mut out,
    );
    assert_eq!(
        texts(&out),
        vec![
            r#"{"type":"error","code":"forbidden","message":"this session may only read the document (the token grants read)","client_op_id":7}"#
        ]
    );
    let mut writer = joined(&Access::anonymous());
    let mut out = Vec::new();
    writer.on_text(
        r#"{"type":"op","client_op_id":7,"update":"AQEBAAQBB2NvbnRlbnQCaGkA"}"#,
        &mut out,
    );
    assert!(
        matches!(
            out.as_slice(),
            [Action::Submit {
                client_op_id: 7,
                ..
            }]
        ),
        "{out:?}"
    );
}

#[test]
fn awareness_over_a_limit_is_invalid_awareness_and_the_session_stays() {
    let limits = ProtocolLimits {
        max_awareness_state_bytes: 8,
    };
    let mut protocol = NativeProtocol::for_access(&Access::anonymous(), limits);
    let mut out = Vec::new();
    protocol.on_text(r#"{"type":"hello","protocol":1,"client_id":"c"}"#, &mut out);
    // One state of 11 bytes: client 42, clock 1, the JSON "123456789".
    let mut raw = vec![1u8, 42, 1, 11];
    raw.extend(br#""123456789""#);
    let frame = format!(
        r#"{{"type":"awareness","update":"{}"}}"#,
        crdt::to_base64(&raw)
    );
    let mut out = Vec::new();
    protocol.on_text(&frame, &mut out);
    let refused = texts(&out);
    assert!(
        refused[0].contains(r#""code":"invalid_awareness""#)
            && refused[0].contains("limits.max_awareness_state_bytes (8)")
            && refused[0].contains("11 bytes"),
        "{refused:?}"
    );
    let mut out = Vec::new();
    let reason = "over limits.max_awareness_clients_per_session (4)".to_owned();
    protocol.on_event(1, DocumentEvent::AwarenessRefused { reason }, &mut out);
    assert_eq!(
        texts(&out),
        vec![
            r#"{"type":"error","code":"invalid_awareness","message":"over limits.max_awareness_clients_per_session (4)"}"#
        ]
    );
    assert_eq!(protocol.state, State::Joined, "the session goes on");
}
