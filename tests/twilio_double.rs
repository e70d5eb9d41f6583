//! A stand-in for Twilio's Programmable Messaging REST API, shaped from its
//! published reference (Messages.json create and list, Calls.json create,
//! HTTP Basic auth, JSON errors with a numeric `code`), that fails on
//! purpose: a share of creates answer 500 without creating anything, and a
//! share create the message and then stall past the client's timeout (the
//! response is lost, the message exists — the case that tempts a naive
//! retry into a duplicate). Twilio's cloud cannot run here; Herald's real
//! HTTP client talks to this over loopback.

use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine as _;
use serde_json::json;

pub const SID: &str = "AC00000000000000000000000000000001";
pub const TOKEN: &str = "double-auth-token";

#[derive(Clone, Debug)]
pub struct Created {
    pub sid: String,
    pub to: String,
    pub body: String,
    pub created_ms: i64,
    pub validity: Option<String>,
}

#[derive(Default)]
pub struct State {
    pub messages: Mutex<Vec<Created>>,
    pub calls: Mutex<Vec<Created>>,
    /// Percent of creates answered 500 without creating.
    pub fail_pct: u64,
    /// Percent of creates that create, then stall past the client timeout.
    pub stall_pct: u64,
    pub stall: Duration,
    /// Numbers that sent STOP at the carrier: error 21610.
    pub opted_out: Mutex<Vec<String>>,
    pub requests: AtomicU64,
    seq: AtomicU64,
}

pub struct Double {
    pub state: Arc<State>,
    pub base_url: String,
    handle: actix_web::dev::ServerHandle,
}

impl Drop for Double {
    fn drop(&mut self) {
        let h = self.handle.clone();
        std::thread::spawn(move || actix_rt::System::new().block_on(h.stop(false)));
    }
}

fn roll(state: &State) -> u64 {
    // A deterministic spread over 0..100 (no RNG dependency).
    let n = state.seq.fetch_add(1, Ordering::SeqCst);
    (n.wrapping_mul(2_654_435_761) >> 7) % 100
}

fn authorized(req: &HttpRequest) -> bool {
    let want = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{SID}:{TOKEN}"))
    );
    req.headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        == Some(want.as_str())
}

fn error(status: u16, code: u32, message: &str) -> HttpResponse {
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).json(json!({
        "code": code, "message": message, "more_info": format!("https://www.twilio.com/docs/errors/{code}"), "status": status
    }))
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

async fn create(
    req: HttpRequest,
    state: web::Data<Arc<State>>,
    path: web::Path<(String, String)>,
    form: web::Form<Vec<(String, String)>>,
) -> HttpResponse {
    state.requests.fetch_add(1, Ordering::SeqCst);
    let (account, resource) = path.into_inner();
    if account != SID || !authorized(&req) {
        return error(401, 20003, "Authenticate");
    }
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let Some(to) = get("To") else {
        return error(400, 21604, "A 'To' phone number is required.");
    };
    let body = match resource.as_str() {
        "Messages.json" => get("Body"),
        "Calls.json" => get("Twiml"),
        _ => return error(404, 20404, "The requested resource was not found"),
    };
    let Some(body) = body else {
        return error(400, 21602, "Message body is required.");
    };
    if state.opted_out.lock().unwrap().contains(&to) {
        return error(400, 21610, "Attempt to send to unsubscribed recipient");
    }
    let r = roll(&state);
    if r < state.fail_pct {
        return error(500, 20500, "Internal Server Error");
    }
    let sid = format!(
        "{}{:032x}",
        if resource == "Calls.json" { "CA" } else { "SM" },
        uuid::Uuid::new_v4().as_u128()
    );
    let created = Created {
        sid: sid.clone(),
        to: to.clone(),
        body: body.clone(),
        created_ms: now_ms(),
        validity: get("ValidityPeriod"),
    };
    if resource == "Calls.json" {
        state.calls.lock().unwrap().push(created);
    } else {
        state.messages.lock().unwrap().push(created);
    }
    if r < state.fail_pct + state.stall_pct {
        actix_rt::time::sleep(state.stall).await;
    }
    HttpResponse::Created().json(json!({
        "sid": sid, "account_sid": SID, "to": to, "body": body, "status": "queued",
        "date_created": chrono::Utc::now().to_rfc2822(), "direction": "outbound-api",
        "num_segments": "1", "error_code": null, "uri": format!("/2010-04-01/Accounts/{SID}/Messages/{sid}.json")
    }))
}

async fn list(
    req: HttpRequest,
    state: web::Data<Arc<State>>,
    query: web::Query<Vec<(String, String)>>,
) -> HttpResponse {
    if !authorized(&req) {
        return error(401, 20003, "Authenticate");
    }
    let to = query
        .iter()
        .find(|(k, _)| k == "To")
        .map(|(_, v)| v.clone());
    let msgs = state.messages.lock().unwrap();
    let page: Vec<_> = msgs
        .iter()
        .rev()
        .filter(|m| to.as_deref().is_none_or(|t| t == m.to))
        .take(50)
        .map(|m| {
            json!({
                "sid": m.sid, "to": m.to, "body": m.body, "status": "sent",
                "date_created": chrono::DateTime::from_timestamp_millis(m.created_ms).unwrap().to_rfc2822()
            })
        })
        .collect();
    HttpResponse::Ok().json(json!({ "messages": page, "page": 0, "page_size": 50 }))
}

/// Starts the double on a loopback port.
pub fn start(fail_pct: u64, stall_pct: u64, stall: Duration) -> Double {
    let state = Arc::new(State {
        fail_pct,
        stall_pct,
        stall,
        ..State::default()
    });
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    let st = Arc::clone(&state);
    std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            let server = HttpServer::new(move || {
                App::new()
                    .app_data(web::Data::new(Arc::clone(&st)))
                    .route(
                        "/2010-04-01/Accounts/{account}/Messages.json",
                        web::get().to(list),
                    )
                    .route(
                        "/2010-04-01/Accounts/{account}/{resource}",
                        web::post().to(create),
                    )
            })
            .workers(2)
            .listen(listener)
            .unwrap()
            .run();
            tx.send(server.handle()).unwrap();
            server.await.unwrap();
        });
    });
    let handle = rx.recv().unwrap();
    Double {
        state,
        base_url,
        handle,
    }
}
