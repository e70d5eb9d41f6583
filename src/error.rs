//! The application error: one exhaustive enum with a stable kebab-case code, a
//! message that is safe to show, and an HTTP status. `web/` renders it (as an
//! OperationOutcome on FHIR routes, problem+json elsewhere); the cause of a 5xx
//! is logged once and never reaches the body.

use crate::db::DbError;

/// One thing wrong with a body, at one element (an OperationOutcome issue).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElementIssue {
    /// The element, as a FHIRPath-like expression (`Appointment.status`).
    pub expression: String,
    /// The FHIR issue type (`structure`, `value`, `code-invalid`, `required`…).
    pub code: &'static str,
    /// What is wrong: fixed text, never the caller's values.
    pub message: String,
}

/// Everything a request or command can fail with, as the caller sees it.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The thing asked for does not exist (or the caller may not know it does).
    #[error("not found")]
    NotFound,
    /// The request is malformed; the message says what to mend and holds no PHI.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The body is refused element by element: 400 when it is not usable
    /// JSON, 422 when well-formed but invalid. Each issue names its element.
    #[error("invalid: {} issue(s)", issues.len())]
    Invalid {
        /// 422 (else 400).
        unprocessable: bool,
        /// What is wrong, where.
        issues: Vec<ElementIssue>,
    },
    /// The caller is not allowed to do this.
    #[error("forbidden")]
    Forbidden,
    /// The caller did not prove who it is (a webhook without its secret).
    #[error("unauthorized")]
    Unauthorized,
    /// The body is larger than Herald accepts.
    #[error("payload too large")]
    TooLarge,
    /// The body's media type is not one this route reads.
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// The request conflicts with the current state.
    #[error("conflict")]
    Conflict,
    /// The caller sent more requests than its rate limit allows (429; the
    /// response says when to retry).
    #[error("too many requests")]
    TooManyRequests,
    /// A dependency (database, key ring) is unavailable; try again later.
    #[error("service unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// Anything else; the cause is logged, never shown.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl AppError {
    /// A stable, kebab-case code that clients and tests may rely on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "not-found",
            Self::BadRequest(_) => "bad-request",
            Self::Invalid {
                unprocessable: true,
                ..
            } => "unprocessable",
            Self::Invalid { .. } => "bad-request",
            Self::Forbidden => "forbidden",
            Self::Unauthorized => "unauthorized",
            Self::TooLarge => "too-large",
            Self::UnsupportedMediaType => "unsupported-media-type",
            Self::Conflict => "conflict",
            Self::TooManyRequests => "too-many-requests",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }

    /// A message safe to show to the caller: never the cause of a server fault.
    pub fn public_message(&self) -> String {
        match self {
            Self::NotFound => "The requested resource was not found.".into(),
            Self::BadRequest(msg) => msg.clone(),
            Self::Invalid { .. } => {
                "The body is refused; each issue names the element at fault.".into()
            }
            Self::Forbidden => "You are not allowed to do this.".into(),
            Self::Unauthorized => "The request is not authenticated.".into(),
            Self::TooLarge => "The request body is too large.".into(),
            Self::UnsupportedMediaType => {
                "The body's Content-Type is not one this route accepts.".into()
            }
            Self::Conflict => "The request conflicts with the current state.".into(),
            Self::TooManyRequests => {
                "Too many requests; wait for the time in Retry-After and try again.".into()
            }
            Self::Unavailable(_) => {
                "The service is temporarily unavailable; try again shortly.".into()
            }
            Self::Internal(_) => "An internal error occurred.".into(),
        }
    }

    /// The HTTP status this error maps to.
    pub fn status(&self) -> u16 {
        match self {
            Self::NotFound => 404,
            Self::BadRequest(_) => 400,
            Self::Invalid { unprocessable, .. } => {
                if *unprocessable {
                    422
                } else {
                    400
                }
            }
            Self::Forbidden => 403,
            Self::Unauthorized => 401,
            Self::TooLarge => 413,
            Self::UnsupportedMediaType => 415,
            Self::Conflict => 409,
            Self::TooManyRequests => 429,
            Self::Unavailable(_) => 503,
            Self::Internal(_) => 500,
        }
    }
}

impl From<DbError> for AppError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::NotFound => Self::NotFound,
            DbError::Conflict => Self::Conflict,
            DbError::Unavailable(e) => Self::Unavailable(e),
            DbError::Other(e) => Self::Internal(e),
        }
    }
}
