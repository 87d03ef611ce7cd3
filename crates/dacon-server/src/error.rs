//! The one error type of the API: JSON `{"error": "..."}` with the status
//! that fits.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use dacon_core::error::chain;

/// An API error: a status and a message for the colourist.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    /// Extra fields of the body (the frame's current state on a conflict).
    extra: Option<serde_json::Value>,
}

impl ApiError {
    /// An error with `status` and `message`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            extra: None,
        }
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 403.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    /// Adds `current` (the state the client should reload) to the body.
    pub fn with_current(mut self, current: serde_json::Value) -> Self {
        self.extra = Some(current);
        self
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({ "error": self.message });
        if let Some(current) = self.extra {
            body["current"] = current;
        }
        (self.status, Json(body)).into_response()
    }
}

impl From<dacon_core::Error> for ApiError {
    fn from(e: dacon_core::Error) -> Self {
        use dacon_core::Error as E;
        let status = match &e {
            E::UnknownFrame { .. } => StatusCode::NOT_FOUND,
            E::Conflict { .. } | E::Approved { .. } => StatusCode::CONFLICT,
            E::InvalidArgument { .. } => StatusCode::BAD_REQUEST,
            E::Layout { .. } => StatusCode::CONFLICT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, chain(&e))
    }
}

impl From<dacon_neural::Error> for ApiError {
    fn from(e: dacon_neural::Error) -> Self {
        match e {
            dacon_neural::Error::Core(c) => c.into(),
            e => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, chain(&e)),
        }
    }
}

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(r: axum::extract::rejection::JsonRejection) -> Self {
        ApiError::new(r.status(), r.body_text())
    }
}

impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(r: axum::extract::rejection::PathRejection) -> Self {
        ApiError::new(r.status(), r.body_text())
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("internal error: {e}"),
        )
    }
}
