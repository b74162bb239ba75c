//! One-time secrets behind email links.

use chrono::{DateTime, Duration, Utc};
use sqlx::PgConnection;

use crate::secrets::{self, Keyring};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    EmailValidation,
    Activation,
    PasswordReset,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::EmailValidation => "EMAIL_VALIDATION",
            Purpose::Activation => "ACTIVATION",
            Purpose::PasswordReset => "PASSWORD_RESET",
        }
    }
}

pub struct IssuedToken {
    pub id: i64,
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

/// A token to issue.
pub struct TokenRequest<'a> {
    pub tenant_id: i64,
    pub user_id: i64,
    pub purpose: Purpose,
    pub ttl: Duration,
    /// How an activation link is handed out.
    pub method: Option<&'a str>,
    /// The address a validation link proves, for an email change.
    pub email: Option<&'a str>,
}

/// Issues a token, revoking the user's earlier ones of the same purpose:
/// only the newest link works. The link's token is derived from the row id
/// under the current server secret, whose id the row records; only the
/// token's hash is stored.
pub async fn issue(
    conn: &mut PgConnection,
    keyring: &Keyring,
    request: TokenRequest<'_>,
) -> sqlx::Result<IssuedToken> {
    revoke_pending(conn, request.tenant_id, request.user_id, request.purpose).await?;
    let id: i64 = sqlx::query_scalar("SELECT nextval(pg_get_serial_sequence('user_tokens', 'id'))")
        .fetch_one(&mut *conn)
        .await?;
    let (token, secret_id) = keyring.issue(request.tenant_id, id, request.purpose.as_str());
    let expires_at = Utc::now() + request.ttl;
    sqlx::query(
        "INSERT INTO user_tokens
             (tenant_id, id, user_id, purpose, token_hash, expires_at, method, email, secret_id)
         OVERRIDING SYSTEM VALUE VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(request.tenant_id)
    .bind(id)
    .bind(request.user_id)
    .bind(request.purpose.as_str())
    .bind(secrets::sha256(token.as_bytes()))
    .bind(expires_at)
    .bind(request.method)
    .bind(request.email)
    .bind(secret_id)
    .execute(conn)
    .await?;
    Ok(IssuedToken {
        id,
        token,
        expires_at,
    })
}

/// Makes the user's unused links of `purpose` stop working; true if any did.
pub async fn revoke_pending(
    conn: &mut PgConnection,
    tenant_id: i64,
    user_id: i64,
    purpose: Purpose,
) -> sqlx::Result<bool> {
    let result = sqlx::query(
        "UPDATE user_tokens SET revoked_at = now()
         WHERE tenant_id = $1 AND user_id = $2 AND purpose = $3
           AND consumed_at IS NULL AND revoked_at IS NULL AND expires_at > now()",
    )
    .bind(tenant_id)
    .bind(user_id)
    .bind(purpose.as_str())
    .execute(conn)
    .await?;
    Ok(result.rows_affected() > 0)
}

/// The latest activation link of each user, for User.invitation.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct InvitationRow {
    pub user_id: i64,
    pub method: Option<String>,
    pub expires_at: DateTime<Utc>,
    pub consumed_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

pub async fn latest_invitations(
    pool: &sqlx::PgPool,
    tenant_id: i64,
    user_ids: &[i64],
) -> sqlx::Result<std::collections::HashMap<i64, InvitationRow>> {
    let rows: Vec<InvitationRow> = sqlx::query_as(
        "SELECT DISTINCT ON (user_id) user_id, method, expires_at, consumed_at, revoked_at, created_at
         FROM user_tokens
         WHERE tenant_id = $1 AND user_id = ANY($2) AND purpose = 'ACTIVATION'
         ORDER BY user_id, id DESC",
    )
    .bind(tenant_id)
    .bind(user_ids)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|row| (row.user_id, row)).collect())
}

#[derive(Debug, sqlx::FromRow)]
pub struct TokenRow {
    pub tenant_id: i64,
    pub id: i64,
    pub user_id: i64,
    pub purpose: String,
    pub email: Option<String>,
    pub expires_at: DateTime<Utc>,
    pub consumed_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Finds a token by its hash and locks it, so it can be used only once.
pub async fn lock_by_hash(
    conn: &mut PgConnection,
    tenant_id: i64,
    token_hash: &[u8],
) -> sqlx::Result<Option<TokenRow>> {
    sqlx::query_as(
        "SELECT tenant_id, id, user_id, purpose, email, expires_at, consumed_at, revoked_at
         FROM user_tokens WHERE tenant_id = $1 AND token_hash = $2 FOR UPDATE",
    )
    .bind(tenant_id)
    .bind(token_hash)
    .fetch_optional(conn)
    .await
}

pub async fn consume(conn: &mut PgConnection, tenant_id: i64, id: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE user_tokens SET consumed_at = now() WHERE tenant_id = $1 AND id = $2")
        .bind(tenant_id)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}
