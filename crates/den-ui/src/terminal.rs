//! The terminal websocket (filled in next).

use axum::body::Body;
use axum::http::{Response, StatusCode};

pub async fn upgrade() -> Response<Body> {
    crate::server::text(StatusCode::NOT_IMPLEMENTED, "not yet")
}
