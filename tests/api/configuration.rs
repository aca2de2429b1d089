//! The binary's start-up contract: unusable settings fail with exit code 2
//! and a message naming the key.

use std::process::Command;

fn run_with(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_collab-engine"));
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .env_remove("RUST_LOG");
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().expect("run collab-engine");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn an_invalid_environment_override_names_the_key() {
    let (code, stderr) = run_with(&[], &[("COLLAB__SERVER__PORT", "not-a-port")]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("server.port"), "{stderr}");
}

#[test]
fn an_out_of_range_value_names_the_key() {
    let (code, stderr) = run_with(&[], &[("COLLAB__DOCUMENTS__SNAPSHOT_EVERY_OPS", "0")]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("documents.snapshot_every_ops"), "{stderr}");
}

#[test]
fn a_missing_key_and_an_unknown_key_are_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let shipped = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/settings.toml"))
        .expect("settings.toml");
    let missing = dir.path().join("missing.toml");
    std::fs::write(&missing, shipped.replace("max_connections = 8", "")).expect("write");
    let (code, stderr) = run_with(&["--config", missing.to_str().unwrap()], &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("database.max_connections"), "{stderr}");

    let unknown = dir.path().join("unknown.toml");
    std::fs::write(
        &unknown,
        shipped.replace("port = 8080", "port = 8080\nprot = 1"),
    )
    .expect("write");
    let (code, stderr) = run_with(&["--config", unknown.to_str().unwrap()], &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("prot"), "{stderr}");
}

#[test]
fn a_missing_file_is_reported() {
    let (code, stderr) = run_with(&["--config", "/nonexistent/settings.toml"], &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("/nonexistent/settings.toml"), "{stderr}");
}

#[test]
fn the_shipped_settings_are_valid() {
    let settings = collab_engine::Settings::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/settings.toml"
    )))
    .expect("shipped settings.toml loads");
    assert_eq!(settings.database.url, "sqlite://collab.db");
    assert_eq!(settings.server.port, 8080);
}
