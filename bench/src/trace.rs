//! The automerge-paper editing trace (`{startContent, endContent, txns:
//! [{patches: [[pos, numDeleted, inserted]]}]}`, positions in UTF-16 code
//! units as in JavaScript) turned into one Yjs update per patch.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

use serde::Deserialize;
use yrs::block::ClientID;
use yrs::{Doc, OffsetKind, Options, Text, Transact};

/// One patch: at `pos`, delete `del` units, then insert `ins`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Patch(pub usize, pub usize, pub String);

#[derive(Deserialize)]
struct Txn {
    patches: Vec<Patch>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TraceFile {
    start_content: String,
    end_content: String,
    txns: Vec<Txn>,
}

/// The patches of a trace, in order.
pub struct Trace {
    pub patches: Vec<Patch>,
    pub end_content: String,
}

/// Reads a trace file; `.gz` files are decompressed with `gzip -dc`.
pub fn load(path: &Path) -> Result<Trace, String> {
    let name = path.display();
    let bytes = if path.extension().is_some_and(|e| e == "gz") {
        let mut child = Command::new("gzip")
            .arg("-dc")
            .arg(path)
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("gzip -dc {name}: {e}"))?;
        let mut out = Vec::new();
        child
            .stdout
            .take()
            .ok_or("gzip: no stdout")?
            .read_to_end(&mut out)
            .map_err(|e| format!("gzip -dc {name}: {e}"))?;
        let status = child.wait().map_err(|e| format!("gzip: {e}"))?;
        if !status.success() {
            return Err(format!("gzip -dc {name}: {status}"));
        }
        out
    } else {
        std::fs::read(path).map_err(|e| format!("{name}: {e}"))?
    };
    let file: TraceFile = serde_json::from_slice(&bytes).map_err(|e| format!("{name}: {e}"))?;
    if !file.start_content.is_empty() {
        return Err(format!("{name}: startContent is not empty (not supported)"));
    }
    Ok(Trace {
        patches: file.txns.into_iter().flat_map(|t| t.patches).collect(),
        end_content: file.end_content,
    })
}

/// The text after applying `patches` to an empty string (UTF-16 positions).
pub fn expected_text(patches: &[Patch]) -> Result<String, String> {
    let mut text: Vec<u16> = Vec::new();
    for (i, Patch(pos, del, ins)) in patches.iter().enumerate() {
        if pos + del > text.len() {
            return Err(format!("patch {i} is out of range"));
        }
        text.splice(*pos..pos + del, ins.encode_utf16());
    }
    String::from_utf16(&text).map_err(|e| e.to_string())
}

/// A document configured like a JavaScript `Y.Doc` (UTF-16 offsets).
pub fn new_doc(client_id: u64) -> Doc {
    let mut options = Options::with_client_id(ClientID::new(client_id));
    options.offset_kind = OffsetKind::Utf16;
    Doc::with_options(options)
}

/// One Yjs v1 update per patch, made by client `client_id` on the `Y.Text`
/// `content`; returns the updates and the resulting text.
pub fn updates(patches: &[Patch], client_id: u64) -> Result<(Vec<Vec<u8>>, String), String> {
    let doc = new_doc(client_id);
    let text = doc.get_or_insert_text("content");
    let mut out = Vec::with_capacity(patches.len());
    for (i, Patch(pos, del, ins)) in patches.iter().enumerate() {
        let mut txn = doc.transact_mut();
        let len = text.len(&txn) as usize;
        if pos + del > len {
            return Err(format!("patch {i}: {pos}+{del} beyond the length {len}"));
        }
        if *del > 0 {
            text.remove_range(&mut txn, *pos as u32, *del as u32);
        }
        if !ins.is_empty() {
            text.insert(&mut txn, *pos as u32, ins);
        }
        out.push(txn.encode_update_v1());
    }
    let result = {
        use yrs::GetString;
        text.get_string(&doc.transact())
    };
    Ok((out, result))
}

/// The text `content` of a Yjs v1 state.
pub fn text_of_state(state: &[u8]) -> Result<String, String> {
    use yrs::GetString;
    use yrs::Update;
    use yrs::updates::decoder::Decode;
    let doc = new_doc(1);
    let text = doc.get_or_insert_text("content");
    let update = Update::decode_v1(state).map_err(|e| format!("undecodable state: {e}"))?;
    doc.transact_mut()
        .apply_update(update)
        .map_err(|e| format!("state does not apply: {e}"))?;
    Ok(text.get_string(&doc.transact()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::ReadTxn;

    fn p(pos: usize, del: usize, ins: &str) -> Patch {
        Patch(pos, del, ins.to_string())
    }

    #[test]
    fn updates_and_the_model_agree() {
        let patches = [
            p(0, 0, "hello"),
            p(5, 0, " world"),
            p(0, 1, "H"),
            p(5, 6, ""),
            p(5, 0, ", 😀 x"),
        ];
        let expected = expected_text(&patches).unwrap();
        assert_eq!(expected, "Hello, 😀 x");
        let (updates, text) = updates(&patches, 7).unwrap();
        assert_eq!(updates.len(), 5);
        assert_eq!(text, expected);
        // Applying the updates to another document gives the same text.
        let other = new_doc(8);
        let t = other.get_or_insert_text("content");
        for u in &updates {
            use yrs::updates::decoder::Decode;
            other
                .transact_mut()
                .apply_update(yrs::Update::decode_v1(u).unwrap())
                .unwrap();
        }
        use yrs::GetString;
        assert_eq!(t.get_string(&other.transact()), expected);
        let state = other
            .transact()
            .encode_state_as_update_v1(&Default::default());
        assert_eq!(text_of_state(&state).unwrap(), expected);
    }

    #[test]
    fn out_of_range_patches_are_errors() {
        assert!(expected_text(&[p(1, 0, "x")]).is_err());
        assert!(updates(&[p(0, 1, "")], 1).is_err());
    }

    #[test]
    fn trace_json_parses() {
        let dir = std::env::temp_dir().join(format!("trace-{}", fastrand::u32(..)));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("t.json");
        std::fs::write(
            &f,
            r#"{"startContent":"","endContent":"ab","txns":[{"patches":[[0,0,"a"]]},{"patches":[[1,0,"b"]]}]}"#,
        )
        .unwrap();
        let t = load(&f).unwrap();
        assert_eq!(t.patches, vec![p(0, 0, "a"), p(1, 0, "b")]);
        assert_eq!(expected_text(&t.patches).unwrap(), t.end_content);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
