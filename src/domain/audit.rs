//! What an audit record says, before it becomes a FHIR AuditEvent in `audit/`.
//! Rules: reference/fhir.md §1.4 A1–A11 (IHE BALP).

use chrono::{DateTime, Utc};

use super::{Channel, Purpose};

/// AuditEvent.action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// C
    Create,
    /// R
    Read,
    /// U
    Update,
    /// D
    Delete,
    /// E
    Execute,
}

impl Action {
    /// The R4 code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Create => "C",
            Self::Read => "R",
            Self::Update => "U",
            Self::Delete => "D",
            Self::Execute => "E",
        }
    }
}

/// AuditEvent.outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 0
    Success,
    /// 4
    MinorFailure,
    /// 8
    SeriousFailure,
    /// 12
    MajorFailure,
}

impl Outcome {
    /// The R4 code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Success => "0",
            Self::MinorFailure => "4",
            Self::SeriousFailure => "8",
            Self::MajorFailure => "12",
        }
    }
}

/// Who acted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// Herald itself (a job, the poller, the demo).
    System,
    /// A signed-in staff user (opaque user id).
    Staff(String),
    /// An unauthenticated caller (e.g. a webhook), by network address.
    Anonymous(String),
    /// A system of the hospital's, by the access token its authorization
    /// server issued (`[api]` issuers): the issuer and the client id.
    ApiClient {
        /// The token's issuer.
        issuer: String,
        /// The client (`client_id`, else `sub`).
        client: String,
    },
    /// A staff user acting under a break-glass grant: every record carries
    /// purposeOfUse BTG and names the grant.
    BreakGlass {
        /// The user's opaque id.
        user: String,
        /// The grant's id.
        grant: String,
    },
    /// A sign-in under a name Herald does not know: the name's keyed hash
    /// (`KeyRing::blind_index`), never the name itself.
    UnknownUser(String),
}

/// Which end of a session (DICOM 110114 User Authentication subtypes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthEvent {
    /// DCM 110122 Login.
    Login,
    /// DCM 110123 Logout.
    Logout,
}

/// What changed about a staff account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountChange {
    /// The account was created.
    Created,
    /// An API token was issued.
    TokenIssued,
    /// A lockout was lifted.
    Unlocked,
}

impl AccountChange {
    /// The code in the record.
    pub fn code(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::TokenIssued => "token-issued",
            Self::Unlocked => "unlocked",
        }
    }
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Activity {
    /// Herald read one resource from the EHR (BALP rest read, A2).
    EhrRead {
        /// Resource type.
        resource_type: String,
        /// Logical id.
        id: String,
    },
    /// A FHIR REST call Herald made to the EHR (BALP A2–A6): one record per
    /// call, and per patient when a search touched several (A5).
    EhrRest {
        /// read, vread, search-type, create, update or operation.
        interaction: RestInteraction,
        /// Resource type.
        resource_type: String,
        /// Logical id (read, vread, create, update).
        id: Option<String>,
        /// The query string or operation (searches, operations).
        query: Option<String>,
        /// The access token's `jti`, when the token is a JWT (A6); never the token.
        token_jti: Option<String>,
    },
    /// A message was disclosed to the patient (BALP PrivacyDisclosure, A7).
    Disclosure {
        /// The outbox intent.
        intent_id: String,
        /// Channel used.
        channel: Channel,
        /// Purpose of the message.
        purpose: Purpose,
        /// The resource the message is about ("Appointment/123").
        about: String,
    },
    /// The consent check before a send (BALP AuthZ-Consent, A8).
    ConsentDecision {
        /// The outbox intent.
        intent_id: String,
        /// Channel checked.
        channel: Channel,
        /// Purpose checked.
        purpose: Purpose,
        /// Permit?
        permit: bool,
        /// The deciding Consent.
        consent_id: Option<String>,
    },
    /// A consent was recorded in the ledger.
    ConsentRecorded {
        /// The new Consent.
        consent_id: String,
    },
    /// Someone searched or read the audit log (A9).
    AuditQuery {
        /// The query string.
        query: String,
    },
    /// A provider delivered an inbound message (or a webhook was refused):
    /// how Herald read it, never its text.
    InboundMessage {
        /// The provider's message id (Twilio MessageSid); "unknown" when absent.
        message_ref: String,
        /// Herald's reading ("stop", "help", …) or why it was refused.
        reading: String,
    },
    /// Someone searched or read Herald's own records of a patient (e.g.
    /// Communication), through its FHIR endpoint.
    RecordQuery {
        /// The resource type searched.
        resource_type: String,
        /// The query string (`_id=…` for a read).
        query: String,
    },
    /// A staff sign-in or sign-out, successful or not (DICOM 110114).
    UserAuthentication {
        /// Login or logout.
        event: AuthEvent,
        /// The caller's network address ("cli" for the command line).
        address: String,
    },
    /// A staff account changed (DICOM 110113 / 110137).
    StaffAccount {
        /// The account's opaque id.
        user_id: String,
        /// What changed.
        change: AccountChange,
    },
    /// A clinician asked for emergency access to a patient (DICOM 110113 /
    /// 110127 Emergency Override Started); purposeOfEvent BTG. The reason is
    /// sealed in the grant, never in the record.
    BreakGlass {
        /// The grant (none when refused).
        grant_id: Option<String>,
        /// When the grant ends.
        ends: Option<DateTime<Utc>>,
    },
    /// A preference-page link was issued for the record's patient (issue 11
    /// F8f): by whom (the actor) and until when; never the token.
    PreferenceLink {
        /// When the link stops working.
        expires: DateTime<Utc>,
    },
    /// A step in confirming a number or address the patient entered on the
    /// preference page (issue 11 F8f); never the address or the code.
    ContactCode {
        /// The code's opaque id.
        code_id: String,
        /// Where the code went.
        channel: Channel,
        /// What happened.
        step: CodeStep,
    },
}

