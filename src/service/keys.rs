//! Key ring life cycle: open at start (refusing to run without a key), create
//! with `herald keys init`, rotate with `herald keys rotate` and re-encrypt
//! old rows in small batches (each its own transaction, so a running server
//! keeps working while it happens).

use crate::clock::Clock;
use crate::config::Settings;
use crate::crypto::{CryptoError, KeyRing, MasterKey, new_data_key};
use crate::db::{self, DbConn, DbError, consents, keys, outbox, patients, resources};

/// Key ring problems.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Crypto or key file.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// Storage.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The database has no data key yet.
    #[error("the database holds no data key yet: run `herald keys init`")]
    NoDataKey,
}

/// The master key from HERALD_MASTER_KEY or the key file.
pub fn master_key(settings: &Settings) -> Result<MasterKey, CryptoError> {
    if let Some(k) = &settings.crypto.master_key {
        return MasterKey::from_base64(k.expose());
    }
    let path = settings.key_file();
    MasterKey::read_file(&path)?.ok_or_else(|| CryptoError::NoKey(path.display().to_string()))
}

/// Opens the key ring; refuses when there is no key.
pub fn open_ring(conn: &mut DbConn, settings: &Settings) -> Result<KeyRing, KeyError> {
    let master = master_key(settings)?;
    let stored = keys::list(conn)?;
    if stored.is_empty() {
        return Err(KeyError::NoDataKey);
    }
    Ok(KeyRing::open(&master, &stored)?)
}

/// `herald keys init`: creates the key file (unless HERALD_MASTER_KEY is set
/// or the file exists) and the first data key. Idempotent.
pub fn init(conn: &mut DbConn, settings: &Settings, clock: &dyn Clock) -> Result<String, KeyError> {
    let mut said = Vec::new();
    let master = match master_key(settings) {
        Ok(k) => k,
        Err(CryptoError::NoKey(path)) => {
            let k = MasterKey::generate()?;
            k.write_new_file(&settings.key_file())?;
            said.push(format!("created master key file {path} (mode 0600; back it up: without it the data cannot be read)"));
            k
        }
        Err(e) => return Err(e.into()),
    };
    db::write_tx(conn, |c| {
        if keys::list(c)?.is_empty() {
            keys::insert(c, &new_data_key(&master, 1)?, clock.now())?;
            said.push("created data key 1".into());
        } else {
            said.push("data keys already present".into());
        }
        Ok::<_, KeyError>(())
    })?;
    // Prove the ring opens with this master key.
    open_ring(conn, settings)?;
    Ok(said.join("; "))
}

/// `herald keys rotate`: adds a data key; new writes use it at once.
pub fn rotate(conn: &mut DbConn, settings: &Settings, clock: &dyn Clock) -> Result<u32, KeyError> {
    let master = master_key(settings)?;
    open_ring(conn, settings)?;
    db::write_tx(conn, |c| {
        let id = keys::next_id(c)?;
        keys::insert(c, &new_data_key(&master, id)?, clock.now())?;
        Ok(id)
    })
}

/// Re-encrypts one batch per table under the active key; returns rows done
/// (0 when nothing is left).
pub fn reencrypt_batch(
    conn: &mut DbConn,
    ring: &KeyRing,
    clock: &dyn Clock,
    batch: i64,
) -> Result<usize, KeyError> {
    let now = clock.now();
    Ok(db::write_tx(conn, |c| {
        let n = patients::rekey_batch(c, ring, batch, now)?
            + resources::rekey_batch(c, ring, batch)?
            + consents::rekey_batch(c, ring, batch)?
            + outbox::rekey_batch(c, ring, batch)?
            + crate::db::inbound::rekey_batch(c, ring, batch)?
            + crate::db::ehr::rekey_batch(c, ring, batch)?
            + crate::db::smart::rekey_batch(c, ring, batch)?
            + crate::db::staff::rekey_batch(c, ring, batch)?;
        Ok::<_, DbError>(n)
    })?)
}
