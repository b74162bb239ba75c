//! Users: their rows, addresses and the claims that reserve them, the
//! customers they administer, credentials, and the status the lifecycle
//! allows (`set_status` takes only a `lifecycle::Transition`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor, PgPool, Postgres, QueryBuilder};

use super::{Grouped, Page, Search, by_group};
use crate::authz::{CustomerReach, Role, UserFacts};
use crate::id::{CustomerId, TenantId, UserId};
use crate::lifecycle::{Transition, UserStatus};
use crate::path::Path;
use crate::store::customers::CustomerRow;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct UserRow {
    pub tenant_id: TenantId,
    pub id: UserId,
    pub customer_id: Option<CustomerId>,
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    pub role: Role,
    pub status: UserStatus,
    pub last_login_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The address as compared and ordered: lower-cased by Postgres.
    pub email_key: String,
    /// The tree path of the user's customer, for deciding who may see it.
    pub customer_path: Option<Path>,
    /// The partner's own id, unique in the tenant.
    pub external_id: Option<String>,
}

impl UserRow {
    /// What the authorization rules need of the user, with the paths of
    /// the customers it administers (empty when they do not matter).
    pub fn facts(&self, administered: Vec<Path>) -> UserFacts {
        UserFacts {
            id: self.id,
            role: self.role,
            customer: self.customer_id.zip(self.customer_path.clone()),
            administered,
        }
    }
}

pub const COLUMNS: &str = "u.tenant_id, u.id, u.customer_id, u.email, u.first_name, u.last_name, \
     u.phone, u.role, u.status, u.last_login_at, u.created_at, u.updated_at, \
     lower(u.email) AS email_key, \
     (SELECT c.path::text FROM customers c WHERE c.tenant_id = u.tenant_id AND c.id = u.customer_id) \
     AS customer_path, u.external_id";

/// Which users a list shows.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub customer_id: Option<CustomerId>,
    pub status: Option<UserStatus>,
    /// Matches email, first or last name.
    pub search: Option<Search>,
    /// A customer user's reach; `None` is the whole tenant.
    pub reach: Option<CustomerReach>,
}

pub async fn by_ids(
    pool: &PgPool,
    tenant_id: TenantId,
    ids: &[UserId],
) -> sqlx::Result<Vec<UserRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM users u WHERE u.tenant_id = $1 AND u.id = ANY($2)"
    ))
    .bind(tenant_id)
    .bind(ids)
    .fetch_all(pool)
    .await
}

/// Finds a user by address, compared case-insensitively.
pub async fn by_email(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    email: &str,
) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM users u WHERE u.tenant_id = $1 AND lower(u.email) = lower($2)"
    ))
    .bind(tenant_id)
    .bind(email)
    .fetch_optional(conn)
    .await
}

fn push_filter(query: &mut QueryBuilder<'_, Postgres>, filter: &Filter) {
    if let Some(customer_id) = filter.customer_id {
        query.push(" AND u.customer_id = ").push_bind(customer_id);
    }
    if let Some(status) = filter.status {
        query.push(" AND u.status = ").push_bind(status);
    }
    if let Some(search) = &filter.search {
        let pattern = search.pattern();
        query
            .push(" AND (u.email ILIKE ")
            .push_bind(pattern.clone())
            .push(" OR u.first_name ILIKE ")
            .push_bind(pattern.clone())
            .push(" OR u.last_name ILIKE ")
            .push_bind(pattern)
            .push(")");
    }
    if let Some(reach) = &filter.reach {
        query
            .push(" AND (u.id = ")
            .push_bind(reach.user_id)
            .push(
                " OR EXISTS (SELECT 1 FROM customers rc WHERE rc.tenant_id = u.tenant_id \
                 AND rc.id = u.customer_id AND rc.path <@ ANY(",
            )
            .push_bind(reach.administered.clone())
            .push("::ltree[])))");
    }
}

