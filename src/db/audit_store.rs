//! Audit rows: append (under the chain head's lock), scan in order, search.
//! The rows are append-only at the database level (triggers in migrations).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{audit_events as a, audit_head as h, audit_verifications as v};
use super::{DbConn, DbError};

/// One stored audit row: the search columns, the AuditEvent JSON, the chain.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Insertable)]
#[diesel(table_name = a)]
pub struct AuditRow {
    /// Position in the chain, from 1, without gaps.
    pub seq: i64,
    /// AuditEvent.id.
    pub id: String,
    /// AuditEvent.recorded (UTC).
    pub recorded: NaiveDateTime,
    /// type.code.
    pub type_code: String,
    /// `subtype[0].code`.
    pub subtype_code: Option<String>,
    /// action.
    pub action: String,
    /// outcome.
    pub outcome: String,
    /// `Patient/<id>` of the patient entity.
    pub patient_ref: Option<String>,
    /// The requesting agent's who (reference or identifier value).
    pub agent_who: Option<String>,
    /// The data entity's reference.
    pub entity_ref: Option<String>,
    /// The AuditEvent JSON as hashed.
    pub resource: String,
    /// Hash of the previous row (or the genesis hash).
    pub prev_hash: String,
    /// SHA-256 over prev_hash and this row's content.
    pub hash: String,
}

/// Locks the chain head for this transaction and returns (seq, hash).
/// The no-op UPDATE takes the row lock on PostgreSQL and the write lock on
/// SQLite, so concurrent appenders queue here; RETURNING reads the head in
/// the same statement (one round trip less per append).
pub fn lock_head(conn: &mut DbConn) -> Result<(i64, String), DbError> {
    Ok(diesel::update(h::table.find(1))
        .set(h::seq.eq(h::seq))
        .returning((h::seq, h::hash))
        .get_result(conn)?)
}

/// The chain head without locking.
pub fn head(conn: &mut DbConn) -> Result<(i64, String), DbError> {
    Ok(h::table.find(1).select((h::seq, h::hash)).first(conn)?)
}

/// Whether [`append_one`] appends in one statement on this connection
/// (PostgreSQL, whose `sha256()` computes the chain hash).
pub fn appends_in_one_statement(conn: &DbConn) -> bool {
    matches!(conn, DbConn::Pg(_))
}

/// The one-statement append on PostgreSQL: lock the head row, chain the row
/// from the head's hash — SHA-256 over `prev ‖ "\n" ‖ seq ‖ "\n" ‖ id ‖ "\n" ‖
/// JSON`, hex: the formula of `audit::chain_hash`, which `herald audit verify`
/// recomputes — insert it and move the head, in one round trip. Concurrent
/// appenders queue on the head row; each re-reads the head it waited for. A
/// query type of its own (not `sql_query`), so diesel keeps it prepared.
struct AppendOne<'a>(&'a AuditRow);

impl diesel::query_builder::QueryId for AppendOne<'_> {
    type QueryId = AppendOne<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl diesel::query_builder::QueryFragment<diesel::pg::Pg> for AppendOne<'_> {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
    ) -> QueryResult<()> {
        use diesel::sql_types::{Nullable, Text, Timestamp};
        let r = self.0;
        out.push_sql(
            "WITH h AS (UPDATE audit_head SET prev_hash = hash, seq = seq + 1, \
             hash = encode(sha256(convert_to(hash || chr(10) || (seq + 1)::text || chr(10) || ",
        );
        out.push_bind_param::<Text, _>(&r.id)?;
        out.push_sql(" || chr(10) || ");
        out.push_bind_param::<Text, _>(&r.resource)?;
        out.push_sql(
            ", 'UTF8')), 'hex') WHERE id = 1 RETURNING seq, prev_hash, hash) \
             INSERT INTO audit_events (seq, id, recorded, type_code, subtype_code, action, \
             outcome, patient_ref, agent_who, entity_ref, resource, prev_hash, hash) \
             SELECT h.seq, ",
        );
        out.push_bind_param::<Text, _>(&r.id)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamp, _>(&r.recorded)?;
        for (i, v) in [&r.type_code, &r.action, &r.outcome]
            .into_iter()
            .enumerate()
        {
            if i == 1 {
                out.push_sql(", ");
                out.push_bind_param::<Nullable<Text>, _>(&r.subtype_code)?;
            }
            out.push_sql(", ");
            out.push_bind_param::<Text, _>(v)?;
        }
        for v in [&r.patient_ref, &r.agent_who, &r.entity_ref] {
            out.push_sql(", ");
            out.push_bind_param::<Nullable<Text>, _>(v)?;
        }
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&r.resource)?;
        out.push_sql(", h.prev_hash, h.hash FROM h");
        Ok(())
    }
}

