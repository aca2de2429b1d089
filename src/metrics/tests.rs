//! Unit tests of the metrics: what is rendered, and that engines do not share counters.

use std::time::Duration;

use super::{JoinRecovery, Metrics, RefusalKind, SessionRoute, WebhookOutcome};

#[test]
fn every_series_is_rendered_from_the_start_with_help_and_type() {
    let text = Metrics::default().render().expect("renders");
    for (name, kind) in [
        ("collab_ops_committed_total", "counter"),
        ("collab_commits_total", "counter"),
        ("collab_commit_duration_seconds", "histogram"),
        ("collab_commit_batch_ops", "histogram"),
        ("collab_commit_failures_total", "counter"),
        ("collab_documents_loaded", "gauge"),
        ("collab_sessions", "gauge"),
        ("collab_joins_total", "counter"),
        ("collab_document_restarts_total", "counter"),
        ("collab_slow_sessions_dropped_total", "counter"),
        ("collab_refusals_total", "counter"),
        ("collab_http_requests_total", "counter"),
        ("collab_webhook_deliveries_total", "counter"),
    ] {
        assert!(
            text.contains(&format!("# TYPE {name} {kind}\n")),
            "{name}: {text}"
        );
        assert!(text.contains(&format!("# HELP {name} ")), "{name}: {text}");
    }
    for series in [
        "collab_sessions{route=\"native\"} 0",
        "collab_sessions{route=\"yjs\"} 0",
        "collab_joins_total{recovery=\"replay\"} 0",
        "collab_joins_total{recovery=\"snapshot\"} 0",
        "collab_refusals_total{reason=\"rate_limited\"} 0",
        "collab_webhook_deliveries_total{outcome=\"retried\"} 0",
    ] {
        assert!(text.contains(series), "{series}: {text}");
    }
    assert!(!text.contains("# EOF"), "Prometheus text, not OpenMetrics");
}

#[test]
fn events_move_their_series() {
    let metrics = Metrics::default();
    metrics.commit(3, true);
    metrics.commit_took(Duration::from_millis(2));
    metrics.joined(JoinRecovery::Replay);
    metrics.refused(RefusalKind::Unauthorized);
    metrics.webhook_delivery(WebhookOutcome::Delivered);
    metrics.http_request("/ws/{document_id:.*}", 101);
    let session = metrics.session_opened(SessionRoute::Yjs);
    let document = metrics.document_loaded();
    let text = metrics.render().expect("renders");
    for series in [
        "collab_ops_committed_total 3",
        "collab_commits_total 1",
        "collab_snapshots_written_total 1",
        "collab_commit_batch_ops_count 1",
        "collab_commit_batch_ops_bucket{le=\"4\"} 1",
        "collab_commit_duration_seconds_count 1",
        "collab_joins_total{recovery=\"replay\"} 1",
        "collab_refusals_total{reason=\"unauthorized\"} 1",
        "collab_webhook_deliveries_total{outcome=\"delivered\"} 1",
        "collab_http_requests_total{route=\"/ws/{document_id:.*}\",status=\"101\"} 1",
        "collab_sessions{route=\"yjs\"} 1",
        "collab_documents_loaded 1",
    ] {
        assert!(text.contains(series), "{series}: {text}");
    }
    drop((session, document));
    let text = metrics.render().expect("renders");
    assert!(text.contains("collab_sessions{route=\"yjs\"} 0"), "{text}");
    assert!(text.contains("collab_documents_loaded 0"), "{text}");
    assert_eq!(metrics.snapshot().documents_loaded, 1, "loads are counted");
}

#[test]
fn engines_count_apart_and_failing_commits_clear() {
    let (a, b) = (Metrics::default(), Metrics::default());
    a.commit(1, false);
    a.commit_failed();
    assert_eq!((a.snapshot().commits, b.snapshot().commits), (1, 0));
    assert!(a.commits_failing() && !b.commits_failing());
    a.commits_recovered();
    assert!(!a.commits_failing());
    a.commit_failed();
    a.commit(1, false);
    assert!(!a.commits_failing());
    assert_eq!(a.snapshot().commit_failures, 2);
}