/// A page of users ordered by address; the cursor is the lower-cased address.
pub async fn list(
    pool: &PgPool,
    tenant_id: TenantId,
    filter: &Filter,
    page: &Page,
) -> sqlx::Result<Vec<UserRow>> {
    let mut query = QueryBuilder::new(format!(
        "SELECT {COLUMNS} FROM users u WHERE u.tenant_id = "
    ));
    query.push_bind(tenant_id);
    push_filter(&mut query, filter);
    if let Some(after) = &page.after {
        query
            .push(" AND lower(u.email) > ")
            .push_bind(after.clone());
    }
    query
        .push(" ORDER BY lower(u.email) LIMIT ")
        .push_bind(page.limit());
    query.build_query_as().fetch_all(pool).await
}

pub async fn count(pool: &PgPool, tenant_id: TenantId, filter: &Filter) -> sqlx::Result<i64> {
    let mut query = QueryBuilder::new("SELECT count(*) FROM users u WHERE u.tenant_id = ");
    query.push_bind(tenant_id);
    push_filter(&mut query, filter);
    query.build_query_scalar().fetch_one(pool).await
}

/// The administrators of each customer, by address.
pub async fn administrators(
    pool: &PgPool,
    tenant_id: TenantId,
    customer_ids: &[CustomerId],
) -> sqlx::Result<HashMap<CustomerId, Vec<UserRow>>> {
    let rows: Vec<Grouped<CustomerId, UserRow>> = sqlx::query_as(&format!(
        "SELECT a.customer_id AS group_id, {COLUMNS}
         FROM customer_administrators a
         JOIN users u ON u.tenant_id = a.tenant_id AND u.id = a.user_id
         WHERE a.tenant_id = $1 AND a.customer_id = ANY($2)
         ORDER BY lower(u.email)"
    ))
    .bind(tenant_id)
    .bind(customer_ids)
    .fetch_all(pool)
    .await?;
    Ok(by_group(rows))
}

/// The customers each user administers, as ids.
pub async fn administered_customer_ids(
    pool: &PgPool,
    tenant_id: TenantId,
    user_ids: &[UserId],
) -> sqlx::Result<HashMap<UserId, Vec<CustomerId>>> {
    let rows: Vec<(UserId, CustomerId)> = sqlx::query_as(
        "SELECT a.user_id, a.customer_id FROM customer_administrators a
         JOIN customers c ON c.tenant_id = a.tenant_id AND c.id = a.customer_id
         WHERE a.tenant_id = $1 AND a.user_id = ANY($2) ORDER BY c.sort_key",
    )
    .bind(tenant_id)
    .bind(user_ids)
    .fetch_all(pool)
    .await?;
    let mut map: HashMap<UserId, Vec<CustomerId>> = HashMap::new();
    for (user_id, customer_id) in rows {
        map.entry(user_id).or_default().push(customer_id);
    }
    Ok(map)
}

/// The users who administer customer `$2` of tenant `$1` or a customer
/// above it, as a subquery of user ids: the one reading of "the
/// administrators of a customer or its ancestors". The customer's path
/// lists those customers' ids, so only their assignments are read.
const ADMINISTRATORS_ABOVE: &str = "SELECT a.user_id FROM customers target
     JOIN customer_administrators a ON a.tenant_id = target.tenant_id
      AND a.customer_id = ANY (string_to_array(ltree2text(target.path), '.')::bigint[])
     WHERE target.tenant_id = $1 AND target.id = $2";

/// Someone an email goes to, as the worker needs it.
#[derive(Debug, sqlx::FromRow)]
pub struct Recipient {
    pub id: UserId,
    pub email: String,
    pub first_name: Option<String>,
    pub status: UserStatus,
    /// An address the user asked to change to, not yet proven.
    pub pending_email: Option<String>,
}

