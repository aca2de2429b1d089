//! The `docs` claim of a token: which documents it grants, and how.

use std::collections::BTreeMap;

use crate::vocabulary::Permission;

/// Document id, or a prefix ending in `*`, to the permission it grants.
pub type Grants = BTreeMap<String, Permission>;

/// What `grants` allow on `document_id`: the most specific entry that
/// matches wins (the exact id, else the longest prefix); `None` when none
/// matches.
pub fn permission_for(grants: &Grants, document_id: &str) -> Option<Permission> {
    if let Some(exact) = grants.get(document_id) {
        return Some(*exact);
    }
    grants
        .iter()
        .filter_map(|(pattern, permission)| {
            let prefix = pattern.strip_suffix('*')?;
            document_id
                .starts_with(prefix)
                .then_some((prefix.len(), *permission))
        })
        .max_by_key(|(length, _)| *length)
        .map(|(_, permission)| permission)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants(entries: &[(&str, Permission)]) -> Grants {
        entries.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn the_most_specific_match_wins() {
        let g = grants(&[
            ("notes-*", Permission::Write),
            ("notes-secret-*", Permission::Read),
            ("handbook", Permission::Read),
            ("*", Permission::Read),
        ]);
        assert_eq!(permission_for(&g, "notes-1"), Some(Permission::Write));
        assert_eq!(permission_for(&g, "notes-secret-1"), Some(Permission::Read));
        assert_eq!(permission_for(&g, "handbook"), Some(Permission::Read));
        assert_eq!(permission_for(&g, "anything"), Some(Permission::Read));
        let exact = grants(&[("a*", Permission::Read), ("a*b", Permission::Write)]);
        assert_eq!(
            permission_for(&exact, "a*b"),
            Some(Permission::Write),
            "exact beats prefix"
        );
        assert_eq!(
            permission_for(&grants(&[("team/*", Permission::Write)]), "team/doc:1"),
            Some(Permission::Write)
        );
        assert_eq!(
            permission_for(&grants(&[("handbook", Permission::Read)]), "handbook-2"),
            None
        );
        assert_eq!(permission_for(&Grants::new(), "x"), None);
    }
}
