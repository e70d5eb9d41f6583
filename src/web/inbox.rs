//! `GET /inbox`: the staff queue of patients' texts a person must read
//! (issue 5 §3–4: unsure free text, cancel requests, confirmations until the
//! EHR has them), oldest deadline first, overdue ones marked; `POST
//! /inbox/done` closes one. Clinicians and admins only; reading the queue and
//! closing an item are audited with the staff member (and BTG does not apply:
//! these are replies the patient sent to the practice).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::AppState;
use super::staff::{Role, page, require_page, see_other};
use crate::audit;
use crate::db::{self, inbound};
use crate::domain::audit::{Activity, Actor, AuditRecord, Outcome};
use crate::render::escape_markup as esc;

fn record(state: &AppState, who: &str, patient: Option<String>, query: &str) -> AuditRecord {
    AuditRecord {
        recorded: state.clock.now(),
        activity: Activity::RecordQuery {
            resource_type: "Communication".into(),
            query: query.into(),
        },
        actor: Actor::Staff(who.into()),
        outcome: Outcome::Success,
        outcome_desc: None,
        patient_id: patient,
        request_id: None,
        ehr: None,
    }
}

/// GET /inbox.
pub async fn show(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let staff = match require_page(&req, &state, &[Role::Clinician, Role::Admin]).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let st = state.clone();
    let who = staff.user_id.clone();
    let csrf = staff.csrf.clone().unwrap_or_default();
    let done = web::block(move || -> Result<String, db::DbError> {
        let mut c = st.pool.get()?;
        let open = inbound::open_queue(&mut c, &st.ring)?;
        let now = st.clock.now();
        let records: Vec<_> = open
            .iter()
            .map(|o| record(&st, &who, o.patient_id.clone(), "inbox"))
            .collect();
        audit::append_now(&mut c, &records)?;
        let mut html = String::from(
            "<main><h1>Patients' texts to read</h1><table id=\"inbox\"><tr><th>Due by</th><th>Patient</th><th>Read as</th><th>Text</th><th></th></tr>",
        );
        for o in &open {
            let overdue = if o.due_by <= now { " class=\"overdue\"" } else { "" };
            html.push_str(&format!(
                "<tr{overdue}><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td><td><form method=\"post\" action=\"/inbox/done\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"key\" value=\"{}\"><button type=\"submit\">Done</button></form></td></tr>",
                o.due_by.format("%Y-%m-%d %H:%M UTC"),
                if o.due_by <= now { " (overdue)" } else { "" },
                esc(o.patient_id.as_deref().unwrap_or("unknown number")),
                esc(&o.reading),
                esc(&o.body),
                esc(&csrf),
                esc(&o.dedupe_key),
            ));
        }
        html.push_str("</table>");
        if open.is_empty() {
            html.push_str("<p id=\"empty\">Nothing waits for you.</p>");
        }
        html.push_str("</main>");
        Ok(html)
    })
    .await;
    match done {
        Ok(Ok(body)) => page(StatusCode::OK, "Inbox", &body),
        _ => page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Try again",
            "<main><h1>Try again</h1></main>",
        ),
    }
}

#[derive(serde::Deserialize)]
pub(crate) struct DoneForm {
    csrf: String,
    key: String,
}

/// POST /inbox/done.
pub async fn done(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<DoneForm>,
) -> HttpResponse {
    let staff = match require_page(&req, &state, &[Role::Clinician, Role::Admin]).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !staff.csrf_ok(&form.csrf) {
        return page(
            StatusCode::FORBIDDEN,
            "Not done",
            "<main><h1>That was not done</h1><p>Reload the inbox and try again.</p></main>",
        );
    }
    let st = state.clone();
    let key = form.key.clone();
    let who = staff.user_id.clone();
    let done = web::block(move || -> Result<bool, db::DbError> {
        let mut c = st.pool.get()?;
        let now = st.clock.now();
        db::write_tx(&mut c, |c| {
            let closed = inbound::mark_handled(c, &key, &who, now)?;
            if closed {
                audit::append(c, &[record(&st, &who, None, "inbox-done")])?;
            }
            Ok::<_, db::DbError>(closed)
        })
    })
    .await;
    match done {
        Ok(Ok(_)) => see_other("/inbox"),
        _ => page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Try again",
            "<main><h1>Try again</h1></main>",
        ),
    }
}