impl Recipient {
    pub fn greeting_name(&self) -> String {
        self.first_name
            .clone()
            .unwrap_or_else(|| self.email.clone())
    }
}

pub async fn recipient(
    pool: &PgPool,
    tenant_id: TenantId,
    id: UserId,
) -> sqlx::Result<Option<Recipient>> {
    sqlx::query_as(
        "SELECT id, email, first_name, status, pending_email FROM users
         WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// The active administrators of `customer_id` or of a customer above it;
/// when there are none and `fall_back` holds, the active tenant
/// administrators.
pub async fn administrators_to_tell(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    customer_id: Option<CustomerId>,
    fall_back: bool,
) -> sqlx::Result<Vec<Recipient>> {
    sqlx::query_as(&format!(
        "WITH administrators AS (
             SELECT u.id, u.email, u.first_name, u.status, u.pending_email FROM users u
             WHERE u.tenant_id = $1 AND u.status = 'ACTIVE' AND u.id IN ({ADMINISTRATORS_ABOVE})
         )
         SELECT * FROM administrators
         UNION ALL
         SELECT u.id, u.email, u.first_name, u.status, u.pending_email FROM users u
         WHERE $3 AND u.tenant_id = $1 AND u.role = 'TENANT_ADMIN' AND u.status = 'ACTIVE'
           AND NOT EXISTS (SELECT 1 FROM administrators)"
    ))
    .bind(tenant_id)
    .bind(customer_id)
    .bind(fall_back)
    .fetch_all(conn)
    .await
}

/// Whether `user_id` may still act at `customer_id`: a tenant
/// administrator, or an administrator of it or of a customer above it.
pub async fn still_administers(
    pool: &PgPool,
    tenant_id: TenantId,
    user_id: UserId,
    customer_id: CustomerId,
) -> sqlx::Result<bool> {
    sqlx::query_scalar(&format!(
        "SELECT EXISTS (
             SELECT 1 FROM users u WHERE u.tenant_id = $1 AND u.id = $3 AND u.role = 'TENANT_ADMIN')
         OR $3 IN ({ADMINISTRATORS_ABOVE})"
    ))
    .bind(tenant_id)
    .bind(customer_id)
    .bind(user_id)
    .fetch_one(pool)
    .await
}

