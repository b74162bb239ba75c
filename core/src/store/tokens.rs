//! One-time secrets behind email links.

use chrono::{DateTime, Duration, Utc};
use sqlx::{PgConnection, PgPool};

use crate::id::{TenantId, UserId};
use crate::secrets::{self, Keyring};

crate::text_enum! {
    /// What a link does when it is followed.
    pub enum Purpose {
        EmailValidation = "EMAIL_VALIDATION",
        Activation = "ACTIVATION",
        PasswordReset = "PASSWORD_RESET",
    }
}

crate::text_enum! {
    /// How an activation link was handed out.
    pub enum ActivationMethod {
        /// Queued as an invitation email.
        SendActivationEmail = "SEND_ACTIVATION_EMAIL",
        /// Returned to the caller to display; nothing sent.
        DisplayActivationLink = "DISPLAY_ACTIVATION_LINK",
    }
}

pub struct IssuedToken {
    pub id: i64,
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

/// A token to issue.
pub struct TokenRequest<'a> {
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub purpose: Purpose,
    pub ttl: Duration,
    /// How an activation link is handed out.
    pub method: Option<ActivationMethod>,
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
    // The user's unused links of the purpose stop working (as
    // `revoke_pending`), and the new token's id is drawn: one round trip.
    let id: i64 = sqlx::query_scalar(&format!(
        "WITH revoked AS (UPDATE user_tokens SET revoked_at = now() WHERE {PENDING_OF_PURPOSE})
         SELECT nextval(pg_get_serial_sequence('user_tokens', 'id'))"
    ))
    .bind(request.tenant_id)
    .bind(request.user_id)
    .bind(request.purpose)
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
    .bind(request.purpose)
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

/// Issues links for users who have none yet (a batch of new users), in
/// two statements whatever their number: the ids drawn, the rows written.
/// Answers the tokens in the order asked.
pub async fn issue_for_new_users(
    conn: &mut PgConnection,
    keyring: &Keyring,
    requests: &[TokenRequest<'_>],
) -> sqlx::Result<Vec<IssuedToken>> {
    if requests.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT nextval(pg_get_serial_sequence('user_tokens', 'id')) FROM generate_series(1, $1)",
    )
    .bind(requests.len() as i64)
    .fetch_all(&mut *conn)
    .await?;
    let issued: Vec<IssuedToken> = requests
        .iter()
        .zip(&ids)
        .map(|(request, &id)| {
            let (token, _) = keyring.issue(request.tenant_id, id, request.purpose.as_str());
            IssuedToken {
                id,
                token,
                expires_at: Utc::now() + request.ttl,
            }
        })
        .collect();
    let secret_id = keyring.current_id();
    sqlx::query(
        "INSERT INTO user_tokens
             (tenant_id, id, user_id, purpose, token_hash, expires_at, method, email, secret_id)
         OVERRIDING SYSTEM VALUE
         SELECT t, i, u, p, h, x, m, e, $9
         FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[], $5::bytea[],
                     $6::timestamptz[], $7::text[], $8::text[]) AS r(t, i, u, p, h, x, m, e)",
    )
    .bind(requests.iter().map(|r| r.tenant_id).collect::<Vec<_>>())
    .bind(&ids)
    .bind(requests.iter().map(|r| r.user_id).collect::<Vec<_>>())
    .bind(requests.iter().map(|r| r.purpose).collect::<Vec<_>>())
    .bind(
        issued
            .iter()
            .map(|t| secrets::sha256(t.token.as_bytes()))
            .collect::<Vec<_>>(),
    )
    .bind(issued.iter().map(|t| t.expires_at).collect::<Vec<_>>())
    .bind(requests.iter().map(|r| r.method).collect::<Vec<_>>())
    .bind(requests.iter().map(|r| r.email).collect::<Vec<_>>())
    .bind(secret_id)
    .execute(conn)
    .await?;
    Ok(issued)
}

/// The unused, live links of user $2 of tenant $1 for purpose $3.
const PENDING_OF_PURPOSE: &str = "tenant_id = $1 AND user_id = $2 AND purpose = $3
    AND consumed_at IS NULL AND revoked_at IS NULL AND expires_at > now()";

