//! The `herald` command line: thin wrappers over the library (interface.md).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};

use herald::clock::SystemClock;
use herald::config::Settings;
use herald::service::{Ctx, keys};
use herald::{audit, db, demo, render, web};

#[derive(Parser)]
#[command(
    name = "herald",
    version,
    about = "Open patient-messaging server for FHIR R4 EHRs"
)]
struct Cli {
    /// Configuration file (default: $HERALD_CONFIG, else ./herald.toml if present).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum ReplyCommand {
    /// Print how Herald reads each reply on stdin (one per line, or JSON lines
    /// {"text","lang","context"}): one JSON line {"intent": …} each — the same
    /// reading the inbound SMS webhook uses.
    Classify {
        /// What the patient is answering.
        #[arg(long, value_enum, default_value = "none")]
        context: ReplyContextArg,
        /// Language of the replies (informative; every locale's keywords are read).
        #[arg(long)]
        lang: Option<String>,
    },
}

#[derive(Subcommand)]
enum InboxCommand {
    /// One JSON line per open text (it includes the text: PHI).
    List {
        /// Who is reading (recorded in the audit log).
        #[arg(long = "as")]
        user: String,
    },
    /// Mark a text handled.
    Done {
        /// The item's key, from `inbox list`.
        key: String,
        /// Who handled it.
        #[arg(long = "as")]
        user: String,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a staff account: reads the initial password (one line, at least
    /// 12 characters) from stdin and prints the TOTP enrolment URI.
    Add {
        /// Sign-in name.
        name: String,
        /// What the account may do.
        #[arg(long, value_enum)]
        role: RoleArg,
    },
    /// Print a new API bearer token for an auditor (shown once, stored hashed).
    Token {
        /// The auditor's sign-in name.
        name: String,
        /// Days the token stays valid.
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=365))]
        days: u32,
    },
    /// Lift a lockout after repeated failed sign-ins.
    Unlock {
        /// Sign-in name.
        name: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum RoleArg {
    Admin,
    Clinician,
    Auditor,
}

#[derive(Clone, Copy, ValueEnum)]
enum ReplyContextArg {
    None,
    Reminder,
    AfterOptOut,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (and the outbox workers).
    Serve,
    /// Run only the outbox workers, no HTTP listener; any number of processes
    /// may share one PostgreSQL.
    Worker,
    /// Texts from patients waiting for staff (unsure free text, cancel
    /// requests, confirmations), oldest deadline first; reading it is audited.
    Inbox {
        #[command(subcommand)]
        command: InboxCommand,
    },
    /// Staff accounts: add, API tokens, unlock (each audited).
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Print a patient's preference-page link (signed, expiring; audited).
    Link {
        /// The patient's logical id at the EHR.
        patient: String,
        /// Days the link stays valid (1 to 30).
        #[arg(long, default_value_t = 7)]
        days: u32,
        /// Who is issuing it, as recorded in the audit log (default: the
        /// operating-system user, `os:NAME`).
        #[arg(long)]
        by: Option<String>,
    },
    /// Run the whole pipeline on embedded defaults with the bundled fixture EHR.
    Demo {
        /// Process the fixtures, print what was sent and blocked, and exit.
        #[arg(long)]
        once: bool,
        /// Fixture directory (default: fixtures/fhir/demo).
        #[arg(long)]
        fixtures: Option<PathBuf>,
    },
    /// Apply migrations to the configured database.
    Migrate {
        /// Revert every migration instead (development only).
        #[arg(long)]
        revert_all: bool,
    },
    /// Validate configuration, locales and profiles.
    Check {
        /// Also print the effective configuration (secrets as ***).
        #[arg(long)]
        print: bool,
    },
    /// Manage the encryption key ring.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Inspect the audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Inbound replies.
    Reply {
        #[command(subcommand)]
        command: ReplyCommand,
    },
    /// Create or refresh the Subscriptions on the configured EHR.
    Subscribe,
    /// Poll the configured EHR for changes.
    Poll {
        /// One pass, then exit (the schedule runs inside `herald serve`).
        #[arg(long)]
        once: bool,
        /// Run the Bulk Data reconcile (ehr.bulk_group) instead of a poll pass.
        #[arg(long)]
        bulk: bool,
    },
    /// Scan texts on stdin (one per line, or JSON lines {"text","lang","allowed"}) for PHI.
    Guard {
        /// Language of plain-text lines (en-US, es-US); default: every language.
        #[arg(long)]
        lang: Option<String>,
        /// Also require the brand (messaging.practice_name) and a STOP instruction.
        #[arg(long)]
        content: bool,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create the master key file (unless HERALD_MASTER_KEY is set), the first
    /// data key, and Herald's SMART signing keys (RS384 and ES384).
    Init,
    /// Add a data key and re-encrypt existing rows under it; with --smart,
    /// add a new SMART signing key instead (published now, signing later).
    Rotate {
        /// Rotate the SMART Backend Services signing key, not the data key.
        #[arg(long)]
        smart: bool,
        /// Algorithm of the new signing key.
        #[arg(long, default_value = "RS384", value_parser = ["RS384", "ES384"])]
        alg: String,
        /// Hours the new key is published before Herald signs with it.
        #[arg(long, default_value_t = 24)]
        publish_ahead_hours: u32,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the hash chain; exit 1 naming the first broken record. The result
    /// is recorded for the /audit page.
    Verify {
        /// Also check the chain against Herald's signed checkpoints in DIR:
        /// each signature, the record at each checkpoint's seq, the length.
        #[arg(long, value_name = "DIR")]
        checkpoints: Option<PathBuf>,
        /// The checkpoint key's public PEM (`herald audit checkpoint
        /// --public-key`); default: the key file in the data dir.
        #[arg(long, value_name = "FILE", requires = "checkpoints")]
        public_key: Option<PathBuf>,
    },
    /// Sign the chain head now into audit.checkpoint_dir (and POST it to
    /// audit.checkpoint_webhook); `herald serve` does so hourly and at shutdown.
    Checkpoint {
        /// Print the signing key's public PEM instead (for --public-key).
        #[arg(long)]
        public_key: bool,
    },
    /// Write AuditEvents to stdout (the export is itself audited).
    Export {
        /// From this instant (RFC 3339 or YYYY-MM-DD), inclusive.
        #[arg(long)]
        since: Option<String>,
        /// Until this instant, exclusive.
        #[arg(long)]
        until: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value = "ndjson")]
        format: ExportFormat,
        /// Who is reading (recorded in the audit log; default: the OS user).
        #[arg(long = "as")]
        reader: Option<String>,
    },
    /// Who accessed or sent what, when, why and with what outcome: every event
    /// about a patient, or by a user, for a breach investigation (audited).
    #[command(group(clap::ArgGroup::new("subject").required(true).args(["patient", "user"])))]
    Report {
        /// The patient's logical id (or Patient/id).
        #[arg(long)]
        patient: Option<String>,
        /// A staff user id (or herald, anonymous).
        #[arg(long)]
        user: Option<String>,
        /// From this instant (RFC 3339 or YYYY-MM-DD), inclusive.
        #[arg(long)]
        since: Option<String>,
        /// Until this instant, exclusive.
        #[arg(long)]
        until: Option<String>,
        /// text: one line per event; ndjson: one JSON object per event.
        #[arg(long, value_enum, default_value = "text")]
        format: ReportFormatArg,
        /// Who is reading (recorded in the audit log; default: the OS user).
        #[arg(long = "as")]
        reader: Option<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum ReportFormatArg {
    Text,
    Ndjson,
}

#[derive(Clone, Copy, ValueEnum)]
enum ExportFormat {
    Ndjson,
    Csv,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            // One line that says what is wrong and how to mend it.
            let msg = format!("{e:#}").replace('\n', " ");
            let _ = writeln!(std::io::stderr(), "herald: {msg}");
            ExitCode::from(1)
        }
    }
}

fn load_settings(
    config: Option<PathBuf>,
    env: &BTreeMap<String, String>,
) -> anyhow::Result<Settings> {
    let path = config
        .or_else(|| env.get("HERALD_CONFIG").map(PathBuf::from))
        .or_else(|| {
            let p = PathBuf::from("herald.toml");
            p.exists().then_some(p)
        });
    Ok(Settings::load(path.as_deref(), env)?)
}

fn parse_instant(s: &str) -> anyhow::Result<chrono::NaiveDateTime> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.naive_utc());
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .with_context(|| {
            format!("{s:?} is not an instant such as 2026-12-01 or 2026-12-01T17:00:00Z")
        })
}

