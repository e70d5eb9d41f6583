//! Error bodies: OperationOutcome on `/fhir`, problem+json elsewhere. The
//! cause of a server fault is logged here, once, and never sent.

use actix_web::http::StatusCode;
use actix_web::{HttpMessage as _, HttpRequest, HttpResponse, ResponseError};
use serde_json::json;

use super::RequestId;
use crate::error::AppError;

/// An error on its way to becoming a response.
#[derive(Debug)]
pub struct ApiError {
    err: AppError,
    fhir: bool,
    request_id: Option<String>,
    client_request_id: Option<String>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.err.code())
    }
}

impl ApiError {
    /// An error for a request (takes the route kind and request id from it).
    pub fn new(req: &HttpRequest, err: AppError) -> Self {
        Self {
            fhir: req.path().starts_with("/fhir") || req.path().starts_with("/hooks/fhir"),
            request_id: req.extensions().get::<RequestId>().map(|r| r.0.clone()),
            client_request_id: req
                .extensions()
                .get::<super::ClientRequestId>()
                .map(|r| r.0.clone()),
            err,
        }
    }

    /// An error for a path when the request itself is not at hand.
    pub fn for_path(path: &str, err: AppError) -> Self {
        Self {
            fhir: path.starts_with("/fhir") || path.starts_with("/hooks/fhir"),
            request_id: None,
            client_request_id: None,
            err,
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.err.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if status.is_server_error() {
            // The one place the cause is logged; it never reaches the body.
            let cause = match &self.err {
                AppError::Internal(e) | AppError::Unavailable(e) => format!("{e:#}"),
                other => other.to_string(),
            };
            tracing::error!(code = self.err.code(), request.id = self.request_id.as_deref().unwrap_or("-"), client.request_id = self.client_request_id.as_deref().unwrap_or("-"), cause = %cause, "request failed");
        }
        let message = self.err.public_message();
        if let (true, AppError::Invalid { issues, .. }) = (self.fhir, &self.err) {
            let issues: Vec<serde_json::Value> = issues
                .iter()
                .map(|i| {
                    json!({
                        "severity": "error",
                        "code": i.code,
                        "details": { "coding": [{ "system": "urn:herald:error", "code": self.err.code() }], "text": i.message },
                        "diagnostics": format!("request id {}", self.request_id.as_deref().unwrap_or("-")),
                        "expression": [i.expression],
                    })
                })
                .collect();
            return HttpResponse::build(status)
                .content_type("application/fhir+json; charset=utf-8")
                .json(json!({ "resourceType": "OperationOutcome", "issue": issues }));
        }
        if self.fhir {
            let code = match &self.err {
                AppError::NotFound => "not-found",
                AppError::BadRequest(_) | AppError::Invalid { .. } => "invalid",
                AppError::Forbidden => "forbidden",
                AppError::Unauthorized => "login",
                AppError::TooLarge => "too-costly",
                AppError::UnsupportedMediaType => "not-supported",
                AppError::Conflict => "conflict",
                AppError::TooManyRequests => "throttled",
                AppError::Unavailable(_) => "transient",
                AppError::Internal(_) => "exception",
            };
            HttpResponse::build(status)
                .content_type("application/fhir+json; charset=utf-8")
                .json(json!({
                    "resourceType": "OperationOutcome",
                    "issue": [{
                        "severity": "error",
                        "code": code,
                        "details": { "coding": [{ "system": "urn:herald:error", "code": self.err.code() }], "text": message },
                        "diagnostics": format!("request id {}", self.request_id.as_deref().unwrap_or("-")),
                    }],
                }))
        } else {
            let errors: Vec<serde_json::Value> = match &self.err {
                AppError::Invalid { issues, .. } => issues
                    .iter()
                    .map(|i| json!({ "element": i.expression, "message": i.message }))
                    .collect(),
                _ => Vec::new(),
            };
            let mut body = json!({
                "type": format!("urn:herald:error:{}", self.err.code()),
                "title": message,
                "status": status.as_u16(),
                "code": self.err.code(),
                "request_id": self.request_id,
            });
            if let (false, Some(o)) = (errors.is_empty(), body.as_object_mut()) {
                o.insert("errors".into(), serde_json::Value::Array(errors));
            }
            HttpResponse::build(status)
                .content_type("application/problem+json")
                .json(body)
        }
    }
}

/// Anything unrouted.
pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(&req, AppError::NotFound))
}