/// Makes the user's unused links of `purpose` stop working; true if any did.
pub async fn revoke_pending(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    user_id: UserId,
    purpose: Purpose,
) -> sqlx::Result<bool> {
    let result = sqlx::query(&format!(
        "UPDATE user_tokens SET revoked_at = now() WHERE {PENDING_OF_PURPOSE}"
    ))
    .bind(tenant_id)
    .bind(user_id)
    .bind(purpose)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() > 0)
}

/// The latest activation link of each user, for User.invitation.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct InvitationRow {
    pub user_id: UserId,
    pub method: Option<ActivationMethod>,
    pub expires_at: DateTime<Utc>,
    pub consumed_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

pub async fn latest_invitations(
    pool: &PgPool,
    tenant_id: TenantId,
    user_ids: &[UserId],
) -> sqlx::Result<std::collections::HashMap<UserId, InvitationRow>> {
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
    pub tenant_id: TenantId,
    pub id: i64,
    pub user_id: UserId,
    pub purpose: Purpose,
    /// The address a validation link proves, for an address change.
    pub email: Option<String>,
    /// The id of the server secret that made the link.
    pub secret_id: Option<String>,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub consumed_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Why a link no longer works.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unusable {
    Used,
    Revoked,
    Expired,
}

impl TokenRow {
    /// Why the link no longer works, if it does not: the one reading of
    /// used, revoked and expired, for redeeming a link and for sending it.
    pub fn unusable(&self) -> Option<Unusable> {
        if self.consumed_at.is_some() {
            Some(Unusable::Used)
        } else if self.revoked_at.is_some() {
            Some(Unusable::Revoked)
        } else if self.expires_at <= Utc::now() {
            Some(Unusable::Expired)
        } else {
            None
        }
    }
}

const TOKEN_COLUMNS: &str = "tenant_id, id, user_id, purpose, email, secret_id, expires_at, \
     created_at, consumed_at, revoked_at";

/// Finds a token by its hash and locks it, so it can be used only once.
pub async fn lock_by_hash(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    token_hash: &[u8],
) -> sqlx::Result<Option<TokenRow>> {
    sqlx::query_as(&format!(
        "SELECT {TOKEN_COLUMNS} FROM user_tokens
         WHERE tenant_id = $1 AND token_hash = $2 FOR UPDATE"
    ))
    .bind(tenant_id)
    .bind(token_hash)
    .fetch_optional(conn)
    .await
}

/// Finds a token by its hash, whatever its state.
pub async fn find_by_hash(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    token_hash: &[u8],
) -> sqlx::Result<Option<TokenRow>> {
    sqlx::query_as(&format!(
        "SELECT {TOKEN_COLUMNS} FROM user_tokens WHERE tenant_id = $1 AND token_hash = $2"
    ))
    .bind(tenant_id)
    .bind(token_hash)
    .fetch_optional(conn)
    .await
}

pub async fn by_id(pool: &PgPool, tenant_id: TenantId, id: i64) -> sqlx::Result<Option<TokenRow>> {
    sqlx::query_as(&format!(
        "SELECT {TOKEN_COLUMNS} FROM user_tokens WHERE tenant_id = $1 AND id = $2"
    ))
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(pool)
    .await
}

pub async fn consume(conn: &mut PgConnection, tenant_id: TenantId, id: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE user_tokens SET consumed_at = now() WHERE tenant_id = $1 AND id = $2")
        .bind(tenant_id)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Deletes up to `limit` links a week past their expiry, keeping each
/// user's latest invitation; answers how many.
pub async fn purge_stale(pool: &PgPool, limit: i64) -> sqlx::Result<u64> {
    let deleted: i64 = sqlx::query_scalar(
        "WITH gone AS (DELETE FROM user_tokens WHERE (tenant_id, id) IN (
     SELECT t.tenant_id, t.id FROM user_tokens t
     WHERE t.expires_at < now() - interval '7 days'
       AND NOT (t.purpose = 'ACTIVATION' AND t.id = (
           SELECT max(l.id) FROM user_tokens l
           WHERE l.tenant_id = t.tenant_id AND l.user_id = t.user_id AND l.purpose = 'ACTIVATION'))
     LIMIT $1 FOR UPDATE SKIP LOCKED) RETURNING 1)
 SELECT count(*) FROM gone",
    )
    .bind(limit)
    .fetch_one(pool)
    .await?;
    Ok(deleted as u64)
}