/// `&since=…&until=…` for the AuditEvent of a CLI read, with only what was given.
fn window(since: Option<String>, until: Option<String>) -> String {
    let mut q = String::new();
    for (k, v) in [("since", since), ("until", until)] {
        if let Some(v) = v {
            q.push_str(&format!("&{k}={v}"));
        }
    }
    q
}

fn open_pool(settings: &Settings) -> anyhow::Result<db::Pool> {
    let url = settings.database_url();
    db::pool(
        &url,
        settings.database.pool_size,
        std::time::Duration::from_secs(settings.database.connect_timeout_secs),
    )
    .with_context(|| format!("cannot open the database {}", url.redacted()))
}

/// Opens the configured store with migrations applied and the key ring open.
fn open_store(settings: &Settings) -> anyhow::Result<(db::Pool, herald::crypto::KeyRing)> {
    let pool = open_pool(settings)?;
    let mut conn = pool.get()?;
    db::migrate(&mut conn)?;
    let ring = keys::open_ring(&mut conn, settings)?;
    Ok((pool, ring))
}

/// What `serve` and `worker` run on.
fn open_state(settings: Settings, clock: SystemClock) -> anyhow::Result<web::AppState> {
    let (pool, ring) = open_store(&settings)?;
    Ok(web::AppState::new(
        Arc::new(settings),
        pool,
        Arc::new(ring),
        Arc::new(clock),
    ))
}

