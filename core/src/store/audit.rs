//! The audit log: who changed what, when and from where. An entry is
//! written in the transaction of the change it records, so a change that
//! rolls back leaves none and one that commits always has its entry.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool, QueryBuilder};

use sqlx::types::Json;

use crate::authz::{Actor, AuditSight as Sight};
use crate::events::{EventType, NewEvent};
use crate::id::{TenantId, UserId};
use crate::path::Path;

use super::{Count, Page};

/// What one entry records; `operation` is a mutation's name.
#[derive(Clone, Debug)]
pub struct NewEntry<'a> {
    pub tenant_id: TenantId,
    pub operation: &'a str,
    pub actor: Actor,
    pub session_id: Option<i64>,
    pub client_addr: Option<std::net::IpAddr>,
    pub request_id: Option<&'a str>,
    /// The path of the customer concerned, if one is.
    pub customer_path: Option<&'a Path>,
    /// The objects made or changed, as `Kind:number`.
    pub objects: &'a [String],
    pub detail: Option<serde_json::Value>,
}

/// Records one entry, and the events of its change in the same statement
/// (one round trip for a mutation's bookkeeping).
pub async fn record(
    conn: &mut PgConnection,
    entry: &NewEntry<'_>,
    events: &[NewEvent],
) -> sqlx::Result<()> {
    let types: Vec<EventType> = events.iter().map(|e| e.event_type).collect();
    let data: Vec<Json<&serde_json::Value>> = events.iter().map(|e| Json(&e.data)).collect();
    sqlx::query(
        "WITH events AS (
             INSERT INTO events (tenant_id, type, data)
             SELECT $1, y, d FROM unnest($11::text[], $12::jsonb[]) WITH ORDINALITY AS i(y, d, n)
             ORDER BY n)
         INSERT INTO audit_entries (tenant_id, operation, actor_user_id, actor_key_id, session_id,
                                    client_addr, request_id, customer_path, objects, detail)
         VALUES ($1, $2, $3, $4, $5, $6::inet, $7, $8::ltree, $9, $10)",
    )
    .bind(entry.tenant_id)
    .bind(entry.operation)
    .bind(entry.actor.user_id)
    .bind(entry.actor.key_id)
    .bind(entry.session_id)
    .bind(entry.client_addr.map(|ip| ip.to_canonical().to_string()))
    .bind(entry.request_id)
    .bind(entry.customer_path.map(Path::as_str))
    .bind(entry.objects)
    .bind(&entry.detail)
    .bind(types)
    .bind(data)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records many entries in one statement (a batch's items).
pub async fn record_many(conn: &mut PgConnection, entries: &[NewEntry<'_>]) -> sqlx::Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let column = |f: &dyn Fn(&NewEntry<'_>) -> Option<String>| -> Vec<Option<String>> {
        entries.iter().map(f).collect()
    };
    let tenants: Vec<TenantId> = entries.iter().map(|e| e.tenant_id).collect();
    let users: Vec<Option<UserId>> = entries.iter().map(|e| e.actor.user_id).collect();
    let keys: Vec<Option<i64>> = entries.iter().map(|e| e.actor.key_id).collect();
    let sessions: Vec<Option<i64>> = entries.iter().map(|e| e.session_id).collect();
    // Objects as one JSON array per entry: Postgres has no arrays of
    // arrays of varying length.
    let objects: Vec<serde_json::Value> = entries
        .iter()
        .map(|e| serde_json::json!(e.objects))
        .collect();
    let details: Vec<Option<serde_json::Value>> =
        entries.iter().map(|e| e.detail.clone()).collect();
    sqlx::query(
        "INSERT INTO audit_entries (tenant_id, operation, actor_user_id, actor_key_id, session_id,
                                    client_addr, request_id, customer_path, objects, detail)
         SELECT t, op, u, k, s, addr::inet, req, path::ltree,
                ARRAY(SELECT jsonb_array_elements_text(o)), d
         FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[],
                     $6::text[], $7::text[], $8::text[], $9::jsonb[], $10::jsonb[])
              WITH ORDINALITY AS e(t, op, u, k, s, addr, req, path, o, d, n)
         ORDER BY n",
    )
    .bind(tenants)
    .bind(column(&|e| Some(e.operation.to_owned())))
    .bind(users)
    .bind(keys)
    .bind(sessions)
    .bind(column(&|e| {
        e.client_addr.map(|ip| ip.to_canonical().to_string())
    }))
    .bind(column(&|e| e.request_id.map(str::to_owned)))
    .bind(column(&|e| e.customer_path.map(|p| p.as_str().to_owned())))
    .bind(objects)
    .bind(details)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct EntryRow {
    pub tenant_id: TenantId,
    pub id: i64,
    pub at: DateTime<Utc>,
    pub operation: String,
    pub actor_user_id: Option<UserId>,
    pub actor_key_id: Option<i64>,
    pub session_id: Option<i64>,
    pub client_addr: Option<String>,
    pub request_id: Option<String>,
    pub customer_path: Option<Path>,
    pub objects: Vec<String>,
    pub detail: Option<serde_json::Value>,
}

impl EntryRow {
    pub fn actor(&self) -> Actor {
        Actor {
            user_id: self.actor_user_id,
            key_id: self.actor_key_id,
        }
    }
}

const COLUMNS: &str = "a.tenant_id, a.id, a.at, a.operation, a.actor_user_id, a.actor_key_id, \
     a.session_id, host(a.client_addr) AS client_addr, a.request_id, \
     a.customer_path::text AS customer_path, a.objects, a.detail";