impl<Conn> RunQueryDsl<Conn> for AppendOne<'_> {}

/// Appends one row (its `seq`, `prev_hash` and `hash` are ignored) in a single
/// statement where the database can hash (PostgreSQL); `Ok(false)` on SQLite,
/// where the caller chains it ([`lock_head`], [`insert`]).
pub fn append_one(conn: &mut DbConn, row: &AuditRow) -> Result<bool, DbError> {
    let DbConn::Pg(c) = conn else {
        return Ok(false);
    };
    AppendOne(row).execute(c)?;
    Ok(true)
}

/// Inserts rows and moves the head to the last one. Call after [`lock_head`]
/// in the same transaction.
pub fn insert(conn: &mut DbConn, rows: &[AuditRow]) -> Result<(), DbError> {
    let Some(last) = rows.last() else {
        return Ok(());
    };
    if let [row] = rows {
        // One row (a read's record): a plain INSERT, without the savepoint
        // diesel wraps around a SQLite batch.
        diesel::insert_into(a::table).values(row).execute(conn)?;
    }
    for chunk in rows.chunks(100).filter(|_| rows.len() > 1) {
        // Multi-row VALUES is backend-specific in diesel.
        match conn {
            DbConn::Pg(c) => diesel::insert_into(a::table).values(chunk).execute(c)?,
            DbConn::Sqlite(c) => diesel::insert_into(a::table).values(chunk).execute(c)?,
        };
    }
    diesel::update(h::table.find(1))
        .set((h::seq.eq(last.seq), h::hash.eq(&last.hash)))
        .execute(conn)?;
    Ok(())
}

/// Rows after `after_seq` in chain order, at most `limit`.
pub fn scan(conn: &mut DbConn, after_seq: i64, limit: i64) -> Result<Vec<AuditRow>, DbError> {
    Ok(a::table
        .filter(a::seq.gt(after_seq))
        .order(a::seq.asc())
        .limit(limit)
        .load(conn)?)
}

/// The id and chain hash of the record at `seq`, if there is one (a signed
/// checkpoint names a seq and the hash it had: `audit::checkpoint`).
pub fn record_hash(conn: &mut DbConn, seq: i64) -> Result<Option<(String, String)>, DbError> {
    Ok(a::table
        .filter(a::seq.eq(seq))
        .select((a::id, a::hash))
        .first(conn)
        .optional()?)
}

/// Rows in chain order whose `recorded` lies in [since, until).
pub fn scan_between(
    conn: &mut DbConn,
    after_seq: i64,
    since: Option<NaiveDateTime>,
    until: Option<NaiveDateTime>,
    limit: i64,
) -> Result<Vec<AuditRow>, DbError> {
    let mut q = a::table.filter(a::seq.gt(after_seq)).into_boxed();
    if let Some(s) = since {
        q = q.filter(a::recorded.ge(s));
    }
    if let Some(u) = until {
        q = q.filter(a::recorded.lt(u));
    }
    Ok(q.order(a::seq.asc()).limit(limit).load(conn)?)
}

/// One row by AuditEvent id.
pub fn get(conn: &mut DbConn, id: &str) -> Result<Option<AuditRow>, DbError> {
    Ok(a::table.filter(a::id.eq(id)).first(conn).optional()?)
}

/// A date bound: comparator and instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateBound {
    /// recorded >= t
    Ge(NaiveDateTime),
    /// recorded > t
    Gt(NaiveDateTime),
    /// recorded <= t
    Le(NaiveDateTime),
    /// recorded < t
    Lt(NaiveDateTime),
}

/// A search column: each holds one value per row (derived from the
/// AuditEvent JSON by `audit::balp::columns_of`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Field {
    /// `patient_ref`: `Patient/<id>`.
    Patient,
    /// `entity_ref`: the data entity's reference.
    Entity,
    /// `agent_who`: the requesting agent (`user:<id>`, `herald`, `anonymous`).
    Agent,
    /// `subtype_code`.
    Subtype,
    /// `outcome`: 0, 4, 8, 12.
    Outcome,
    /// `type_code`.
    Type,
    /// `action`: C, R, U, D, E.
    Action,
}

/// `field IN (any_of)`; filters are ANDed. An empty `any_of` matches nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// The column.
    pub field: Field,
    /// Accepted values (OR).
    pub any_of: Vec<String>,
}

