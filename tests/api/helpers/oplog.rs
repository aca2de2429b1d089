//! The op log from outside the server: rows written into the database, tokens in a text.

use entity::{client_progress, documents, operations};
use sea_orm::{ActiveValue::Set, DatabaseConnection, EntityTrait};

use super::peer::Editor;

/// Every distinct token `<...>` in `text`, with how often it occurs.
pub fn token_counts(text: &str) -> std::collections::HashMap<String, usize> {
    let mut counts = std::collections::HashMap::new();
    for token in text.split('<').skip(1) {
        if let Some(end) = token.find('>') {
            *counts.entry(format!("<{}>", &token[..end])).or_insert(0) += 1;
        }
    }
    counts
}

/// Writes a document row and logged ops `seqs` (one appended character
/// each, written by client `w` with `client_op_id = seq`) straight into the
/// database, as a server would have; returns the document's text.
pub async fn write_log(
    db: &DatabaseConnection,
    document_id: &str,
    seqs: impl Iterator<Item = i64>,
) -> String {
    documents::Entity::insert(documents::ActiveModel {
        id: Set(document_id.into()),
        epoch: Set("e1".into()),
        created_at: Set(chrono::Utc::now()),
    })
    .exec_without_returning(db)
    .await
    .expect("insert document");
    let editor = Editor::new();
    let mut rows = Vec::new();
    let mut text = String::new();
    let mut last = None;
    for seq in seqs {
        last = Some(seq);
        let c = char::from(b'a' + (seq % 26) as u8).to_string();
        rows.push(operations::ActiveModel {
            document_id: Set(document_id.into()),
            server_seq: Set(seq),
            client_id: Set("w".into()),
            client_op_id: Set(seq),
            update: Set(editor.append(&c)),
            subject: Set(None),
            created_at: Set(chrono::Utc::now()),
        });
        text.push_str(&c);
    }
    while !rows.is_empty() {
        let rest = rows.split_off(rows.len().min(500));
        operations::Entity::insert_many(std::mem::replace(&mut rows, rest))
            .exec_without_returning(db)
            .await
            .expect("insert ops");
    }
    // What a commit writes with its ops: the client's highest op.
    if let Some(seq) = last {
        client_progress::Entity::insert(client_progress::ActiveModel {
            document_id: Set(document_id.into()),
            client_id: Set("w".into()),
            client_op_id: Set(seq),
            server_seq: Set(seq),
            subject: Set(None),
        })
        .exec_without_returning(db)
        .await
        .expect("insert progress");
    }
    text
}
