//! The HTTP API: the only code that knows HTTP and JSON wire shapes.

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::engine::Engine;

/// The application's routes over `engine`.
pub fn router(engine: Arc<Engine>) -> Router {
    Router::new().route("/health", get(|| async { "ok" })).with_state(engine)
}

/// Serves the API on `listener` until `shutdown`, then finishes the requests
/// in flight.
pub async fn run(listener: TcpListener, engine: Arc<Engine>, shutdown: CancellationToken) -> std::io::Result<()> {
    axum::serve(listener, router(engine)).with_graceful_shutdown(shutdown.cancelled_owned()).await
}
