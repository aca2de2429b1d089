//! TCP settings of accepted connections.

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