/// A step of a contact confirmation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeStep {
    /// A code was sent to the new address.
    Sent,
    /// The channel did not take the code.
    SendFailed,
    /// Refused: the patient's hourly cap of codes was reached.
    Capped,
    /// The right code: the address is now the patient's.
    Confirmed,
    /// A wrong code.
    Wrong,
    /// Entered after the code expired.
    Expired,
    /// Refused: too many wrong codes.
    Locked,
}

impl CodeStep {
    /// The code written into the AuditEvent.
    pub fn code(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::SendFailed => "send-failed",
            Self::Capped => "capped",
            Self::Confirmed => "confirmed",
            Self::Wrong => "wrong-code",
            Self::Expired => "expired",
            Self::Locked => "locked",
        }
    }
}

/// The FHIR restful interaction of an EHR call (A2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestInteraction {
    /// read
    Read,
    /// vread
    Vread,
    /// search-type
    Search,
    /// create
    Create,
    /// update
    Update,
    /// operation ($status, $events, $export)
    Operation,
}

impl RestInteraction {
    /// The restful-interaction code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Vread => "vread",
            Self::Search => "search-type",
            Self::Create => "create",
            Self::Update => "update",
            Self::Operation => "operation",
        }
    }

    /// The AuditEvent.action (A2).
    pub fn action(self) -> Action {
        match self {
            Self::Read | Self::Vread => Action::Read,
            Self::Search | Self::Operation => Action::Execute,
            Self::Create => Action::Create,
            Self::Update => Action::Update,
        }
    }

    /// Whether data flows from Herald to the server (create, update: A3 reversed roles).
    pub fn writes(self) -> bool {
        matches!(self, Self::Create | Self::Update)
    }
}

/// One audit record. Holds references and codes only, never PHI values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// When it happened.
    pub recorded: DateTime<Utc>,
    /// What happened.
    pub activity: Activity,
    /// Who did it.
    pub actor: Actor,
    /// How it ended.
    pub outcome: Outcome,
    /// A failure's description (no PHI).
    pub outcome_desc: Option<String>,
    /// The patient concerned (logical id), one record per patient (A5).
    pub patient_id: Option<String>,
    /// The HTTP request id, when the activity came through HTTP (A6).
    pub request_id: Option<String>,
    /// The EHR base URL involved.
    pub ehr: Option<String>,
}

impl AuditRecord {
    /// The AuditEvent.action for this activity (A2, A7, A8).
    pub fn action(&self) -> Action {
        match self.activity {
            Activity::EhrRead { .. } | Activity::Disclosure { .. } => Action::Read,
            Activity::EhrRest { interaction, .. } => interaction.action(),
            Activity::ConsentDecision { .. }
            | Activity::AuditQuery { .. }
            | Activity::RecordQuery { .. } => Action::Execute,
            Activity::InboundMessage { .. } => Action::Create,
            Activity::ConsentRecorded { .. } => Action::Create,
            Activity::UserAuthentication { .. } | Activity::BreakGlass { .. } => Action::Execute,
            Activity::PreferenceLink { .. } => Action::Create,
            Activity::ContactCode { step, .. } => match step {
                CodeStep::Sent | CodeStep::SendFailed | CodeStep::Capped => Action::Create,
                _ => Action::Update,
            },
            Activity::StaffAccount { change, .. } => match change {
                AccountChange::Created | AccountChange::TokenIssued => Action::Create,
                AccountChange::Unlocked => Action::Update,
            },
        }
    }

    /// The same record by another actor: how a handler marks what a
    /// signed-in user did, or what was done under a break-glass grant.
    pub fn by(self, actor: Actor) -> Self {
        Self { actor, ..self }
    }
}
