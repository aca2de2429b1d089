//! TCP settings of accepted connections, and the open-file limit they need.

/// For `HttpServer::on_connect`: turns Nagle's algorithm off on every
/// accepted TCP connection. Acks and ops are small frames that must leave
/// at once; with Nagle on, an ack can wait for the client's delayed ACK
/// (tens of milliseconds). Every frame a session gets from one commit is
/// written in one go anyway, so small writes do not multiply.
///
/// ```no_run
/// # use actix_web::{App, HttpServer};
/// # fn server() -> std::io::Result<()> {
/// let server = HttpServer::new(|| App::new()).on_connect(collab_engine::engine::tcp_nodelay);
/// # Ok(()) }
/// ```
pub fn tcp_nodelay(connection: &dyn std::any::Any, _extensions: &mut actix_web::dev::Extensions) {
    if let Some(tcp) = connection.downcast_ref::<actix_web::rt::net::TcpStream>()
        && let Err(e) = tcp.set_nodelay(true)
    {
        log::debug!("cannot set TCP_NODELAY: {e}");
    }
}

/// File descriptors kept for everything that is not a WebSocket: the
/// listener, database connections, HTTP requests, log files.
const SPARE_DESCRIPTORS: u64 = 256;

/// Raises this process's soft limit of open files to its hard limit, and
/// warns when `max_connections` WebSockets (plus spare descriptors) would
/// not fit: the server would then run out of descriptors (EMFILE) before
/// it refuses connections with 503. Answers the soft limit now.
pub fn raise_file_limit(max_connections: usize) -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write `limit`.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        log::warn!(
            "cannot read the open-file limit: {}",
            std::io::Error::last_os_error()
        );
        return None;
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit = raised;
        }
    }
    let soft: u64 = limit.rlim_cur;
    let needed = max_connections as u64 + SPARE_DESCRIPTORS;
    if soft < needed {
        log::warn!(
            "limits.max_connections = {max_connections}, but this process may open only {soft} \
             files: the server would run out of file descriptors first; lower \
             limits.max_connections below {} or raise the limit (ulimit -n, LimitNOFILE=)",
            soft.saturating_sub(SPARE_DESCRIPTORS)
        );
    } else {
        log::debug!("open-file limit {soft}");
    }
    Some(soft)
}
