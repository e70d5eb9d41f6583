//! `POST /hooks/fhir/{subscription}`: subscription notifications (N1–N9).
//! Every notification is authenticated (the `channel.header` secret Herald
//! set, or Medplum's `X-Signature` HMAC of the body), checked at the edge
//! (`fhir::notification`: strict FHIR JSON, the followed type, ids,
//! same-origin references, dates, required codes, Backport ordering; 400 or
//! 422 naming each element, issue 11), and stored durably before Herald
//! answers 2xx; processing happens after, in the follower. R4 payload style "update on {endpoint}/{type}/{id}"
//! (N2) arrives as `PUT /hooks/fhir/{subscription}/{type}/{id}`. A missing or
//! wrong secret is a 401 (and nothing is stored), a malformed body a 400, an
//! oversized one a 413 — each an OperationOutcome. Also `GET
//! /.well-known/jwks.json`, Herald's public keys (S18).

use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt as _;

use super::{ApiError, AppState, internal, peer};
use crate::error::AppError;
use crate::service::ehr::{self, ReceiveError};

async fn read_limited(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<Vec<u8>, ApiError> {
    if let Some(len) = req
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        && len > limit
    {
        return Err(ApiError::new(req, AppError::TooLarge));
    }
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| {
            ApiError::new(
                req,
                AppError::BadRequest("The body could not be read.".into()),
            )
        })?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::new(req, AppError::TooLarge));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// POST /hooks/fhir/{subscription}[/{type}[/{id}]] and PUT …/{type}/{id}.
pub async fn notify(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let limit = state.settings.ehr.max_notification_bytes;
    let body = read_limited(&req, payload, limit).await?;
    let sub = req
        .match_info()
        .get("subscription")
        .unwrap_or_default()
        .to_string();
    let path = match (req.match_info().get("type"), req.match_info().get("id")) {
        (Some(t), Some(i)) => Some(format!("{t}/{i}")),
        _ => None,
    };
    let header = |n: &str| {
        req.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(String::from)
    };
    let (authorization, signature) = (header("authorization"), header("x-signature"));
    let who = peer(&req);
    let st = state.clone();
    let base_url = state.settings.ehr.base_url.clone();
    let done = web::block(move || {
        let mut c = st
            .pool
            .get()
            .map_err(|e| ReceiveError::Db(crate::db::DbError::Other(e.into())))?;
        ehr::receive(
            &mut c,
            &st.ring,
            st.clock.now(),
            &sub,
            authorization.as_deref(),
            signature.as_deref(),
            &body,
            path.as_deref(),
            &who,
            base_url.as_deref(),
        )
    })
    .await
    .map_err(|e| internal(&req, e))?;
    match done {
        Ok(_) => Ok(HttpResponse::Ok().finish()),
        Err(ReceiveError::Unknown | ReceiveError::Unauthenticated) => {
            Err(ApiError::new(&req, AppError::Unauthorized))
        }
        Err(ReceiveError::Malformed(m)) => Err(ApiError::new(&req, AppError::BadRequest(m))),
        Err(ReceiveError::Invalid(r)) => Err(ApiError::new(
            &req,
            AppError::Invalid {
                unprocessable: r.unprocessable,
                issues: r.issues,
            },
        )),
        Err(ReceiveError::Db(e)) => Err(internal(&req, e)),
    }
}

/// GET /.well-known/jwks.json: public keys only, no authentication (S18).
pub async fn jwks(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let st = state.clone();
    let set = web::block(move || {
        let mut c = st.pool.get().map_err(|e| anyhow::anyhow!("{e}"))?;
        ehr::jwks(&mut c).map_err(anyhow::Error::from)
    })
    .await
    .map_err(|e| internal(&req, e))?
    .map_err(|e| internal(&req, e))?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header(("Cache-Control", "public, max-age=300"))
        .json(set))
}
