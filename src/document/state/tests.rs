//! Unit tests of the document state: restore, gaps, duplicates, redundancy, recovery plans.
use super::*;
use yrs::{GetString, Text};

/// A writer that produces real, causally chained Yjs updates.
struct Writer {
    doc: Doc,
}

impl Writer {
    fn new(client: u64) -> Self {
        Writer {
            doc: Doc::with_client_id(client),
        }
    }
    fn insert(&self, s: &str) -> Vec<u8> {
        let t = self.doc.get_or_insert_text("t");
        let mut txn = self.doc.transact_mut();
        let len = t.len(&txn);
        t.insert(&mut txn, len, s);
        txn.encode_update_v1()
    }
}

fn logged(seq: u64, op: u64, update: Vec<u8>) -> CommittedOp {
    CommittedOp::new(seq, Arc::from("c"), op, Bytes::from(update), None)
}

fn text(state: &DocumentState) -> String {
    state
        .doc()
        .get_or_insert_text("t")
        .get_string(&state.doc().transact())
}

fn commit(state: &mut DocumentState, client: &str, op: u64, raw: Vec<u8>) {
    let seq = state.head() + 1;
    state.apply_committed(&[Arc::new(CommittedOp::new(
        seq,
        Arc::from(client),
        op,
        Bytes::from(raw),
        Some(1),
    ))]);
}

#[test]
fn restores_snapshot_plus_log_in_order() {
    let w = Writer::new(1);
    let a = w.insert("a");
    let snapshot = crdt::encode_full_state(&w.doc);
    let b = w.insert("b");
    let c = w.insert("c");
    let state = DocumentState::restore(
        "e",
        Some((1, &snapshot)),
        vec![logged(2, 2, b), logged(3, 3, c)],
        100,
    )
    .expect("restores");
    drop(a);
    assert_eq!(state.head(), 3);
    assert_eq!(state.snapshot_seq(), 1);
    assert_eq!(text(&state), "abc");
}

#[test]
fn refuses_a_gap_in_the_log() {
    let w = Writer::new(1);
    let a = w.insert("a");
    let b = w.insert("b");
    let err = DocumentState::restore("e", None, vec![logged(1, 1, a), logged(3, 2, b)], 100)
        .err()
        .expect("gap refused");
    assert!(matches!(
        err,
        RestoreError::Gap {
            expected: 2,
            found: 3
        }
    ));
    let w = Writer::new(1);
    let err = DocumentState::restore("e", None, vec![logged(2, 1, w.insert("x"))], 100)
        .err()
        .expect("log must start right after the snapshot");
    assert!(matches!(
        err,
        RestoreError::Gap {
            expected: 1,
            found: 2
        }
    ));
}

#[test]
fn refuses_an_undecodable_snapshot() {
    let err = DocumentState::restore("e", Some((5, &[0xff, 0xff, 0xff])), vec![], 100)
        .err()
        .expect("bad snapshot refused");
    assert!(matches!(
        err,
        RestoreError::BadSnapshot { server_seq: 5, .. }
    ));
}

#[test]
fn out_of_order_updates_survive_a_snapshot_round_trip() {
    let w = Writer::new(7);
    let first = w.insert("x");
    let second = w.insert("y");
    let mut state = DocumentState::restore("e", None, vec![], 100).expect("empty");
    // The second update arrives first: yrs keeps it pending.
    commit(&mut state, "c", 1, second);
    assert_eq!(text(&state), "");
    // A snapshot now must still carry the pending update.
    let snapshot = crdt::encode_full_state(state.doc());
    let mut restored =
        DocumentState::restore("e", Some((1, &snapshot)), vec![], 100).expect("restores");
    commit(&mut restored, "c", 2, first);
    assert_eq!(text(&restored), "xy");
}

