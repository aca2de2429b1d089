//! Document ids as editors name their rooms: slashes, colons, spaces and
//! non-ASCII letters, raw or percent-encoded in the URL, name one document,
//! stored exactly as decoded.

use entity::documents;
use sea_orm::EntityTrait;

use crate::helpers::{Backend, Peer, spawn_app};

crate::on_both_backends!(names_with_slashes_colons_spaces_and_accents_are_one_document_each);

/// A writer on the raw path and a reader on the percent-encoded one (as
/// `encodeURIComponent` makes it) share the document; the stored id is the
/// decoded name; fault injection finds it under the same name.
/// The longest name, 512 bytes, is stored whole on both databases.
async fn names_with_slashes_colons_spaces_and_accents_are_one_document_each(backend: Backend) {
    let app = spawn_app(backend).await;
    let base = format!("ws://127.0.0.1:{}", app.port);
    let longest = format!("{}/{}", "é".repeat(200), "x".repeat(111));
    let longest_raw = format!("{}/{}", "%C3%A9".repeat(200), "x".repeat(111));
    let longest_encoded = format!("{}%2F{}", "%C3%A9".repeat(200), "x".repeat(111));
    for (raw, encoded, name) in [
        (
            longest_raw.as_str(),
            longest_encoded.as_str(),
            longest.as_str(),
        ),
        ("team/doc:1", "team%2Fdoc%3A1", "team/doc:1"),
        ("notes/2026-12-01", "notes%2F2026-12-01", "notes/2026-12-01"),
        ("Caf%C3%A9%20menu", "Caf%C3%A9%20menu", "Café menu"),
        ("100%25%20done", "100%25%20done", "100% done"),
    ] {
        let mut writer = Peer::join_url(&format!("{base}/ws/{raw}"), "writer").await;
        assert_eq!(writer.welcome["document_id"], name);
        writer.insert(0, name).await;
        writer.sync_to(1).await;
        let reader = Peer::join_url(&format!("{base}/ws/{encoded}"), "reader").await;
        assert_eq!(reader.welcome["document_id"], name);
        assert_eq!(reader.text(), name, "{encoded} is the document of {raw}");
        assert_eq!(app.logged_ops(name).await.len(), 1);
    }
    let mut stored: Vec<String> = documents::Entity::find()
        .all(app.engine.store().connection())
        .await
        .expect("documents")
        .into_iter()
        .map(|row| row.id)
        .collect();
    stored.sort();
    let mut expected = vec![
        "100% done",
        "Café menu",
        "notes/2026-12-01",
        "team/doc:1",
        &longest,
    ];
    expected.sort();
    assert_eq!(stored, expected);
    assert_eq!(longest.len(), 512);
    // The drills find the document under the same name (404 otherwise).
    assert_eq!(app.inject("team/doc:1", "panic").await, 200);
    assert_eq!(app.inject("team/doc:2", "panic").await, 404);
}
