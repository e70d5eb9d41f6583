//! The wrapped data keys.

use diesel::prelude::*;

use super::schema::data_keys;
use super::{DbConn, DbError};
use crate::crypto::WrappedKey;

/// Every stored data key, oldest first.
pub fn list(conn: &mut DbConn) -> Result<Vec<WrappedKey>, DbError> {
    let rows: Vec<(i32, Vec<u8>)> = data_keys::table
        .select((data_keys::id, data_keys::wrapped))
        .order(data_keys::id.asc())
        .load(conn)?;
    rows.into_iter()
        .map(|(id, wrapped)| {
            Ok(WrappedKey {
                id: u32::try_from(id).map_err(|e| DbError::Other(e.into()))?,
                wrapped,
            })
        })
        .collect()
}

/// The id the next key gets.
pub fn next_id(conn: &mut DbConn) -> Result<u32, DbError> {
    let max: Option<i32> = data_keys::table
        .select(diesel::dsl::max(data_keys::id))
        .first(conn)?;
    let next = max.unwrap_or(0).checked_add(1).ok_or(DbError::Conflict)?;
    u32::try_from(next).map_err(|e| DbError::Other(e.into()))
}

/// Stores a new wrapped key.
pub fn insert(
    conn: &mut DbConn,
    key: &WrappedKey,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), DbError> {
    let id = i32::try_from(key.id).map_err(|e| DbError::Other(e.into()))?;
    diesel::insert_into(data_keys::table)
        .values((
            data_keys::id.eq(id),
            data_keys::wrapped.eq(&key.wrapped),
            data_keys::created_at.eq(super::ts(now)),
        ))
        .execute(conn)?;
    Ok(())
}
