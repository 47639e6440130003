//! Board accounts and their browsers' sessions.

use super::{Backend, Result, Store};
use crate::domain::Timestamp;

/// An account as stored: its role and password hash.
#[derive(Clone, Debug)]
pub struct StoredAccount {
    pub name: String,
    pub role: String,
    /// An Argon2id PHC string.
    pub password: String,
}

/// A live session: whose, and the token its forms carry.
#[derive(Clone, Debug)]
pub struct StoredSession {
    pub account: String,
    pub role: String,
    pub csrf: String,
}

impl Store {
    /// Creates the account, or sets its role and password.
    pub async fn put_account(&self, account: &StoredAccount, now: Timestamp) -> Result<()> {
        on!(&*self.writer, c => sqlx::query("INSERT INTO accounts (name, role, password, created_at) VALUES ($1, $2, $3, $4) \
            ON CONFLICT (name) DO UPDATE SET role = excluded.role, password = excluded.password")
            .bind(&account.name).bind(&account.role).bind(&account.password).bind(now.0).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Whether any account exists.
    pub async fn has_accounts(&self) -> Result<bool> {
        let n: i64 = on!(&*self.db, c => sqlx::query_scalar("SELECT COUNT(*) FROM accounts").fetch_one(c).await)?;
        Ok(n > 0)
    }

    pub async fn account(&self, name: &str) -> Result<Option<StoredAccount>> {
        let row: Option<(String, String, String)> = on!(&*self.db, c => sqlx::query_as("SELECT name, role, password FROM accounts WHERE name = $1")
            .bind(name).fetch_optional(c).await)?;
        Ok(row.map(|(name, role, password)| StoredAccount { name, role, password }))
    }

    /// Removes the account and ends its sessions; false when there was none.
    pub async fn remove_account(&self, name: &str) -> Result<bool> {
        on!(&*self.writer, c => sqlx::query("DELETE FROM sessions WHERE account = $1").bind(name).execute(c).await.map(|r| r.rows_affected()))?;
        let n = on!(&*self.writer, c => sqlx::query("DELETE FROM accounts WHERE name = $1").bind(name).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Starts a session, stored by the hash of its cookie.
    pub async fn add_session(
        &self,
        id_hash: &str,
        account: &str,
        csrf: &str,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<()> {
        on!(&*self.writer, c => sqlx::query("INSERT INTO sessions (id, account, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(id_hash).bind(account).bind(csrf).bind(now.0).bind(expires_at.0).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// The live session with this cookie hash, with its account's current
    /// role: none when it expired, was ended, or its account is gone.
    pub async fn session(&self, id_hash: &str, now: Timestamp) -> Result<Option<StoredSession>> {
        let row: Option<(String, String, String)> = on!(&*self.db, c => sqlx::query_as("SELECT s.account, a.role, s.csrf FROM sessions s \
            JOIN accounts a ON a.name = s.account WHERE s.id = $1 AND s.expires_at > $2")
            .bind(id_hash).bind(now.0).fetch_optional(c).await)?;
        Ok(row.map(|(account, role, csrf)| StoredSession { account, role, csrf }))
    }

    /// Ends a session, and forgets every expired one.
    pub async fn end_session(&self, id_hash: &str, now: Timestamp) -> Result<()> {
        on!(&*self.writer, c => sqlx::query("DELETE FROM sessions WHERE id = $1 OR expires_at <= $2")
            .bind(id_hash).bind(now.0).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Ends every session of an account (a changed password, a revocation).
    pub async fn end_sessions_of(&self, account: &str) -> Result<u64> {
        Ok(
            on!(&*self.writer, c => sqlx::query("DELETE FROM sessions WHERE account = $1").bind(account).execute(c).await.map(|r| r.rows_affected()))?,
        )
    }
}