/// An AuditEvent search.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Column filters, ANDed.
    pub filters: Vec<Filter>,
    /// Date bounds (ANDed).
    pub dates: Vec<DateBound>,
    /// Newest first.
    pub descending: bool,
    /// Keyset cursor: continue after (before, when descending) this
    /// (recorded, seq) position.
    pub cursor: Option<(NaiveDateTime, i64)>,
    /// Page size.
    pub limit: i64,
}

impl AuditQuery {
    /// The index that drives this query on SQLite (see the migration
    /// `2026-12-08-000001_audit_search`): the first filter in the order
    /// patient, entity, agent (any number of values: each is selective), then
    /// subtype, then a failure outcome (one value only: several would need a
    /// sort, and the date index reads them in page order anyway). `None`: the
    /// (recorded, seq) index.
    pub fn driver(&self) -> Option<Field> {
        let single = |f: &Filter| f.any_of.len() == 1;
        let find = |field: Field, cond: &dyn Fn(&Filter) -> bool| {
            self.filters
                .iter()
                .any(|f| f.field == field && cond(f))
                .then_some(field)
        };
        find(Field::Patient, &|_| true)
            .or_else(|| find(Field::Entity, &|_| true))
            .or_else(|| find(Field::Agent, &|_| true))
            .or_else(|| find(Field::Subtype, &single))
            .or_else(|| {
                find(Field::Outcome, &|f| {
                    single(f) && f.any_of.iter().all(|v| v != "0")
                })
            })
    }
}

type Boxed<'a> = a::BoxedQuery<'a, <DbConn as Connection>::Backend>;

/// Adds `field IN (values)` (`field = value` for one value, so PostgreSQL
/// knows an index scan returns rows in page order; `= ANY` would add a sort).
/// With `hide` (SQLite, which plans without statistics) a field that does not
/// drive is compared as `column || ''`, an expression no index covers, so the
/// planner cannot wander to a less selective index. PostgreSQL keeps its
/// statistics-based choice: hiding a column there would also hide its
/// selectivity (an expression gets a 0.5 % guess) and mislead the planner.
fn filter_on<'a>(
    b: Boxed<'a>,
    field: Field,
    mut values: Vec<String>,
    drives: bool,
    hide: bool,
) -> Boxed<'a> {
    // Bare column: the driver always; every field on PostgreSQL.
    let bare = drives || !hide;
    // A failure outcome: the literal term lets both planners prove that the
    // partial index (outcome <> '0') applies. Redundant, so always correct.
    let failures_only = field == Field::Outcome && values.iter().all(|v| v != "0");
    let one = (values.len() == 1).then(|| values.pop()).flatten();
    macro_rules! on {
        ($b:expr, $bare:expr, $col:expr) => {
            match ($bare, one) {
                (true, Some(v)) => $b.filter($col.eq(v)),
                (true, None) => $b.filter($col.eq_any(values)),
                (false, Some(v)) => $b.filter($col.concat("").eq(v)),
                (false, None) => $b.filter($col.concat("").eq_any(values)),
            }
        };
    }
    match field {
        Field::Patient => on!(b, bare, a::patient_ref),
        Field::Entity => on!(b, bare, a::entity_ref),
        Field::Agent => on!(b, bare, a::agent_who),
        Field::Subtype => on!(b, bare, a::subtype_code),
        Field::Outcome if failures_only && bare => {
            let b = b.filter(diesel::dsl::sql::<diesel::sql_types::Bool>(
                "outcome <> '0'",
            ));
            on!(b, true, a::outcome)
        }
        Field::Outcome => on!(b, bare, a::outcome),
        // Never indexed (see the migration): SQLite compares the expression.
        Field::Type => on!(b, !hide, a::type_code),
        Field::Action => on!(b, !hide, a::action),
    }
}