/// Makes `user_id` an administrator of `customer_id`; true when it was not one.
pub async fn add_administrator(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    customer_id: CustomerId,
    user_id: UserId,
) -> sqlx::Result<bool> {
    let result = sqlx::query(
        "INSERT INTO customer_administrators (tenant_id, customer_id, user_id)
         VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(tenant_id)
    .bind(customer_id)
    .bind(user_id)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// True when the user was an administrator of the customer.
pub async fn remove_administrator(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    customer_id: CustomerId,
    user_id: UserId,
) -> sqlx::Result<bool> {
    let result = sqlx::query(
        "DELETE FROM customer_administrators
         WHERE tenant_id = $1 AND customer_id = $2 AND user_id = $3",
    )
    .bind(tenant_id)
    .bind(customer_id)
    .bind(user_id)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// A new user, already validated.
pub struct NewUser<'a> {
    pub customer_id: Option<CustomerId>,
    pub email: &'a str,
    pub first_name: Option<&'a str>,
    pub last_name: Option<&'a str>,
    pub phone: Option<&'a str>,
    pub role: Role,
    pub status: UserStatus,
    pub external_id: Option<&'a str>,
}

/// Inserts a user and claims its address; an address already held or
/// reserved (case-insensitively) fails on `email_claims_pkey`.
pub async fn insert(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    user: &NewUser<'_>,
) -> sqlx::Result<UserRow> {
    // The address is claimed in the same statement (one round trip).
    sqlx::query_as(&format!(
        "WITH u AS (
             INSERT INTO users (tenant_id, customer_id, email, first_name, last_name, phone, role,
                                status, external_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *),
         claimed AS (
             INSERT INTO email_claims (tenant_id, address, user_id)
             SELECT tenant_id, lower(email), id FROM u)
         SELECT {COLUMNS} FROM u"
    ))
    .bind(tenant_id)
    .bind(user.customer_id)
    .bind(user.email)
    .bind(user.first_name)
    .bind(user.last_name)
    .bind(user.phone)
    .bind(user.role)
    .bind(user.status)
    .bind(user.external_id)
    .fetch_one(conn)
    .await
}

/// Inserts many users and claims their addresses in one statement (a
/// batch); the addresses must be distinct, and any held or reserved
/// address fails it all on `email_claims_pkey`, as an external id taken
/// on `users_external_id_key`: check first with `taken`. Answers the rows
/// in the order given.
pub async fn insert_many(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    new: &[NewUser<'_>],
) -> sqlx::Result<Vec<UserRow>> {
    if new.is_empty() {
        return Ok(Vec::new());
    }
    let customers: Vec<Option<CustomerId>> = new.iter().map(|u| u.customer_id).collect();
    let emails: Vec<&str> = new.iter().map(|u| u.email).collect();
    let first: Vec<Option<&str>> = new.iter().map(|u| u.first_name).collect();
    let last: Vec<Option<&str>> = new.iter().map(|u| u.last_name).collect();
    let phones: Vec<Option<&str>> = new.iter().map(|u| u.phone).collect();
    let roles: Vec<Role> = new.iter().map(|u| u.role).collect();
    let statuses: Vec<UserStatus> = new.iter().map(|u| u.status).collect();
    let external: Vec<Option<&str>> = new.iter().map(|u| u.external_id).collect();
    let rows: Vec<UserRow> = sqlx::query_as(&format!(
        "WITH u AS (
             INSERT INTO users (tenant_id, customer_id, email, first_name, last_name, phone, role,
                                status, external_id)
             SELECT $1, c, e, f, l, p, r, s, x
             FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[],
                         $7::text[], $8::text[], $9::text[]) WITH ORDINALITY AS i(c, e, f, l, p, r, s, x, n)
             ORDER BY n
             RETURNING *),
         claimed AS (
             INSERT INTO email_claims (tenant_id, address, user_id)
             SELECT tenant_id, lower(email), id FROM u)
         SELECT {COLUMNS} FROM u"
    ))
    .bind(tenant_id)
    .bind(customers)
    .bind(emails)
    .bind(first)
    .bind(last)
    .bind(phones)
    .bind(roles)
    .bind(statuses)
    .bind(external)
    .fetch_all(conn)
    .await?;
    // RETURNING keeps no order, but the ids were drawn in the order given
    // (the insert reads its rows in that order): put them back by id.
    let mut rows = rows;
    rows.sort_by_key(|row| row.id);
    Ok(rows)
}

/// Which of `addresses` (as given: Postgres lower-cases them as the
/// claims do) are held or reserved in the tenant, and which of
/// `external_ids` its users have: one statement.
pub async fn taken(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    addresses: &[String],
    external_ids: &[String],
) -> sqlx::Result<(Vec<String>, Vec<String>)> {
    let found: Vec<(String, bool)> = sqlx::query_as(
        "SELECT a, true FROM unnest($2::text[]) AS a
         WHERE EXISTS (SELECT 1 FROM email_claims c WHERE c.tenant_id = $1 AND c.address = lower(a))
         UNION ALL
         SELECT external_id, false FROM users WHERE tenant_id = $1 AND external_id = ANY($3)",
    )
    .bind(tenant_id)
    .bind(addresses)
    .bind(external_ids)
    .fetch_all(conn)
    .await?;
    let (addresses, external): (Vec<_>, Vec<_>) = found.into_iter().partition(|(_, a)| *a);
    Ok((
        addresses.into_iter().map(|(a, _)| a).collect(),
        external.into_iter().map(|(x, _)| x).collect(),
    ))
}

/// The active administrators of each of `customer_ids` or of a customer
/// above it, by customer: one statement for a batch's notices.
pub async fn administrators_of_each(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    customer_ids: &[CustomerId],
) -> sqlx::Result<HashMap<CustomerId, Vec<Recipient>>> {
    let rows: Vec<Grouped<CustomerId, Recipient>> = sqlx::query_as(
        "SELECT DISTINCT ON (target.id, u.id)
                target.id AS group_id, u.id, u.email, u.first_name, u.status, u.pending_email
         FROM customers target
         JOIN customer_administrators a ON a.tenant_id = target.tenant_id
          AND a.customer_id = ANY (string_to_array(ltree2text(target.path), '.')::bigint[])
         JOIN users u ON u.tenant_id = a.tenant_id AND u.id = a.user_id AND u.status = 'ACTIVE'
         WHERE target.tenant_id = $1 AND target.id = ANY($2)
         ORDER BY target.id, u.id",
    )
    .bind(tenant_id)
    .bind(customer_ids)
    .fetch_all(conn)
    .await?;
    Ok(by_group(rows))
}

/// The active tenant administrators.
pub async fn tenant_administrators(
    conn: &mut PgConnection,
    tenant_id: TenantId,
) -> sqlx::Result<Vec<Recipient>> {
    sqlx::query_as(
        "SELECT u.id, u.email, u.first_name, u.status, u.pending_email FROM users u
         WHERE u.tenant_id = $1 AND u.role = 'TENANT_ADMIN' AND u.status = 'ACTIVE'",
    )
    .bind(tenant_id)
    .fetch_all(conn)
    .await
}

/// The user a partner knows by `external_id`.
pub async fn by_external_id(
    pool: &PgPool,
    tenant_id: TenantId,
    external_id: &str,
) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM users u WHERE u.tenant_id = $1 AND u.external_id = $2"
    ))
    .bind(tenant_id)
    .bind(external_id)
    .fetch_optional(pool)
    .await
}

