//! Outbox workers: threads that claim due intents under a lease and send
//! them (each thread one message at a time, so `outbox.workers` is the number
//! of provider calls in flight). Any number of processes may run them on one
//! PostgreSQL; a process killed mid-send leaves a lease that runs out, and
//! the next claim reconciles with the provider before sending again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use super::Ctx;
use super::send;
use crate::clock::Clock;
use crate::config::{MessagingSettings, OutboxSettings};
use crate::crypto::KeyRing;
use crate::db::Pool;
use crate::providers::Sender;
use crate::render::Renderer;

/// What the workers share.
pub struct Deps {
    /// Database pool.
    pub pool: Pool,
    /// Key ring.
    pub ring: Arc<KeyRing>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Messaging settings.
    pub messaging: MessagingSettings,
    /// Worker settings.
    pub outbox: OutboxSettings,
    /// Templates.
    pub renderer: Arc<Renderer>,
    /// Channels.
    pub sender: Arc<dyn Sender>,
    /// The EHR's base URL (audit).
    pub ehr: String,
    /// Status callback URL.
    pub status_callback: Option<String>,
    /// The compliance guard.
    pub guard: Arc<crate::guard::Guard>,
}

/// Running workers; [`Workers::stop`] lets each finish its current message.
pub struct Workers {
    stop: Arc<AtomicBool>,
    handles: Vec<JoinHandle<()>>,
}

impl Workers {
    /// Starts `deps.outbox.workers` threads named after `process_id`.
    pub fn start(deps: Arc<Deps>, process_id: &str) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut handles = Vec::new();
        for n in 0..deps.outbox.workers {
            let deps = Arc::clone(&deps);
            let stop = Arc::clone(&stop);
            let owner = format!("{process_id}/w{n}");
            handles.push(
                std::thread::Builder::new()
                    .name(format!("outbox-{n}"))
                    .spawn(move || run(&deps, &owner, &stop))?,
            );
        }
        Ok(Self { stop, handles })
    }

    /// Asks every worker to stop and waits for them.
    pub fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        for h in self.handles {
            let _ = h.join();
        }
    }
}

fn run(deps: &Deps, owner: &str, stop: &AtomicBool) {
    let ctx = Ctx {
        ring: &deps.ring,
        clock: deps.clock.as_ref(),
        messaging: &deps.messaging,
        renderer: &deps.renderer,
        ehr: &deps.ehr,
        outbox: &deps.outbox,
        sender: deps.sender.as_ref(),
        status_callback: deps.status_callback.clone(),
        guard: &deps.guard,
    };
    let idle = std::time::Duration::from_millis(deps.outbox.poll_ms.max(10));
    while !stop.load(Ordering::SeqCst) {
        let worked = match deps.pool.get() {
            Ok(mut conn) => match send::claim(&mut conn, &ctx, owner) {
                Ok(Some(reports)) => {
                    tracing::debug!(worker = owner, n = reports.len(), "batch done");
                    true
                }
                Ok(None) => false,
                Err(e) => {
                    tracing::warn!(worker = owner, error = %e, "outbox pass failed; retrying");
                    false
                }
            },
            Err(e) => {
                tracing::warn!(worker = owner, error = %e, "no database connection");
                false
            }
        };
        if !worked {
            sleep_unless_stopped(idle, stop);
        }
    }
}

#[allow(clippy::disallowed_methods)]
pub(crate) fn sleep_unless_stopped(d: std::time::Duration, stop: &AtomicBool) {
    let step = std::time::Duration::from_millis(50);
    let mut left = d;
    while !left.is_zero() && !stop.load(Ordering::SeqCst) {
        let s = left.min(step);
        std::thread::sleep(s);
        left = left.saturating_sub(s);
    }
}
