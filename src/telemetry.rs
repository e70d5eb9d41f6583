//! Logging setup. Messages read well and fields are dotted (`intent.id`);
//! only opaque ids are logged, never PHI. Security events use the `security`
//! target. Logs go to stderr so command output on stdout stays clean.

use crate::config::LogSettings;

/// Installs the global subscriber (once; later calls are ignored).
pub fn init(log: &LogSettings) {
    let filter = tracing_subscriber::EnvFilter::try_new(&log.level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if log.format == "json" {
        builder.json().try_init()
    } else {
        builder.with_target(true).try_init()
    };
}