#[test]
fn duplicates_are_classified_against_log_and_pipeline() {
    let w = Writer::new(1);
    let mut state = DocumentState::restore("e", None, vec![], 100).expect("empty");
    let client: Arc<str> = Arc::from("c");
    assert_eq!(state.marks_mut().session_joined(&client, None), None);
    assert_eq!(state.classify("c", 1), OpDisposition::Fresh);
    state.marks_mut().reserve(&client, 1);
    assert_eq!(state.classify("c", 1), OpDisposition::DuplicateInFlight);
    assert_eq!(state.classify("c", 2), OpDisposition::Fresh);
    commit(&mut state, "c", 1, w.insert("a"));
    assert_eq!(
        state.classify("c", 1),
        OpDisposition::Duplicate {
            server_seq: Some(1)
        }
    );
    // Gaps in client_op_id are allowed; anything at or below the highest is a duplicate.
    commit(&mut state, "c", 5, w.insert("b"));
    assert_eq!(
        state.classify("c", 3),
        OpDisposition::Duplicate { server_seq: None }
    );
    assert_eq!(
        state.classify("c", 1),
        OpDisposition::Duplicate {
            server_seq: Some(1)
        }
    );
    assert_eq!(state.classify("c", 6), OpDisposition::Fresh);
    state.marks_mut().reserve(&client, 6);
    state.marks_mut().clear_reservations();
    assert_eq!(state.classify("c", 6), OpDisposition::Fresh);
}

#[test]
fn marks_come_from_the_log_and_are_forgotten_when_unused() {
    let mut state = DocumentState::restore("e", None, vec![], 100).expect("empty");
    let client: Arc<str> = Arc::from("c");
    assert_eq!(
        state.marks_mut().session_joined(
            &client,
            Some(&crate::store::ClientHistory {
                client_op_id: 9,
                server_seq: 4,
                subject: None
            })
        ),
        Some(9)
    );
    assert_eq!(
        state.classify("c", 9),
        OpDisposition::Duplicate {
            server_seq: Some(4)
        }
    );
    state.marks_mut().session_left("c");
    assert!(!state.marks().knows("c"));
    assert_eq!(state.marks().len(), 0);
}

#[test]
fn redundancy_is_judged_against_the_committed_state() {
    let w = Writer::new(3);
    let first = w.insert("a");
    let second = w.insert("b");
    let mut state = DocumentState::restore("e", None, vec![], 100).expect("empty");
    // Building on an update that is not committed yet: not redundant.
    assert!(!state.is_redundant(&second));
    assert!(!state.is_redundant(&first));
    commit(&mut state, "c", 1, first.clone());
    assert!(state.is_redundant(&first), "already applied");
    assert!(!state.is_redundant(&second));
    commit(&mut state, "c", 2, second.clone());
    assert!(state.is_redundant(&second));
    // A deletion is new until applied.
    let delete = {
        let t = w.doc.get_or_insert_text("t");
        let mut txn = w.doc.transact_mut();
        t.remove_range(&mut txn, 0, 1);
        txn.encode_update_v1()
    };
    assert!(!state.is_redundant(&delete));
    commit(&mut state, "c", 3, delete.clone());
    assert!(state.is_redundant(&delete));
    // The whole state, as a reconnecting client sends it back: redundant.
    assert!(state.is_redundant(&crdt::encode_full_state(&w.doc)));
}

#[test]
fn recovery_plans_follow_the_rules() {
    let w = Writer::new(1);
    let ops: Vec<_> = (1..=5).map(|i| logged(i, i, w.insert("z"))).collect();
    let state = DocumentState::restore("e", None, ops, 3).expect("restores");
    assert!(matches!(
        state.plan_recovery(None, None, 3),
        RecoveryPlan::Snapshot
    ));
    assert!(matches!(
        state.plan_recovery(Some(4), Some("other"), 3),
        RecoveryPlan::Snapshot
    ));
    assert!(matches!(
        state.plan_recovery(Some(6), Some("e"), 3),
        RecoveryPlan::Snapshot
    ));
    assert!(matches!(
        state.plan_recovery(Some(1), Some("e"), 3),
        RecoveryPlan::Snapshot
    ));
    match state.plan_recovery(Some(2), Some("e"), 3) {
        RecoveryPlan::Replay(ops) => {
            assert_eq!(
                ops.iter().map(|o| o.server_seq).collect::<Vec<_>>(),
                vec![3, 4, 5]
            )
        }
        other => panic!("expected replay, got {other:?}"),
    }
    match state.plan_recovery(Some(5), None, 3) {
        RecoveryPlan::Replay(ops) => assert!(ops.is_empty()),
        other => panic!("expected empty replay, got {other:?}"),
    }
    // A larger replay limit than the memory tail holds reads from the log.
    match state.plan_recovery(Some(1), Some("e"), 10) {
        RecoveryPlan::ReplayFromLog { after: 1, upto: 5 } => {}
        other => panic!("expected a log replay, got {other:?}"),
    }
}
