//! Liveness and readiness.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use super::{ApiError, AppState};
use crate::error::AppError;

/// The process is up.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// The database answers and the key ring is loaded.
pub async fn readyz(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let pool = state.pool.clone();
    let ok = web::block(move || -> Result<(), crate::db::DbError> {
        let mut c = pool.get()?;
        crate::db::ping(&mut c)
    })
    .await;
    match ok {
        Ok(Ok(())) => Ok(HttpResponse::Ok()
            .json(json!({ "status": "ready", "key_ring": state.ring.active_id() > 0 }))),
        Ok(Err(e)) => Err(ApiError::new(&req, AppError::Unavailable(e.into()))),
        Err(e) => Err(ApiError::new(
            &req,
            AppError::Unavailable(anyhow::anyhow!("{e}")),
        )),
    }
}