/// What a reader asks for; every part narrows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Filter {
    pub operation: Option<String>,
    pub object: Option<String>,
    pub actor: Option<Actor>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

/// Counting stops here: `totalCount` of a long log is a lower bound.
const COUNT_UP_TO: i64 = 10_000;

fn push_where(
    query: &mut QueryBuilder<'_, sqlx::Postgres>,
    tenant_id: TenantId,
    sight: &Sight,
    filter: &Filter,
) {
    query
        .push(" FROM audit_entries a WHERE a.tenant_id = ")
        .push_bind(tenant_id);
    if let Sight::Subtrees(ids) = sight {
        // `*.12.*`: paths with customer 12 on them, so an entry stays in
        // the subtree it was written in however the subtree moves later.
        let patterns: Vec<String> = ids.iter().map(|id| format!("*.{id}.*")).collect();
        query
            .push(" AND a.customer_path ? ")
            .push_bind(patterns)
            .push("::lquery[]");
    }
    if let Some(operation) = &filter.operation {
        query
            .push(" AND a.operation = ")
            .push_bind(operation.clone());
    }
    if let Some(object) = &filter.object {
        query
            .push(" AND a.objects @> ARRAY[")
            .push_bind(object.clone())
            .push("]::text[]");
    }
    if let Some(actor) = filter.actor {
        match (actor.user_id, actor.key_id) {
            (Some(user), _) => query.push(" AND a.actor_user_id = ").push_bind(user),
            (None, Some(key)) => query.push(" AND a.actor_key_id = ").push_bind(key),
            (None, None) => query.push(" AND a.actor_user_id IS NULL AND a.actor_key_id IS NULL"),
        };
    }
    if let Some(since) = filter.since {
        query.push(" AND a.at >= ").push_bind(since);
    }
    if let Some(until) = filter.until {
        query.push(" AND a.at < ").push_bind(until);
    }
}

/// A page of entries, newest first; the cursor is an entry's id.
pub async fn page(
    pool: &PgPool,
    tenant_id: TenantId,
    sight: &Sight,
    filter: &Filter,
    page: &Page,
) -> sqlx::Result<Vec<EntryRow>> {
    let mut query = QueryBuilder::new(format!("SELECT {COLUMNS}"));
    push_where(&mut query, tenant_id, sight, filter);
    if let Some(after) = page.after.as_deref().and_then(|a| a.parse::<i64>().ok()) {
        query.push(" AND a.id < ").push_bind(after);
    }
    query
        .push(" ORDER BY a.id DESC LIMIT ")
        .push_bind(page.limit());
    query.build_query_as().fetch_all(pool).await
}

/// How many entries the reader's filter holds, up to `COUNT_UP_TO`.
pub async fn count(
    pool: &PgPool,
    tenant_id: TenantId,
    sight: &Sight,
    filter: &Filter,
) -> sqlx::Result<Count> {
    let mut query = QueryBuilder::new("SELECT count(*) FROM (SELECT 1");
    push_where(&mut query, tenant_id, sight, filter);
    query.push(" LIMIT ").push_bind(COUNT_UP_TO + 1).push(") c");
    let value: i64 = query.build_query_scalar().fetch_one(pool).await?;
    Ok(Count {
        value: value.min(COUNT_UP_TO),
        exact: value <= COUNT_UP_TO,
    })
}

/// The newest entry of any of `operations` naming each of `objects`, for
/// reading who last acted on them.
pub async fn latest_for_objects(
    pool: &PgPool,
    tenant_id: TenantId,
    operations: &[&str],
    objects: &[String],
) -> sqlx::Result<Vec<(String, EntryRow)>> {
    #[derive(sqlx::FromRow)]
    struct Found {
        object: String,
        #[sqlx(flatten)]
        row: EntryRow,
    }
    let found: Vec<Found> = sqlx::query_as(&format!(
        "SELECT DISTINCT ON (o.object) o.object, {COLUMNS}
         FROM unnest($3::text[]) AS o(object)
         JOIN audit_entries a ON a.tenant_id = $1 AND a.operation = ANY($2)
                              AND a.objects @> ARRAY[o.object]
         ORDER BY o.object, a.id DESC"
    ))
    .bind(tenant_id)
    .bind(operations)
    .bind(objects)
    .fetch_all(pool)
    .await?;
    Ok(found.into_iter().map(|f| (f.object, f.row)).collect())
}

/// The newest entry of `operation` whose detail holds `key: value`.
pub async fn latest_with_detail(
    pool: &PgPool,
    tenant_id: TenantId,
    operation: &str,
    key: &str,
    value: &str,
) -> sqlx::Result<Option<EntryRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM audit_entries a
         WHERE a.tenant_id = $1 AND a.operation = $2 AND a.detail ->> $3 = $4
         ORDER BY a.id DESC LIMIT 1"
    ))
    .bind(tenant_id)
    .bind(operation)
    .bind(key)
    .bind(value)
    .fetch_optional(pool)
    .await
}

/// Deletes at most `batch` entries older than `before`; answers how many.
/// Retention calls it until it answers fewer than `batch`, so no statement
/// holds many rows.
pub async fn prune(pool: &PgPool, before: DateTime<Utc>, batch: i64) -> sqlx::Result<u64> {
    let deleted = sqlx::query(
        "DELETE FROM audit_entries WHERE ctid IN (
             SELECT ctid FROM audit_entries WHERE at < $1 ORDER BY at LIMIT $2)",
    )
    .bind(before)
    .bind(batch)
    .execute(pool)
    .await?;
    Ok(deleted.rows_affected())
}