/// Marks a user and its customer as made by a self sign-up: only such
/// are purged when the sign-up is never validated.
pub async fn mark_signed_up(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    user_id: UserId,
    customer_id: CustomerId,
) -> sqlx::Result<()> {
    sqlx::query(
        "WITH marked AS (UPDATE users SET signed_up = true WHERE tenant_id = $1 AND id = $2)
         UPDATE customers SET signed_up = true WHERE tenant_id = $1 AND id = $3",
    )
    .bind(tenant_id)
    .bind(user_id)
    .bind(customer_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Withdraws the user's pending address change: the address is free again.
pub async fn withdraw_pending_email(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    id: UserId,
) -> sqlx::Result<()> {
    sqlx::query(
        "DELETE FROM email_claims c USING users u
         WHERE c.tenant_id = $1 AND c.user_id = $2 AND u.tenant_id = c.tenant_id
           AND u.id = c.user_id AND c.address = lower(u.pending_email)",
    )
    .bind(tenant_id)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE users SET pending_email = NULL WHERE tenant_id = $1 AND id = $2")
        .bind(tenant_id)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The user a sign-up for a taken address would have been, had the address
/// been free: the id the refused insert drew (`currval` is this session's
/// own), the fields given, and the customer's timestamps. Nothing is stored.
pub async fn phantom(
    conn: &mut PgConnection,
    customer: &CustomerRow,
    user: &NewUser<'_>,
) -> sqlx::Result<UserRow> {
    let id: UserId = sqlx::query_scalar("SELECT currval(pg_get_serial_sequence('users', 'id'))")
        .fetch_one(conn)
        .await?;
    Ok(UserRow {
        tenant_id: customer.tenant_id,
        id,
        customer_id: user.customer_id,
        email: user.email.to_owned(),
        first_name: user.first_name.map(str::to_owned),
        last_name: user.last_name.map(str::to_owned),
        phone: user.phone.map(str::to_owned),
        role: user.role,
        status: user.status,
        last_login_at: None,
        created_at: customer.created_at,
        updated_at: customer.updated_at,
        email_key: user.email.to_lowercase(),
        customer_path: Some(customer.path.clone()),
        external_id: None,
    })
}

/// Who holds or reserves `address`, and the address as that user has it.
pub async fn address_owner<'e>(
    executor: impl PgExecutor<'e>,
    tenant_id: TenantId,
    address: &str,
) -> sqlx::Result<Option<(UserId, String)>> {
    sqlx::query_as(
        "SELECT u.id, CASE WHEN lower(u.email) = c.address THEN u.email
                           ELSE coalesce(u.pending_email, c.address) END
         FROM email_claims c JOIN users u ON u.tenant_id = c.tenant_id AND u.id = c.user_id
         WHERE c.tenant_id = $1 AND c.address = lower($2)",
    )
    .bind(tenant_id)
    .bind(address)
    .fetch_optional(executor)
    .await
}

/// A user found by address for signing in, with its password hash.
#[derive(Debug, sqlx::FromRow)]
pub struct Credentials {
    #[sqlx(flatten)]
    pub user: UserRow,
    pub password_hash: Option<String>,
}

pub async fn credentials(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    email: &str,
) -> sqlx::Result<Option<Credentials>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS}, u.password_hash FROM users u
         WHERE u.tenant_id = $1 AND lower(u.email) = lower($2)"
    ))
    .bind(tenant_id)
    .bind(email)
    .fetch_optional(conn)
    .await
}

