//! The server binary as a child process (`ServerProcess`), for signals and `kill -9`.

use std::time::Duration;

/// The server binary as a child process (for signals and `kill -9`).
pub struct ServerProcess {
    child: std::process::Child,
    pub port: u16,
    /// Everything the server logged so far.
    pub log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl ServerProcess {
    /// Starts `collab-engine --config settings.toml` with `env` overrides
    /// on port 0 and waits until it listens.
    pub fn start(database_url: &str, env: &[(&str, &str)]) -> ServerProcess {
        use std::io::BufRead;
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_collab-engine"));
        command
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["--config", "settings.toml"])
            .env_remove("RUST_LOG")
            .env("COLLAB__SERVER__PORT", "0")
            .env("COLLAB__SERVER__WORKERS", "2")
            .env("COLLAB__DATABASE__URL", database_url)
            .env("COLLAB__LOGGING__LEVEL", "info")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("start collab-engine");
        let stderr = child.stderr.take().expect("stderr");
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let lines = log.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(rest) = line.split("collab-engine listening on 127.0.0.1:").nth(1) {
                    let _ = port_tx.send(rest.trim().parse::<u16>().ok());
                }
                if let Ok(mut lines) = lines.lock() {
                    lines.push(line);
                }
            }
        });
        let port = port_rx
            .recv_timeout(Duration::from_secs(30))
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("server did not start: {:?}", log.lock().map(|l| l.clone())));
        ServerProcess { child, port, log }
    }

    pub fn ws_url(&self, document_id: &str) -> String {
        format!("ws://127.0.0.1:{}/ws/{document_id}", self.port)
    }

    /// The server's resident memory now, in bytes (from /proc).
    pub fn rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("read /proc status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .expect("VmRSS")
    }

    /// `kill -9`.
    pub fn kill(&mut self) {
        self.child.kill().expect("SIGKILL");
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for the exit; returns its code and how long it took.
    pub fn terminate(&mut self) -> (Option<i32>, Duration) {
        let started = std::time::Instant::now();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(status.success());
        let code = self.child.wait().expect("wait").code();
        (code, started.elapsed())
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
