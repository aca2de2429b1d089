//! The stand-alone server: binds the listener, mounts the engine, handles
//! signals. `main.rs` is a thin wrapper around [`Application`].

use std::net::TcpListener;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{App, HttpServer, middleware};

use crate::configuration::Settings;
use crate::engine::{CollabEngine, EngineError};
use crate::http;
use crate::transport::{raise_file_limit, tcp_nodelay};

/// How long the HTTP server waits for connections still open once the
/// engine has closed its sessions.
const HTTP_GRACE: Duration = Duration::from_secs(1);

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: String,
        source: std::io::Error,
    },
}

/// A built, not yet running, server.
pub struct Application {
    port: u16,
    server: Server,
    engine: CollabEngine,
    shutdown_timeout: Duration,
}

/// Stops a running [`Application`] from elsewhere (tests, signal handler).
#[derive(Clone)]
pub struct ApplicationHandle {
    server: ServerHandle,
    engine: CollabEngine,
    shutdown_timeout: Duration,
}

impl ApplicationHandle {
    /// Graceful shutdown: flush and snapshot every document, close the
    /// sockets with 1001, then stop the HTTP server.
    pub async fn shutdown(&self) {
        // The engine gets the budget minus the second the HTTP server keeps
        // for flushing the sockets it just closed.
        let budget = self
            .shutdown_timeout
            .saturating_sub(HTTP_GRACE)
            .max(Duration::from_millis(500));
        if tokio::time::timeout(budget, self.engine.shutdown())
            .await
            .is_err()
        {
            log::error!(
                "engine shutdown did not finish within {:?}; stopping anyway",
                self.shutdown_timeout
            );
        }
        self.server.stop(true).await;
    }
}

impl Application {
    /// Connects the database, starts the engine and binds the listener
    /// (port 0 picks a free port; see [`Application::port`]).
    pub async fn build(settings: Settings) -> Result<Application, StartupError> {
        raise_file_limit(settings.limits.max_connections);
        let engine = CollabEngine::from_settings(&settings).await?;
        let address = format!("{}:{}", settings.server.host, settings.server.port);
        let listener = TcpListener::bind(&address).map_err(|source| StartupError::Bind {
            address: address.clone(),
            source,
        })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartupError::Bind {
                address: address.clone(),
                source,
            })?
            .port();
        let shutdown_timeout = Duration::from_secs(settings.server.shutdown_timeout_secs);
        let mounted = engine.clone();
        let mut server = HttpServer::new(move || {
            App::new()
                // The query string is left out: it can hold a token.
                .wrap(
                    middleware::Logger::new("%a \"%{request}xi\" %s %Dms")
                        .custom_request_replace("request", |req| {
                            format!("{} {}", req.method(), req.path())
                        }),
                )
                .configure(http::health::configure)
                .configure(mounted.configure())
        })
        .on_connect(tcp_nodelay)
        .disable_signals()
        .shutdown_timeout(HTTP_GRACE.as_secs());
        if settings.server.workers > 0 {
            server = server.workers(settings.server.workers);
        }
        let server = server
            .listen(listener)
            .map_err(|source| StartupError::Bind {
                address: address.clone(),
                source,
            })?
            .run();
        log::info!("collab-engine listening on {}:{port}", settings.server.host);
        Ok(Application {
            port,
            server,
            engine,
            shutdown_timeout,
        })
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The engine behind the server.
    pub fn engine(&self) -> &CollabEngine {
        &self.engine
    }

    /// A handle to stop the server gracefully.
    pub fn handle(&self) -> ApplicationHandle {
        ApplicationHandle {
            server: self.server.handle(),
            engine: self.engine.clone(),
            shutdown_timeout: self.shutdown_timeout,
        }
    }

    /// Serves until SIGINT or SIGTERM, then shuts down gracefully.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handle = self.handle();
        actix_web::rt::spawn(async move {
            wait_for_signal().await;
            log::info!("signal received: shutting down gracefully");
            handle.shutdown().await;
        });
        self.server.await?;
        log::info!("collab-engine stopped");
        Ok(())
    }

    /// Serves without signal handling (for tests that stop it through
    /// [`Application::handle`]).
    pub async fn run(self) -> std::io::Result<()> {
        self.server.await
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                log::warn!("cannot listen for SIGTERM ({e}); only Ctrl-C stops the server");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