/// Loads and locks a user until the transaction ends.
pub async fn lock(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    id: UserId,
) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM users u WHERE u.tenant_id = $1 AND u.id = $2 FOR UPDATE"
    ))
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Makes the move the lifecycle allowed and, when given, sets the password.
pub async fn set_status(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    id: UserId,
    transition: Transition,
    password_hash: Option<&str>,
) -> sqlx::Result<UserRow> {
    sqlx::query_as(&format!(
        "UPDATE users u SET status = $3, password_hash = coalesce($4, u.password_hash),
             updated_at = now()
         WHERE u.tenant_id = $1 AND u.id = $2 RETURNING {COLUMNS}"
    ))
    .bind(tenant_id)
    .bind(id)
    .bind(transition.to())
    .bind(password_hash)
    .fetch_one(conn)
    .await
}

pub async fn record_login(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    id: UserId,
) -> sqlx::Result<UserRow> {
    sqlx::query_as(&format!(
        "UPDATE users u SET last_login_at = now() WHERE u.tenant_id = $1 AND u.id = $2
         RETURNING {COLUMNS}"
    ))
    .bind(tenant_id)
    .bind(id)
    .fetch_one(conn)
    .await
}

/// Claims an address for a user; a taken one fails on `email_claims_pkey`.
pub async fn claim_email(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    user_id: UserId,
    email: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO email_claims (tenant_id, address, user_id) VALUES ($1, lower($2), $3)",
    )
    .bind(tenant_id)
    .bind(email)
    .bind(user_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Writes the fields a user may edit (validated by the caller).
/// What a user's profile holds, as `update_profile` writes it.
pub struct Profile<'a> {
    pub first_name: Option<&'a str>,
    pub last_name: Option<&'a str>,
    pub phone: Option<&'a str>,
    /// The address waiting for its validation link.
    pub pending_email: Option<&'a str>,
    pub external_id: Option<&'a str>,
}

pub async fn update_profile(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    id: UserId,
    profile: &Profile<'_>,
) -> sqlx::Result<UserRow> {
    sqlx::query_as(&format!(
        "UPDATE users u SET first_name = $3, last_name = $4, phone = $5, pending_email = $6,
             external_id = $7, updated_at = now()
         WHERE u.tenant_id = $1 AND u.id = $2 RETURNING {COLUMNS}"
    ))
    .bind(tenant_id)
    .bind(id)
    .bind(profile.first_name)
    .bind(profile.last_name)
    .bind(profile.phone)
    .bind(profile.pending_email)
    .bind(profile.external_id)
    .fetch_one(conn)
    .await
}

