//! The API's one error type. Each variant maps to a stable `extensions.code`;
//! internal causes are logged with an id and never sent to the caller.

use std::sync::Arc;

use async_graphql::ErrorExtensions;

#[derive(Clone, Debug)]
pub enum ApiError {
    /// Input that can never succeed; `field` names the offending input field.
    BadInput {
        field: String,
        message: String,
    },
    Unauthenticated,
    /// UNAUTHENTICATED with a message of its own (a refused login).
    UnauthenticatedBecause(String),
    Forbidden(String),
    /// Also what a caller gets for something outside its reach.
    NotFound(String),
    /// A uniqueness rule decided against the input.
    Conflict {
        field: String,
        message: String,
    },
    /// The input is well formed but the current state forbids the change.
    FailedPrecondition(String),
    /// Too many attempts: try again after `retry_after`.
    RateLimited {
        message: String,
        retry_after: std::time::Duration,
    },
    Internal(Arc<anyhow::Error>),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn bad_input(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::BadInput {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn conflict(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Conflict {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn not_found(what: &str) -> Self {
        Self::NotFound(format!("{what} not found"))
    }

    pub fn precondition(message: impl Into<String>) -> Self {
        Self::FailedPrecondition(message.into())
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::BadInput { .. } => "BAD_USER_INPUT",
            Self::Unauthenticated | Self::UnauthenticatedBecause(_) => "UNAUTHENTICATED",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::NotFound(_) => "NOT_FOUND",
            Self::Conflict { .. } => "CONFLICT",
            Self::FailedPrecondition(_) => "FAILED_PRECONDITION",
            Self::RateLimited { .. } => "RATE_LIMITED",
            Self::Internal(_) => "INTERNAL",
        }
    }

    /// Maps a unique violation on `constraint` to a conflict on `field`;
    /// any other database error stays internal.
    pub fn on_constraint(error: sqlx::Error, constraint: &str, field: &str, message: &str) -> Self {
        match &error {
            sqlx::Error::Database(db) if db.constraint() == Some(constraint) => {
                Self::conflict(field, message)
            }
            _ => error.into(),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        Self::Internal(Arc::new(error.into()))
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(error: anyhow::Error) -> Self {
        Self::Internal(Arc::new(error))
    }
}

/// What a caller is told of an error: its code, message and field (and
/// when to try again); an internal cause is logged, never told.
pub struct Told {
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn told(self) -> Told {
        let code = self.code();
        let retry_after = match &self {
            ApiError::RateLimited { retry_after, .. } => Some(retry_after_seconds(*retry_after)),
            _ => None,
        };
        let (message, field) = match self {
            ApiError::BadInput { field, message } | ApiError::Conflict { field, message } => {
                (message, Some(field))
            }
            ApiError::Unauthenticated => ("authentication required".to_owned(), None),
            ApiError::UnauthenticatedBecause(message)
            | ApiError::Forbidden(message)
            | ApiError::NotFound(message)
            | ApiError::FailedPrecondition(message)
            | ApiError::RateLimited { message, .. } => (message, None),
            ApiError::Internal(cause) => {
                tracing::error!(error = ?cause, "internal error");
                ("internal error".to_owned(), None)
            }
        };
        Told {
            code,
            message,
            field,
            retry_after,
        }
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(error: ApiError) -> Self {
        let told = error.told();
        async_graphql::Error::new(told.message).extend_with(|_, extensions| {
            extensions.set("code", told.code);
            if let Some(field) = told.field {
                extensions.set("field", field);
            }
            if let Some(seconds) = told.retry_after {
                extensions.set("retryAfter", seconds);
            }
        })
    }
}

/// Whole seconds to wait, rounded up: waiting that long always suffices.
pub fn retry_after_seconds(wait: std::time::Duration) -> u64 {
    wait.as_millis().div_ceil(1000) as u64
}