fn refuse_invalid(settings: &Settings) -> anyhow::Result<()> {
    let problems = settings.validate();
    if let Some(p) = problems.first() {
        anyhow::bail!("{p} (run `herald check` to see every problem)");
    }
    Ok(())
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let settings = load_settings(cli.config, &env)?;
    herald::telemetry::init(&settings.log);
    let clock = SystemClock;
    let mut stdout = std::io::stdout();
    match cli.command {
        Command::Reply {
            command: ReplyCommand::Classify { context, lang: _ },
        } => {
            reply_classify_cmd(context)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Guard { lang, content } => {
            guard_cmd(&settings, lang.as_deref(), content)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { print } => {
            let mut problems: Vec<String> = settings
                .validate()
                .iter()
                .map(ToString::to_string)
                .collect();
            let sources: Vec<(String, String)> = render::LOCALES
                .iter()
                .map(|(l, s)| (l.to_string(), s.to_string()))
                .collect();
            problems.extend(render::check_sources(&sources));
            problems.extend(check_profiles());
            if print {
                writeln!(stdout, "{}", settings.redacted_dump())?;
            }
            for p in &problems {
                writeln!(std::io::stderr(), "herald check: {p}")?;
            }
            if problems.is_empty() {
                writeln!(
                    stdout,
                    "herald check: configuration, {} locales and profiles are valid",
                    sources.len()
                )?;
                Ok(ExitCode::SUCCESS)
            } else {
                Ok(ExitCode::from(1))
            }
        }
        Command::Migrate { revert_all } => {
            refuse_invalid(&settings)?;
            let pool = open_pool(&settings)?;
            let mut conn = pool.get()?;
            let done = if revert_all {
                db::revert_all(&mut conn)?
            } else {
                db::migrate(&mut conn)?
            };
            let verb = if revert_all { "reverted" } else { "applied" };
            if done.is_empty() {
                writeln!(stdout, "migrations: nothing to do")?;
            }
            for m in done {
                writeln!(stdout, "migrations: {verb} {m}")?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Keys { command } => {
            refuse_invalid(&settings)?;
            let pool = open_pool(&settings)?;
            let mut conn = pool.get()?;
            db::migrate(&mut conn)?;
            match command {
                KeysCommand::Init => {
                    let said = keys::init(&mut conn, &settings, &clock)?;
                    writeln!(stdout, "keys: {said}")?;
                    let ring = keys::open_ring(&mut conn, &settings)?;
                    let now = herald::clock::Clock::now(&clock);
                    let made = herald::service::ehr::init_signing_keys(&mut conn, &ring, now)?;
                    if made.is_empty() {
                        writeln!(stdout, "keys: SMART signing keys already exist")?;
                    }
                    for kid in made {
                        writeln!(
                            stdout,
                            "keys: SMART signing key {kid} published at /.well-known/jwks.json"
                        )?;
                    }
                }
                KeysCommand::Rotate {
                    smart: true,
                    alg,
                    publish_ahead_hours,
                } => {
                    let ring = keys::open_ring(&mut conn, &settings)?;
                    let now = herald::clock::Clock::now(&clock);
                    let ahead = chrono::Duration::hours(i64::from(publish_ahead_hours));
                    let kid = herald::service::ehr::rotate_signing_key(
                        &mut conn, &ring, &alg, now, ahead,
                    )?;
                    writeln!(
                        stdout,
                        "keys: {alg} key {kid} is published now and signs from {}",
                        (now + ahead).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                    )?;
                }
                KeysCommand::Rotate { smart: false, .. } => {
                    let id = keys::rotate(&mut conn, &settings, &clock)?;
                    writeln!(
                        stdout,
                        "keys: data key {id} is now active; re-encrypting older rows"
                    )?;
                    let ring = keys::open_ring(&mut conn, &settings)?;
                    let mut total = 0;
                    loop {
                        let n = keys::reencrypt_batch(&mut conn, &ring, &clock, 500)?;
                        if n == 0 {
                            break;
                        }
                        total += n;
                    }
                    writeln!(stdout, "keys: re-encrypted {total} rows under key {id}")?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit { command } => {
            let pool = open_pool(&settings)?;
            let mut conn = pool.get()?;
            db::migrate(&mut conn)?;
            // The CLI reader, for the AuditEvent a read of the log writes.
            let reader_record = |reader: Option<String>, query: String, patient: Option<String>| {
                let who = reader.unwrap_or_else(|| {
                    let os = env
                        .get("USER")
                        .or_else(|| env.get("LOGNAME"))
                        .cloned()
                        .unwrap_or_else(|| "unknown".into());
                    format!("os:{os}")
                });
                herald::domain::audit::AuditRecord {
                    recorded: herald::clock::Clock::now(&clock),
                    activity: herald::domain::audit::Activity::AuditQuery { query },
                    actor: herald::domain::audit::Actor::Staff(who),
                    outcome: herald::domain::audit::Outcome::Success,
                    outcome_desc: None,
                    patient_id: patient,
                    request_id: None,
                    ehr: None,
                }
            };
            match command {
                AuditCommand::Verify {
                    checkpoints,
                    public_key,
                } => match audit::verify_and_record(&mut conn, &clock)? {
                    audit::Verdict::Intact { count } => {
                        writeln!(stdout, "audit: chain intact ({count} records)")?;
                        match checkpoints {
                            Some(dir) => verify_checkpoints_cmd(
                                &mut conn,
                                &settings,
                                &dir,
                                public_key.as_deref(),
                                &mut stdout,
                            ),
                            None => Ok(ExitCode::SUCCESS),
                        }
                    }
                    audit::Verdict::Broken(b) => {
                        writeln!(std::io::stderr(), "herald: {b}")?;
                        Ok(ExitCode::from(1))
                    }
                },
                AuditCommand::Checkpoint { public_key } => {
                    checkpoint_cmd(&mut conn, &settings, &clock, public_key, &mut stdout)
                }
                AuditCommand::Export {
                    since,
                    until,
                    format,
                    reader,
                } => {
                    let (s, u) = (since.clone(), until.clone());
                    let since = since.as_deref().map(parse_instant).transpose()?;
                    let until = until.as_deref().map(parse_instant).transpose()?;
                    let format = match format {
                        ExportFormat::Ndjson => audit::Format::Ndjson,
                        ExportFormat::Csv => audit::Format::Csv,
                    };
                    let query = format!(
                        "_export={}{}",
                        if format == audit::Format::Csv {
                            "csv"
                        } else {
                            "ndjson"
                        },
                        window(s, u)
                    );
                    // The export's record commits before the first byte leaves.
                    audit::append_now(&mut conn, &[reader_record(reader, query, None)])?;
                    let mut lock = stdout.lock();
                    audit::export(&mut conn, since, until, format, &mut lock)?;
                    Ok(ExitCode::SUCCESS)
                }
                AuditCommand::Report {
                    patient,
                    user,
                    since,
                    until,
                    format,
                    reader,
                } => {
                    use herald::audit::report::{self, ReportFormat, Subject};
                    let subject = match (patient, user) {
                        (Some(p), _) => Subject::Patient(p),
                        (None, Some(u)) => Subject::User(u),
                        (None, None) => anyhow::bail!("give --patient P or --user U"),
                    };
                    let (s, u) = (since.clone(), until.clone());
                    let since = since.as_deref().map(parse_instant).transpose()?;
                    let until = until.as_deref().map(parse_instant).transpose()?;
                    let q = report::query_for(&subject, since, until);
                    let (what, patient) = match &subject {
                        Subject::Patient(p) => {
                            let id = p.trim_start_matches("Patient/").to_string();
                            (format!("patient=Patient/{id}"), Some(id))
                        }
                        Subject::User(u) => (format!("agent={u}"), None),
                    };
                    let query = format!("_report=breach&{what}{}", window(s, u));
                    audit::append_now(&mut conn, &[reader_record(reader, query, patient)])?;
                    let format = match format {
                        ReportFormatArg::Text => ReportFormat::Text,
                        ReportFormatArg::Ndjson => ReportFormat::Ndjson,
                    };
                    let mut out = std::io::BufWriter::new(stdout.lock());
                    let (n, patients) = report::write(&mut conn, &q, format, &mut out)?;
                    out.flush()?;
                    writeln!(
                        std::io::stderr(),
                        "audit report: {n} events naming {patients} patients"
                    )?;
                    Ok(ExitCode::SUCCESS)
                }
            }
        }
        Command::Demo { once, fixtures } => {
            let settings = demo::demo_settings(settings);
            refuse_invalid(&settings)?;
            let fixtures = fixtures.unwrap_or_else(demo::default_fixtures);
            let ehr = herald::fhir::source::FixtureEhr::load(&fixtures)?;
            let clock = demo::clock_for(&ehr);
            let (pool, ring) = demo::prepare(&settings, &clock, &mut stdout)?;
            let renderer = render::Renderer::embedded()
                .map_err(|p| anyhow::anyhow!("templates: {}", p.join("; ")))?;
            let mut messaging = settings.messaging.clone();
            messaging.practice_name = ehr.practice.name.clone();
            messaging.practice_phone = ehr.practice.phone.clone();
            messaging.portal_url = ehr.practice.portal.clone();
            let sender = herald::providers::ConsoleSender::new(Box::new(std::io::stdout()));
            let guard = herald::guard::Guard::new();
            let ctx = Ctx {
                ring: &ring,
                clock: &clock,
                messaging: &messaging,
                renderer: &renderer,
                ehr: herald::fhir::source::FixtureEhr::BASE,
                outbox: &settings.outbox,
                sender: &sender,
                status_callback: None,
                guard: &guard,
            };
            let mut conn = pool.get()?;
            demo::run_once(&mut conn, &ctx, &ehr, &sender, &mut stdout)?;
            drop(conn);
            if once {
                return Ok(ExitCode::SUCCESS);
            }
            // The audit log is for auditors only: the demo makes one (a
            // random password nobody needs) and prints an API token for it.
            let mut conn = pool.get()?;
            let now = herald::clock::Clock::now(&clock);
            let name = format!(
                "demo-auditor-{}",
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            );
            let password = uuid::Uuid::new_v4().to_string();
            herald::service::staff::add_user(
                &mut conn,
                &ring,
                now,
                &name,
                herald::domain::staff::Role::Auditor,
                &password,
            )
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            let token = herald::service::staff::issue_token(&mut conn, now, &name, 1)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            drop(conn);
            writeln!(stdout, "Demo auditor token (1 day): {token}")?;
            writeln!(
                stdout,
                "  e.g. curl -H 'Authorization: Bearer {token}' 'http://{}/fhir/AuditEvent?_count=20&_sort=-date'",
                settings.server.bind
            )?;
            let state =
                web::AppState::new(Arc::new(settings), pool, Arc::new(ring), Arc::new(clock));
            serve(state, &mut stdout)
        }
        Command::Serve => {
            refuse_invalid(&settings)?;
            let state = open_state(settings, clock)?;
            let workers = start_workers(&state)?;
            let follower = start_follower(&state)?;
            let last = state.clone();
            let r = serve(state, &mut stdout);
            if let Some(f) = follower {
                f.stop();
            }
            workers.stop();
            // Clean shutdown: sign the head everything above left behind.
            log_checkpoint(anchor_now(&last));
            r
        }
        Command::Subscribe => {
            refuse_invalid(&settings)?;
            let state = open_state(settings, clock)?;
            let f = follower(&state)?;
            for (rt, remote, created) in f.subscribe()? {
                let verb = if created { "created" } else { "refreshed" };
                writeln!(
                    stdout,
                    "subscribe: {rt}: {verb} Subscription/{remote} on {}",
                    f.base()
                )?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Poll { once, bulk } => {
            refuse_invalid(&settings)?;
            let state = open_state(settings, clock)?;
            let f = follower(&state)?;
            let holder = format!("poll-{}", std::process::id());
            if bulk {
                if f.settings.ehr.bulk_group.is_none() {
                    anyhow::bail!(
                        "ehr.bulk_group is not set (e.g. HERALD_EHR__BULK_GROUP=Group/123): the customer names the group"
                    );
                }
                match f.bulk_reconcile(&holder)? {
                    Some(r) => writeln!(
                        stdout,
                        "bulk: {} resources seen, {} planned, {} duplicates, {} stale, {} skipped",
                        r.seen, r.planned, r.duplicates, r.stale, r.skipped
                    )?,
                    None => writeln!(stdout, "bulk: another instance is reconciling this EHR now")?,
                }
                return Ok(ExitCode::SUCCESS);
            }
            loop {
                match f.poll_once(&holder)? {
                    Some(r) => writeln!(
                        stdout,
                        "poll: {} resources seen, {} planned, {} duplicates, {} stale, {} vanished, {} skipped",
                        r.seen, r.planned, r.duplicates, r.stale, r.vanished, r.skipped
                    )?,
                    None => writeln!(stdout, "poll: another instance is polling this EHR now")?,
                }
                let n = f.process_notifications(&holder, 1000)?;
                if n.notifications > 0 {
                    writeln!(
                        stdout,
                        "poll: {} stored notifications processed",
                        n.notifications
                    )?;
                }
                if once {
                    return Ok(ExitCode::SUCCESS);
                }
                let schedule: cron::Schedule = f.settings.ehr.poll_schedule.parse()?;
                let now = herald::clock::Clock::now(&clock);
                if let Some(next) = schedule.after(&now).next() {
                    let wait = (next - now).to_std().unwrap_or_default();
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?;
                    rt.block_on(tokio::time::sleep(wait));
                }
            }
        }
        Command::Inbox { command } => {
            refuse_invalid(&settings)?;
            let (pool, ring) = open_store(&settings)?;
            let mut conn = pool.get()?;
            let now = herald::clock::Clock::now(&clock);
            let staff = |user: &str, patient: Option<String>, query: &str| {
                herald::domain::audit::AuditRecord {
                    recorded: now,
                    activity: herald::domain::audit::Activity::RecordQuery {
                        resource_type: "Communication".into(),
                        query: query.into(),
                    },
                    actor: herald::domain::audit::Actor::Staff(user.into()),
                    outcome: herald::domain::audit::Outcome::Success,
                    outcome_desc: None,
                    patient_id: patient,
                    request_id: None,
                    ehr: None,
                }
            };
            match command {
                InboxCommand::List { user } => {
                    let open = herald::db::inbound::open_queue(&mut conn, &ring)?;
                    let records: Vec<_> = open
                        .iter()
                        .map(|o| staff(&user, o.patient_id.clone(), "inbox"))
                        .collect();
                    audit::append_now(&mut conn, &records)?;
                    for o in open {
                        writeln!(
                            stdout,
                            "{}",
                            serde_json::json!({
                                "key": o.dedupe_key, "patient": o.patient_id, "reading": o.reading,
                                "received": o.received_at.to_rfc3339(), "due_by": o.due_by.to_rfc3339(),
                                "overdue": o.due_by <= now, "text": o.body,
                            })
                        )?;
                    }
                    Ok(ExitCode::SUCCESS)
                }
                InboxCommand::Done { key, user } => {
                    if !herald::db::inbound::mark_handled(&mut conn, &key, &user, now)? {
                        anyhow::bail!(
                            "no open inbox item {key:?}; run `herald inbox list` for the keys"
                        );
                    }
                    audit::append_now(&mut conn, &[staff(&user, None, "inbox-done")])?;
                    Ok(ExitCode::SUCCESS)
                }
            }
        }
        Command::User { command } => {
            refuse_invalid(&settings)?;
            let (pool, ring) = open_store(&settings)?;
            let mut conn = pool.get()?;
            let now = herald::clock::Clock::now(&clock);
            user_cmd(&mut conn, &ring, now, command, &mut stdout)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Link { patient, days, by } => {
            use herald::service::preferences::{MAX_LINK_DAYS, NewLinkError, new_link};
            if !(1..=MAX_LINK_DAYS).contains(&days) {
                // A usage error: one line, exit 2 (issue 11 F8f).
                writeln!(
                    std::io::stderr(),
                    "herald link: --days must be 1 to {MAX_LINK_DAYS}; a preference link lasts at most {MAX_LINK_DAYS} days"
                )?;
                return Ok(ExitCode::from(2));
            }
            refuse_invalid(&settings)?;
            let (pool, ring) = open_store(&settings)?;
            let mut conn = pool.get()?;
            let who = by.unwrap_or_else(|| {
                let os = env.get("USER").or_else(|| env.get("LOGNAME"));
                format!("os:{}", os.map_or("unknown", String::as_str))
            });
            let now = herald::clock::Clock::now(&clock);
            let actor = herald::domain::audit::Actor::Staff(who);
            let token = match new_link(&mut conn, &ring, now, &patient, days, actor) {
                Ok((token, _)) => token,
                Err(NewLinkError::UnknownPatient) => {
                    anyhow::bail!("no patient {patient:?} in Herald's store; check the id")
                }
                Err(e) => return Err(e.into()),
            };
            let base = settings
                .server
                .public_url
                .clone()
                .unwrap_or_else(|| format!("http://{}", settings.server.bind));
            writeln!(stdout, "{}/p/{token}", base.trim_end_matches('/'))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Worker => {
            refuse_invalid(&settings)?;
            let state = open_state(settings, clock)?;
            let workers = start_workers(&state)?;
            writeln!(
                stdout,
                "Herald outbox workers running ({} threads); Ctrl-C stops them",
                state.settings.outbox.workers
            )?;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let _ = tokio::signal::ctrl_c().await;
            });
            workers.stop();
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `herald user ...`: account commands; each is audited in `service::staff`.
fn user_cmd(
    conn: &mut db::DbConn,
    ring: &herald::crypto::KeyRing,
    now: chrono::DateTime<chrono::Utc>,
    command: UserCommand,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<()> {
    use herald::domain::staff::Role;
    use herald::service::staff;
    match command {
        UserCommand::Add { name, role } => {
            let role = match role {
                RoleArg::Admin => Role::Admin,
                RoleArg::Clinician => Role::Clinician,
                RoleArg::Auditor => Role::Auditor,
            };
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            let password = line.trim_end_matches(['\n', '\r']);
            let (_, uri) = staff::add_user(conn, ring, now, &name, role, password)?;
            writeln!(out, "{uri}")?;
        }
        UserCommand::Token { name, days } => {
            let token = staff::issue_token(conn, now, &name, days)?;
            writeln!(out, "{token}")?;
        }
        UserCommand::Unlock { name } => {
            staff::unlock(conn, now, &name)?;
            writeln!(out, "user: unlocked")?;
        }
    }
    Ok(())
}

fn follower(state: &web::AppState) -> anyhow::Result<herald::service::ehr::Follower> {
    Ok(herald::service::ehr::Follower::new(
        Arc::clone(&state.settings),
        state.pool.clone(),
        Arc::clone(&state.ring),
        state.clock.clone(),
    )?)
}

/// Starts following the EHR when one is configured.
fn start_follower(state: &web::AppState) -> anyhow::Result<Option<herald::service::ehr::Running>> {
    if state.settings.ehr.base_url.is_none() {
        return Ok(None);
    }
    let f = Arc::new(follower(state)?);
    let holder = format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple());
    Ok(Some(herald::service::ehr::Running::start(f, holder)?))
}

/// Starts the outbox workers for a server or worker process.
fn start_workers(state: &web::AppState) -> anyhow::Result<herald::service::worker::Workers> {
    let s = &state.settings;
    let sender = herald::providers::from_settings(s).map_err(|e| anyhow::anyhow!(e))?;
    let renderer =
        render::Renderer::embedded().map_err(|p| anyhow::anyhow!("templates: {}", p.join("; ")))?;
    let deps = herald::service::worker::Deps {
        pool: state.pool.clone(),
        ring: Arc::clone(&state.ring),
        clock: state.clock.clone(),
        messaging: s.messaging.clone(),
        outbox: s.outbox.clone(),
        renderer: Arc::new(renderer),
        sender: Arc::new(sender),
        guard: Arc::new(herald::guard::Guard::new()),
        ehr: s.ehr.base_url.clone().unwrap_or_default(),
        status_callback: s
            .server
            .public_url
            .as_ref()
            .map(|u| format!("{}/hooks/sms/twilio/status", u.trim_end_matches('/'))),
    };
    let id = format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple());
    Ok(herald::service::worker::Workers::start(
        Arc::new(deps),
        &id,
    )?)
}

fn serve(state: web::AppState, out: &mut dyn std::io::Write) -> anyhow::Result<ExitCode> {
    let bind = state.settings.server.bind.clone();
    let listener =
        std::net::TcpListener::bind(&bind).with_context(|| format!("cannot listen on {bind}"))?;
    let addr = listener.local_addr()?;
    let scheme = if state.settings.server.tls_cert.is_some() {
        "https"
    } else {
        "http"
    };
    writeln!(out, "Herald is listening on {scheme}://{addr}")?;
    writeln!(
        out,
        "  health:     {scheme}://{addr}/healthz   readiness: {scheme}://{addr}/readyz"
    )?;
    writeln!(out, "  FHIR:       {scheme}://{addr}/fhir/metadata")?;
    writeln!(
        out,
        "  audit log:  {scheme}://{addr}/fhir/AuditEvent?_count=20&_sort=-date"
    )?;
    writeln!(
        out,
        "  by patient: {scheme}://{addr}/fhir/AuditEvent?patient=Patient/pat-001"
    )?;
    out.flush()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        // Rows sealed by an older data key are re-encrypted in the background,
        // a small batch per transaction, while the server answers.
        let bg = state.clone();
        tokio::spawn(async move {
            loop {
                let st = bg.clone();
                let done = tokio::task::spawn_blocking(move || -> anyhow::Result<usize> {
                    let mut conn = st.pool.get()?;
                    Ok(keys::reencrypt_batch(
                        &mut conn,
                        &st.ring,
                        st.clock.as_ref(),
                        200,
                    )?)
                })
                .await;
                match done {
                    Ok(Ok(n)) if n > 0 => continue,
                    Ok(Err(e)) => tracing::warn!(error = %e, "background re-encryption paused"),
                    _ => {}
                }
                tokio::time::sleep(std::time::Duration::from_secs(600)).await;
            }
        });
        // A full chain verification every hour, recorded for the /audit page
        // (which checks only what was appended since the newest one).
        let verifier = state.clone();
        tokio::spawn(async move {
            loop {
                let st = verifier.clone();
                let done =
                    tokio::task::spawn_blocking(move || -> anyhow::Result<audit::Verdict> {
                        let mut conn = st.pool.get()?;
                        Ok(audit::verify_and_record(&mut conn, st.clock.as_ref())?)
                    })
                    .await;
                match done {
                    Ok(Ok(audit::Verdict::Broken(b))) => {
                        tracing::error!(target: "security", seq = b.seq, "audit chain broken: {b}")
                    }
                    Ok(Err(e)) => tracing::warn!(error = %e, "audit verification failed"),
                    _ => {}
                }
                tokio::time::sleep(AUDIT_VERIFY_EVERY).await;
            }
        });
        // A signed checkpoint of the chain head at start and every hour.
        let anchor = state.clone();
        tokio::spawn(async move {
            loop {
                let st = anchor.clone();
                if let Ok(done) = tokio::task::spawn_blocking(move || anchor_now(&st)).await {
                    log_checkpoint(done);
                }
                tokio::time::sleep(AUDIT_CHECKPOINT_EVERY).await;
            }
        });
        // Housekeeping (issue 11 F5d): prune the rate limiters and purge
        // expired SMART and staff sessions, every few minutes.
        let keeper = state.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(web::limits::TICK_EVERY).await;
                if let Err(e) = web::limits::tick(&keeper).await {
                    tracing::warn!(error = %e, "housekeeping failed; retrying at the next tick");
                }
            }
        });
        let server = web::server(state, listener)?;
        let handle = server.handle();
        tokio::spawn(async move {
            shutdown_signal().await;
            handle.stop(true).await;
        });
        server.await
    })?;
    Ok(ExitCode::SUCCESS)
}

/// How often `herald serve` verifies the whole audit chain.
const AUDIT_VERIFY_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// How often `herald serve` signs a checkpoint of the audit chain head.
const AUDIT_CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// Resolves on Ctrl-C (SIGINT) or SIGTERM; `herald serve` then stops and
/// writes a last audit checkpoint.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// One checkpoint of the audit chain head (blocking).
fn anchor_now(state: &web::AppState) -> anyhow::Result<audit::checkpoint::Anchored> {
    let mut conn = state.pool.get()?;
    let now = herald::clock::Clock::now(state.clock.as_ref());
    Ok(audit::checkpoint::anchor(&mut conn, &state.settings, now)?)
}

/// Logs what a checkpoint in `herald serve` did; a refusal to sign is a
/// security event.
fn log_checkpoint(done: anyhow::Result<audit::checkpoint::Anchored>) {
    use audit::checkpoint::CheckpointError;
    match done {
        Ok(a) => {
            let cp = &a.written.checkpoint;
            tracing::info!(
                audit.seq = cp.seq,
                key.id = %cp.kid,
                path = %a.written.path.display(),
                "audit checkpoint written"
            );
            if let Some(Err(e)) = a.webhook {
                tracing::error!(target: "security", error = %e, "audit checkpoint webhook failed; the file was written");
            }
        }
        Err(e) => match e.downcast_ref::<CheckpointError>() {
            Some(CheckpointError::NotExtending(_)) => {
                tracing::error!(target: "security", "audit checkpoint refused: {e}")
            }
            _ => tracing::warn!(error = %e, "audit checkpoint failed"),
        },
    }
}

/// `herald audit checkpoint [--public-key]`.
fn checkpoint_cmd(
    conn: &mut db::DbConn,
    settings: &Settings,
    clock: &SystemClock,
    public_key: bool,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<ExitCode> {
    use audit::checkpoint::{SigningKey, anchor};
    let key_path = settings.checkpoint_key();
    if public_key {
        let (key, _) = SigningKey::load_or_create(&key_path)?;
        write!(out, "{}", key.public_pem()?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let a = anchor(conn, settings, herald::clock::Clock::now(clock))?;
    if a.key_created {
        writeln!(
            out,
            "audit: made the checkpoint signing key {} (back it up; keep it off the database host)",
            key_path.display()
        )?;
    }
    let cp = &a.written.checkpoint;
    writeln!(
        out,
        "audit: checkpoint of seq {} signed by key {} in {}",
        cp.seq,
        cp.kid,
        a.written.path.display()
    )?;
    if let Some(Err(e)) = a.webhook {
        anyhow::bail!(
            "the checkpoint file was written but audit.checkpoint_webhook failed ({e}); check the URL and run `herald audit checkpoint` again"
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `herald audit verify --checkpoints DIR [--public-key FILE]`, after the
/// chain itself verified.
fn verify_checkpoints_cmd(
    conn: &mut db::DbConn,
    settings: &Settings,
    dir: &std::path::Path,
    public_key: Option<&std::path::Path>,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<ExitCode> {
    use audit::checkpoint::{SigningKey, VerifyingKey, verify_dir};
    let key = match public_key {
        Some(p) => VerifyingKey::read(p)
            .with_context(|| format!("cannot read the public key {}", p.display()))?,
        None => {
            let path = settings.checkpoint_key();
            SigningKey::load(&path)?
                .with_context(|| {
                    format!(
                        "no checkpoint key at {}: pass --public-key FILE (from `herald audit checkpoint --public-key` where the checkpoints are signed)",
                        path.display()
                    )
                })?
                .verifying_key()?
        }
    };
    match verify_dir(conn, dir, &key)? {
        Ok(v) => {
            writeln!(
                out,
                "audit: {} checkpoints verified, the newest at seq {} ({})",
                v.count, v.newest_seq, v.newest_time
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Err(f) => {
            writeln!(std::io::stderr(), "herald: {f}")?;
            Ok(ExitCode::from(1))
        }
    }
}

fn check_profiles() -> Vec<String> {
    let mut problems = Vec::new();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("profiles");
    let dirs = [root.join("fhir"), root.join("ehr")];
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "json") {
                let ok = std::fs::read_to_string(&p)
                    .ok()
                    .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                    .is_some_and(|v| v.get("resourceType").is_some() || v.get("preset").is_some());
                if !ok {
                    problems.push(format!(
                        "{}: not a FHIR resource or EHR preset in JSON",
                        p.display()
                    ));
                }
            }
        }
    }
    problems
}

/// `herald guard`: one JSON verdict per stdin line. A line that cannot be read is answered with
/// a blocking verdict carrying an `error` field (fail closed), never a panic.
fn guard_cmd(settings: &Settings, lang: Option<&str>, content: bool) -> anyhow::Result<()> {
    use herald::guard::{ContentRules, Guard, ScanContext};
    use std::io::BufRead as _;

    let m = &settings.messaging;
    let guard = Guard::new();
    let domains: Vec<&str> = [m.portal_domain()]
        .into_iter()
        .filter(|d| !d.is_empty())
        .collect();
    let base: Vec<&str> = [
        m.practice_name.as_str(),
        m.practice_phone.as_str(),
        m.portal_url.as_str(),
    ]
    .into_iter()
    .filter(|v| !v.trim().is_empty())
    .collect();
    let rules = content.then_some(ContentRules {
        brand: &m.practice_name,
        require_opt_out: true,
    });
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut buf = Vec::new();
    let mut n = 0usize;
    loop {
        buf.clear();
        if input.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        n += 1;
        let line = match std::str::from_utf8(&buf) {
            Ok(l) => l.trim_end_matches(['\n', '\r']),
            Err(_) => {
                guard_error(&mut out, n, "not UTF-8")?;
                continue;
            }
        };
        let (text, line_lang, extra) = if line.trim_start().starts_with('{') {
            match serde_json::from_str::<serde_json::Value>(line) {
                Ok(v) => {
                    let Some(text) = v.get("text").and_then(|t| t.as_str()) else {
                        guard_error(&mut out, n, "no \"text\" string")?;
                        continue;
                    };
                    let lang = v.get("lang").and_then(|l| l.as_str()).map(str::to_string);
                    let extra: Vec<String> = v
                        .get("allowed")
                        .and_then(|a| a.as_array())
                        .map(|a| {
                            a.iter()
                                .filter_map(|x| x.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default();
                    (text.to_string(), lang, extra)
                }
                Err(_) => {
                    guard_error(&mut out, n, "not valid JSON")?;
                    continue;
                }
            }
        } else {
            (line.to_string(), None, Vec::new())
        };
        let mut allowed = base.clone();
        allowed.extend(extra.iter().map(String::as_str));
        let ctx = ScanContext {
            lang: line_lang.as_deref().or(lang),
            allowed: &allowed,
            allowed_domains: &domains,
            content: rules,
        };
        let verdict = guard.scan(&text, &ctx);
        let findings: Vec<String> = verdict
            .findings
            .iter()
            .map(|f| {
                format!(
                    r#"{{"kind":"{}","start":{},"end":{}}}"#,
                    f.kind.as_str(),
                    f.start,
                    f.end
                )
            })
            .collect();
        let word = if verdict.blocked() { "block" } else { "pass" };
        writeln!(
            out,
            r#"{{"verdict":"{word}","findings":[{}]}}"#,
            findings.join(",")
        )?;
    }
    out.flush()?;
    Ok(())
}

fn guard_error(out: &mut dyn std::io::Write, line: usize, why: &str) -> anyhow::Result<()> {
    let msg = serde_json::to_string(&format!("line {line}: {why}"))?;
    writeln!(out, r#"{{"verdict":"block","findings":[],"error":{msg}}}"#)?;
    Ok(())
}

/// `herald reply classify`: one `{"intent": …}` line per stdin line, read by
/// `domain::reply::classify` (the webhook's reading). A JSON line may carry its
/// own `context`; a line that cannot be read answers `other` with an `error`.
fn reply_classify_cmd(context: ReplyContextArg) -> anyhow::Result<()> {
    use herald::domain::reply::{ReplyContext, classify};
    use std::io::BufRead as _;
    let default = match context {
        ReplyContextArg::None => ReplyContext::None,
        ReplyContextArg::Reminder => ReplyContext::Reminder,
        ReplyContextArg::AfterOptOut => ReplyContext::AfterOptOut,
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        if input.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        let Ok(line) = std::str::from_utf8(&buf) else {
            writeln!(
                out,
                "{}",
                serde_json::json!({"intent": "other", "error": "not UTF-8"})
            )?;
            continue;
        };
        let line = line.trim_end_matches(['\n', '\r']);
        let (text, ctx) = if line.trim_start().starts_with('{') {
            match serde_json::from_str::<serde_json::Value>(line) {
                Ok(v) => {
                    let Some(text) = v.get("text").and_then(|t| t.as_str()) else {
                        writeln!(
                            out,
                            "{}",
                            serde_json::json!({"intent": "other", "error": "no \"text\" string"})
                        )?;
                        continue;
                    };
                    let ctx = match v.get("context").and_then(|c| c.as_str()) {
                        Some(c) => match ReplyContext::parse(c) {
                            Some(c) => c,
                            None => {
                                writeln!(
                                    out,
                                    "{}",
                                    serde_json::json!({"intent": "other", "error": "context must be reminder, after_opt_out or none"})
                                )?;
                                continue;
                            }
                        },
                        None => default,
                    };
                    (text.to_string(), ctx)
                }
                Err(_) => {
                    writeln!(
                        out,
                        "{}",
                        serde_json::json!({"intent": "other", "error": "not valid JSON"})
                    )?;
                    continue;
                }
            }
        } else {
            (line.to_string(), default)
        };
        writeln!(
            out,
            "{}",
            serde_json::json!({"intent": classify(&text, ctx).code()})
        )?;
    }
    out.flush()?;
    Ok(())
}