/// Makes a validated new address the user's own, releasing the old one.
pub async fn confirm_email(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    id: UserId,
    email: &str,
) -> sqlx::Result<UserRow> {
    sqlx::query(
        "DELETE FROM email_claims c USING users u
         WHERE c.tenant_id = $1 AND c.user_id = $2 AND u.tenant_id = $1 AND u.id = $2
           AND c.address = lower(u.email) AND c.address <> lower($3)",
    )
    .bind(tenant_id)
    .bind(id)
    .bind(email)
    .execute(&mut *conn)
    .await?;
    sqlx::query_as(&format!(
        "UPDATE users u SET email = $3, pending_email = NULL, updated_at = now()
         WHERE u.tenant_id = $1 AND u.id = $2 RETURNING {COLUMNS}"
    ))
    .bind(tenant_id)
    .bind(id)
    .bind(email)
    .fetch_one(conn)
    .await
}

/// Releases a reserved address that will not be used after all.
pub async fn release_claim(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    user_id: UserId,
    email: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "DELETE FROM email_claims WHERE tenant_id = $1 AND user_id = $2 AND address = lower($3)",
    )
    .bind(tenant_id)
    .bind(user_id)
    .bind(email)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn pending_email(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    id: UserId,
) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("SELECT pending_email FROM users WHERE tenant_id = $1 AND id = $2")
        .bind(tenant_id)
        .bind(id)
        .fetch_one(conn)
        .await
}

pub async fn delete(conn: &mut PgConnection, tenant_id: TenantId, id: UserId) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM users WHERE tenant_id = $1 AND id = $2")
        .bind(tenant_id)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn set_password(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    id: UserId,
    password_hash: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE users SET password_hash = $3, updated_at = now() WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant_id)
    .bind(id)
    .bind(password_hash)
    .execute(conn)
    .await?;
    Ok(())
}

/// Users waiting for approval (within `reach`), oldest first; the cursor
/// is the id.
pub async fn approval_requests(
    pool: &PgPool,
    tenant_id: TenantId,
    reach: Option<&CustomerReach>,
    page: &Page,
) -> sqlx::Result<Vec<UserRow>> {
    let after: i64 = page
        .after
        .as_deref()
        .and_then(|a| a.parse().ok())
        .unwrap_or(0);
    let filter = approval_filter(reach);
    let mut query = QueryBuilder::new(format!(
        "SELECT {COLUMNS} FROM users u WHERE u.tenant_id = "
    ));
    query.push_bind(tenant_id);
    push_filter(&mut query, &filter);
    query
        .push(" AND u.id > ")
        .push_bind(after)
        .push(" ORDER BY u.id LIMIT ")
        .push_bind(page.limit());
    query.build_query_as().fetch_all(pool).await
}

/// The approval queue as a list filter (for counting).
pub fn approval_filter(reach: Option<&CustomerReach>) -> Filter {
    Filter {
        status: Some(UserStatus::PendingApproval),
        reach: reach.cloned(),
        ..Filter::default()
    }
}

/// The tree paths of the customers a user administers.
pub async fn administered_paths<'e>(
    executor: impl PgExecutor<'e>,
    tenant_id: TenantId,
    user_id: UserId,
) -> sqlx::Result<Vec<Path>> {
    sqlx::query_scalar(
        "SELECT c.path::text FROM customer_administrators a
         JOIN customers c ON c.tenant_id = a.tenant_id AND c.id = a.customer_id
         WHERE a.tenant_id = $1 AND a.user_id = $2",
    )
    .bind(tenant_id)
    .bind(user_id)
    .fetch_all(executor)
    .await
}

