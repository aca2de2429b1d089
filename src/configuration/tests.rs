//! Tests of the settings layers: defaults, file, environment, and the origins errors name.

use std::path::{Path, PathBuf};

use super::{Origin, Settings, SettingsError};

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn file_with(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("settings.toml");
    std::fs::write(&path, text).expect("write");
    (dir, path)
}

#[test]
fn defaults_then_file_then_environment() {
    let (_dir, path) =
        file_with("[server]\nport = 9000\nhost = \"0.0.0.0\"\n[auth]\nallow_anonymous = true\n");
    let loaded = Settings::load_layers(
        Some(&path),
        true,
        env(&[("COLLAB__SERVER__PORT", "9100"), ("OTHER", "x")]),
    )
    .expect("loads");
    assert_eq!(loaded.settings.server.port, 9100);
    assert_eq!(loaded.settings.server.host, "0.0.0.0");
    assert_eq!(loaded.settings.database.max_connections, 8);
    assert_eq!(
        loaded.origins["server.port"],
        Origin::Environment {
            variable: "COLLAB__SERVER__PORT".into()
        }
    );
    assert_eq!(
        loaded.origins["server.host"],
        Origin::File {
            path: path.clone(),
            line: Some(3)
        }
    );
    assert_eq!(loaded.origins["database.url"], Origin::Default);
}

#[test]
fn no_file_means_defaults_unless_it_was_asked_for() {
    let missing = Path::new("/nonexistent/settings.toml");
    let loaded = Settings::load_layers(Some(missing), false, env(&[])).expect("defaults");
    assert_eq!(loaded.settings.server.port, 8080);
    let err = Settings::load_layers(Some(missing), true, env(&[])).expect_err("required");
    assert!(matches!(err, SettingsError::FileNotFound { .. }), "{err}");
}

#[test]
fn errors_say_where_the_value_came_from() {
    let (_dir, path) = file_with("[server]\nport = 1\nprot = 2\n");
    let err = Settings::load_layers(Some(&path), true, env(&[])).expect_err("unknown key");
    let text = err.to_string();
    assert!(text.contains("line 3") && text.contains("prot"), "{text}");

    let (_dir, path) = file_with("[persistence]\ndurability = \"fast\"\n");
    let err = Settings::load_layers(Some(&path), true, env(&[])).expect_err("bad enum");
    let text = err.to_string();
    assert!(
        text.contains("full") && text.contains("normal") && text.contains("line 2"),
        "{text}"
    );

    for (variable, value, names) in [
        ("COLLAB__SERVER__PROT", "1", "has no key `prot`"),
        ("COLLAB__SERVR__PORT", "1", "no section [servr]"),
        ("COLLAB__PORT", "1", "SECTION__KEY"),
        ("COLLAB__SERVER__PORT", "many", "whole number"),
        ("COLLAB__SERVER__PORT", "70000", "u16"),
        ("COLLAB__PERSISTENCE__DURABILITY", "fast", "`normal`"),
        ("COLLAB__DATABASE__RUN_MIGRATIONS", "yes", "true or false"),
    ] {
        let err =
            Settings::load_layers(None, false, env(&[(variable, value)])).expect_err(variable);
        let text = err.to_string();
        assert!(
            text.contains(variable) && text.contains(names),
            "{variable}: {text}"
        );
    }

    let (_dir, path) = file_with("[documents]\nsnapshot_every_ops = 0\n");
    let err = Settings::load_layers(Some(&path), true, env(&[])).expect_err("range");
    let text = err.to_string();
    assert!(
        text.contains("documents.snapshot_every_ops") && text.contains("line 2"),
        "{text}"
    );
    let err = Settings::load_layers(
        None,
        false,
        env(&[("COLLAB__SERVER__HEARTBEAT_INTERVAL_SECS", "0")]),
    )
    .expect_err("range");
    assert!(
        err.to_string()
            .contains("COLLAB__SERVER__HEARTBEAT_INTERVAL_SECS"),
        "{err}"
    );
}

#[test]
fn webhook_urls_come_comma_separated_from_the_environment_and_are_checked() {
    let loaded = Settings::load_layers(
        None,
        false,
        env(&[
            (
                "COLLAB__WEBHOOKS__URLS",
                "http://indexer:8000/hook, http://audit/hook",
            ),
            ("COLLAB__WEBHOOKS__DEBOUNCE_MS", "250"),
        ]),
    )
    .expect("loads");
    assert_eq!(
        loaded.settings.webhooks.urls,
        vec!["http://indexer:8000/hook", "http://audit/hook"]
    );
    assert_eq!(loaded.settings.webhooks.debounce_ms, 250);
    assert!(Settings::default().webhooks.urls.is_empty());

    let err = Settings::load_layers(
        None,
        false,
        env(&[("COLLAB__WEBHOOKS__URLS", "http://indexer/hook,not a url")]),
    )
    .expect_err("a bad URL");
    let text = err.to_string();
    for needle in ["webhooks.urls", "COLLAB__WEBHOOKS__URLS", "`not a url`"] {
        assert!(text.contains(needle), "{needle}: {text}");
    }

    let (_dir, path) = file_with("[webhooks]\nurls = [\"http://a/hook\"]\nmax_attempts = 0\n");
    let err = Settings::load_layers(Some(&path), true, env(&[])).expect_err("range");
    let text = err.to_string();
    assert!(
        text.contains("webhooks.max_attempts") && text.contains("line 3"),
        "{text}"
    );
}

#[test]
fn the_metrics_key_defaults_to_empty_is_set_from_the_environment_and_masked() {
    let loaded = Settings::load_layers(None, false, env(&[])).expect("defaults");
    assert_eq!(loaded.settings.metrics.bearer_key, "");
    let (_dir, path) = file_with("[metrics]\nbearer_key = \"from-the-file-0123\"\n");
    let loaded = Settings::load_layers(
        Some(&path),
        true,
        env(&[("COLLAB__METRICS__BEARER_KEY", "from-the-env-0123")]),
    )
    .expect("loads");
    assert_eq!(loaded.settings.metrics.bearer_key, "from-the-env-0123");
    assert_eq!(
        loaded.origins["metrics.bearer_key"],
        Origin::Environment {
            variable: "COLLAB__METRICS__BEARER_KEY".into()
        }
    );
    let redacted = loaded.settings.redacted();
    assert_eq!(redacted.metrics.bearer_key, "***");
    assert_eq!(Settings::default().redacted().metrics.bearer_key, "");
}