/// The query [`search`] runs on a backend (public so tests and benches can
/// EXPLAIN it): `sqlite` hides the filters that do not drive (see `filter_on`).
pub fn search_query(q: &AuditQuery, sqlite: bool) -> Boxed<'static> {
    let driver = q.driver();
    let mut b = a::table.into_boxed();
    for f in &q.filters {
        if f.any_of.is_empty() {
            // `IN ()`: nothing matches.
            b = b.filter(diesel::dsl::sql::<diesel::sql_types::Bool>("1 = 0"));
            continue;
        }
        b = filter_on(
            b,
            f.field,
            f.any_of.clone(),
            driver == Some(f.field),
            sqlite,
        );
    }
    for d in &q.dates {
        b = match *d {
            DateBound::Ge(t) => b.filter(a::recorded.ge(t)),
            DateBound::Gt(t) => b.filter(a::recorded.gt(t)),
            DateBound::Le(t) => b.filter(a::recorded.le(t)),
            DateBound::Lt(t) => b.filter(a::recorded.lt(t)),
        };
    }
    // Keyset: strictly after (before) the cursor in (recorded, seq) order. The
    // plain bound on `recorded` lets the index range start at the cursor, so a
    // deep page costs what the first one does.
    if q.descending {
        if let Some((t, s)) = q.cursor {
            b = b
                .filter(a::recorded.le(t))
                .filter(a::recorded.lt(t).or(a::seq.lt(s)));
        }
        b = b.order((a::recorded.desc(), a::seq.desc()));
    } else {
        if let Some((t, s)) = q.cursor {
            b = b
                .filter(a::recorded.ge(t))
                .filter(a::recorded.gt(t).or(a::seq.gt(s)));
        }
        b = b.order((a::recorded.asc(), a::seq.asc()));
    }
    b.limit(q.limit)
}

/// Runs a search, ordered by (recorded, seq), at most `q.limit` rows. Keyset
/// paging keeps pages stable while new rows arrive; nothing is counted.
pub fn search(conn: &mut DbConn, q: &AuditQuery) -> Result<Vec<AuditRow>, DbError> {
    let sqlite = matches!(conn, DbConn::Sqlite(_));
    Ok(search_query(q, sqlite).load(conn)?)
}

/// `PREFIX <query>`: runs EXPLAIN over a built query.
struct Explain<Q>(&'static str, Q);

impl<Q> diesel::query_builder::QueryId for Explain<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q> diesel::query_builder::Query for Explain<Q> {
    type SqlType = diesel::sql_types::Untyped;
}

impl<Q, DB> diesel::query_builder::QueryFragment<DB> for Explain<Q>
where
    DB: diesel::backend::Backend,
    Q: diesel::query_builder::QueryFragment<DB>,
{
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, DB>,
    ) -> QueryResult<()> {
        out.unsafe_to_cache_prepared();
        out.push_sql(self.0);
        self.1.walk_ast(out.reborrow())
    }
}

impl<Q, Conn> RunQueryDsl<Conn> for Explain<Q> {}

/// The plan the database chooses for `q`, one line per step (SQLite's
/// `EXPLAIN QUERY PLAN`, PostgreSQL's `EXPLAIN`), for tests and benches.
pub fn explain(conn: &mut DbConn, q: &AuditQuery) -> Result<Vec<String>, DbError> {
    #[derive(QueryableByName)]
    struct PgLine {
        #[diesel(sql_type = diesel::sql_types::Text, column_name = "QUERY PLAN")]
        line: String,
    }
    #[derive(QueryableByName)]
    struct SqliteLine {
        #[diesel(sql_type = diesel::sql_types::Text)]
        detail: String,
    }
    let pg = matches!(conn, DbConn::Pg(_));
    Ok(if pg {
        Explain("EXPLAIN ", search_query(q, false))
            .load::<PgLine>(conn)?
            .into_iter()
            .map(|r| r.line)
            .collect()
    } else {
        Explain("EXPLAIN QUERY PLAN ", search_query(q, true))
            .load::<SqliteLine>(conn)?
            .into_iter()
            .map(|r| r.detail)
            .collect()
    })
}

/// One recorded full verification of the chain.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Insertable)]
#[diesel(table_name = v)]
pub struct VerificationRow {
    /// Opaque id.
    pub id: String,
    /// When the walk ended.
    pub checked_at: NaiveDateTime,
    /// The last record that chained (0 when none did).
    pub through_seq: i64,
    /// Its hash.
    pub through_hash: String,
    /// Where the chain breaks, when it does.
    pub broken_seq: Option<i64>,
    /// What was found there.
    pub problem: Option<String>,
    /// How long the walk took.
    pub duration_ms: i64,
}

/// Records a verification.
pub fn insert_verification(conn: &mut DbConn, row: &VerificationRow) -> Result<(), DbError> {
    diesel::insert_into(v::table).values(row).execute(conn)?;
    Ok(())
}

/// The newest recorded verification.
pub fn latest_verification(conn: &mut DbConn) -> Result<Option<VerificationRow>, DbError> {
    Ok(v::table
        .order((v::checked_at.desc(), v::through_seq.desc()))
        .first(conn)
        .optional()?)
}