/// A user with the paths of the customers it administers.
#[derive(sqlx::FromRow)]
struct WithAdministered {
    #[sqlx(flatten)]
    user: UserRow,
    administered: Vec<Path>,
}

/// The users of every customer in the subtree at `root_path`, each with
/// the paths of the customers it administers (anywhere in the tenant).
pub async fn in_subtree(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    root_path: &Path,
) -> sqlx::Result<Vec<(UserRow, Vec<Path>)>> {
    let rows: Vec<WithAdministered> = sqlx::query_as(&format!(
        "SELECT {COLUMNS},
                ARRAY(SELECT ac.path::text FROM customer_administrators a
                      JOIN customers ac ON ac.tenant_id = a.tenant_id AND ac.id = a.customer_id
                      WHERE a.tenant_id = u.tenant_id AND a.user_id = u.id) AS administered
         FROM customers c
         JOIN users u ON u.tenant_id = c.tenant_id AND u.customer_id = c.id
         WHERE c.tenant_id = $1 AND c.path <@ $2::ltree"
    ))
    .bind(tenant_id)
    .bind(root_path)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.user, r.administered)).collect())
}

/// A user's sign-in state, locked until the transaction ends.
pub async fn lock_credentials(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    id: UserId,
) -> sqlx::Result<Option<Credentials>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS}, u.password_hash FROM users u
         WHERE u.tenant_id = $1 AND u.id = $2 FOR UPDATE"
    ))
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// A self sign-up is marked when made (`users.signed_up`); it is purged
/// while still PENDING_EMAIL_VALIDATION, never signed in, a day after its
/// last link expired. Deletes up to `limit` such users and answers how many; the customer the sign-up
/// created (`customers.signed_up`) goes in the same statement when nothing
/// else is attached to it. The outer statement still sees the deleted
/// users, so `gone` is excluded by hand.
pub async fn purge_unvalidated_sign_ups(pool: &PgPool, limit: i64) -> sqlx::Result<u64> {
    let deleted: i64 = sqlx::query_scalar(
        "WITH gone AS (
     DELETE FROM users WHERE (tenant_id, id) IN (
         SELECT u.tenant_id, u.id FROM users u
         WHERE u.signed_up AND u.status = 'PENDING_EMAIL_VALIDATION'
           AND u.last_login_at IS NULL AND u.created_at < now() - interval '1 day'
           AND NOT EXISTS (SELECT 1 FROM user_tokens t
                           WHERE t.tenant_id = u.tenant_id AND t.user_id = u.id
                             AND t.expires_at > now() - interval '1 day')
         LIMIT $1 FOR UPDATE SKIP LOCKED)
     RETURNING tenant_id, id, customer_id),
 emptied AS (
     DELETE FROM customers c USING gone g
     WHERE c.tenant_id = g.tenant_id AND c.id = g.customer_id AND c.signed_up
       AND NOT EXISTS (SELECT 1 FROM users o WHERE o.tenant_id = c.tenant_id AND o.customer_id = c.id
                         AND NOT EXISTS (SELECT 1 FROM gone x
                                         WHERE x.tenant_id = o.tenant_id AND x.id = o.id))
       AND NOT EXISTS (SELECT 1 FROM customers ch WHERE ch.tenant_id = c.tenant_id AND ch.parent_id = c.id)
       AND NOT EXISTS (SELECT 1 FROM entitlements e WHERE e.tenant_id = c.tenant_id AND e.customer_id = c.id)
       AND NOT EXISTS (SELECT 1 FROM customer_administrators a
                       WHERE a.tenant_id = c.tenant_id AND a.customer_id = c.id)
     RETURNING c.id)
 SELECT count(*) FROM gone",
    )
    .bind(limit)
    .fetch_one(pool)
    .await?;
    Ok(deleted as u64)
}
