//! The customer tree. See the migration for how `path`, `sort_key` and
//! `tree_sort` make every tree question one indexed statement.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};

use super::{Count, Grouped, Page, Search, by_group};
use crate::authz::CustomerReach;
use crate::id::{CustomerId, TenantId, UserId};
use crate::path::Path;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct CustomerRow {
    pub tenant_id: TenantId,
    pub id: CustomerId,
    pub parent_id: Option<CustomerId>,
    pub path: Path,
    pub number: String,
    pub title: String,
    pub sort_key: String,
    pub tree_sort: String,
    /// How many customers are below it, kept by triggers.
    pub descendant_count: i32,
    pub info: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub country: Option<String>,
    pub state: Option<String>,
    pub city: Option<String>,
    pub address: Option<String>,
    pub address2: Option<String>,
    pub zip: Option<String>,
    /// The partner's own id, unique in the tenant.
    pub external_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl CustomerRow {
    /// 0 for a root customer.
    pub fn depth(&self) -> i32 {
        self.path.depth()
    }

    /// Ids from the root down to the parent, read off the path.
    pub fn ancestor_ids(&self) -> Vec<CustomerId> {
        self.path.ancestors()
    }
}

/// The columns of `CustomerRow`, qualified by `c`.
const COLUMNS: &str = "c.tenant_id, c.id, c.parent_id, c.path::text AS path, c.number, c.title, \
     c.sort_key, c.tree_sort, c.descendant_count, c.info, c.email, c.phone, c.country, c.state, c.city, \
     c.address, c.address2, c.zip, c.external_id, c.created_at, c.updated_at";

/// The editable fields of a customer, already validated.
#[derive(Clone, Debug, Default)]
pub struct Fields {
    pub title: String,
    pub info: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub country: Option<String>,
    pub state: Option<String>,
    pub city: Option<String>,
    pub address: Option<String>,
    pub address2: Option<String>,
    pub zip: Option<String>,
    pub external_id: Option<String>,
}

/// Which customers a list shows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Filter {
    /// Matches the number or the title.
    pub search: Option<Search>,
    pub roots_only: bool,
    /// A customer user's reach; `None` is the whole tenant.
    pub reach: Option<CustomerReach>,
}

pub async fn by_ids<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    tenant_id: TenantId,
    ids: &[CustomerId],
) -> sqlx::Result<Vec<CustomerRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM customers c WHERE c.tenant_id = $1 AND c.id = ANY($2)"
    ))
    .bind(tenant_id)
    .bind(ids)
    .fetch_all(executor)
    .await
}

pub async fn by_id(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    id: CustomerId,
) -> sqlx::Result<Option<CustomerRow>> {
    one(conn, tenant_id, id, "").await
}

/// A customer's title, for naming it in an email.
pub async fn title(
    pool: &PgPool,
    tenant_id: TenantId,
    id: CustomerId,
) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("SELECT title FROM customers WHERE tenant_id = $1 AND id = $2")
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// Loads and locks the row until the transaction ends, so concurrent edits
/// of the same customer apply one after the other.
pub async fn lock(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    id: CustomerId,
) -> sqlx::Result<Option<CustomerRow>> {
    one(conn, tenant_id, id, " FOR UPDATE").await
}

async fn one(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    id: CustomerId,
    locking: &str,
) -> sqlx::Result<Option<CustomerRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM customers c WHERE c.tenant_id = $1 AND c.id = $2{locking}"
    ))
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// The depth of the deepest customer in the subtree of `root`, below it
/// (0 for a leaf).
pub async fn subtree_height(conn: &mut PgConnection, root: &CustomerRow) -> sqlx::Result<i32> {
    sqlx::query_scalar(
        "SELECT max(nlevel(c.path)) - nlevel($2::ltree) FROM customers c
         WHERE c.tenant_id = $1 AND c.path <@ $2::ltree",
    )
    .bind(root.tenant_id)
    .bind(&root.path)
    .fetch_one(conn)
    .await
}

pub async fn by_number(
    pool: &PgPool,
    tenant_id: TenantId,
    number: &str,
) -> sqlx::Result<Option<CustomerRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM customers c WHERE c.tenant_id = $1 AND c.number = $2"
    ))
    .bind(tenant_id)
    .bind(number)
    .fetch_optional(pool)
    .await
}

fn push_filter(query: &mut QueryBuilder<'_, Postgres>, filter: &Filter) {
    if let Some(search) = &filter.search {
        let pattern = search.pattern();
        query
            .push(" AND (c.title ILIKE ")
            .push_bind(pattern.clone())
            .push(" OR c.number ILIKE ")
            .push_bind(pattern)
            .push(")");
    }
    match (&filter.reach, filter.roots_only) {
        (_, false) => {}
        (None, true) => {
            query.push(" AND c.parent_id IS NULL");
        }
        // A customer user's roots are the tops of what it sees.
        (Some(reach), true) => {
            query
                .push(" AND c.id = ANY(")
                .push_bind(reach.view_roots())
                .push(")");
        }
    }
    if let Some(reach) = &filter.reach {
        query
            .push(" AND (c.path <@ ANY(")
            .push_bind(reach.administered.clone())
            .push("::ltree[]) OR c.id = ")
            .push_bind(reach.own_customer.as_ref().map(|(id, _)| *id))
            .push(")");
    }
}

/// How many matches a search counts before it stops: `totalCount` is then
/// a lower bound.
pub const SEARCH_COUNT_LIMIT: i64 = 1000;

/// How many rows of a piece `search_grams` tells apart when choosing the
/// rarest piece of a term to walk, and how many of the term's pieces are
/// compared: choosing costs at most their product in index entries.
const GRAM_PROBE: i64 = 1000;
const PIECES_COMPARED: i64 = 12;

/// How many rows of the chosen piece a search walks. A term whose pieces
/// are all common but rarely together (fewer than a page of matches in this
/// many rows) has few matches, which the trigram indexes then find for the
/// rest of the list: a search never walks a whole posting list.
const WALK_BUDGET: i64 = 10_000;

/// A search of the whole tenant walks `customer_grams` (see its
/// migration); one limited to a reach or to roots filters the customers.
fn walks_grams(filter: &Filter) -> Option<&Search> {
    filter
        .search
        .as_ref()
        .filter(|s| filter.reach.is_none() && !filter.roots_only && s.term().chars().count() >= 3)
}

/// `w`: the first `WALK_BUDGET` rows after `after` of the term's rarest
/// piece, in sort order. The rarest is chosen by counting rows up to
/// `GRAM_PROBE`, so a term of a common piece and a rare one walks the rare.
fn push_walk(
    query: &mut QueryBuilder<'_, Postgres>,
    tenant_id: TenantId,
    search: &Search,
    after: Option<&str>,
) {
    query
        .push("(SELECT g.sort_key FROM customer_grams g WHERE g.tenant_id = ")
        .push_bind(tenant_id)
        .push(" AND g.gram = (SELECT t.gram FROM (SELECT gram FROM search_grams(")
        .push_bind(search.term().to_owned())
        .push(") AS gram LIMIT ")
        .push_bind(PIECES_COMPARED)
        .push(") AS t ORDER BY (SELECT count(*) FROM (SELECT FROM customer_grams p WHERE p.tenant_id = ")
        .push_bind(tenant_id)
        .push(" AND p.gram = t.gram LIMIT ")
        .push_bind(GRAM_PROBE)
        .push(") AS probe), t.gram LIMIT 1)");
    if let Some(after) = after {
        query.push(" AND g.sort_key > ").push_bind(after.to_owned());
    }
    query
        .push(" ORDER BY g.sort_key LIMIT ")
        .push_bind(WALK_BUDGET)
        .push(") AS w");
}

fn push_holds_term(query: &mut QueryBuilder<'_, Postgres>, search: &Search) {
    query
        .push(" lower(w.sort_key COLLATE \"default\") LIKE lower(")
        .push_bind(search.pattern())
        .push(")");
}

/// Where a walk that found too little stopped, when it stopped for its
/// budget rather than at the piece's end: the trigram indexes go on from
/// there.
async fn walk_stopped_at(
    pool: &PgPool,
    tenant_id: TenantId,
    search: &Search,
    after: Option<&str>,
) -> sqlx::Result<Option<String>> {
    let mut query = QueryBuilder::new("SELECT count(*), max(w.sort_key) FROM ");
    push_walk(&mut query, tenant_id, search, after);
    let (walked, last): (i64, Option<String>) = query.build_query_as().fetch_one(pool).await?;
    Ok(last.filter(|_| walked == WALK_BUDGET))
}

/// A page of the tenant's customers, by title then number.
///
/// A search of the whole tenant reads its page off `customer_grams`. One
/// of roots, or within a customer user's reach, walks those customers in
/// sort order (a few thousand roots; a reach is a few subtrees).
pub async fn list(
    pool: &PgPool,
    tenant_id: TenantId,
    filter: &Filter,
    page: &Page,
) -> sqlx::Result<Vec<CustomerRow>> {
    let after = page.after.as_deref();
    if let Some(search) = walks_grams(filter) {
        let mut query = QueryBuilder::new(format!(
            "SELECT {COLUMNS} FROM customers c WHERE c.tenant_id = "
        ));
        query
            .push_bind(tenant_id)
            .push(" AND c.sort_key IN (SELECT w.sort_key FROM ");
        push_walk(&mut query, tenant_id, search, after);
        query.push(" WHERE");
        push_holds_term(&mut query, search);
        query
            .push(" ORDER BY w.sort_key LIMIT ")
            .push_bind(page.limit())
            .push(") ORDER BY c.sort_key");
        let mut rows: Vec<CustomerRow> = query.build_query_as().fetch_all(pool).await?;
        if rows.len() as i64 == page.limit() {
            return Ok(rows);
        }
        if let Some(last) = walk_stopped_at(pool, tenant_id, search, after).await? {
            let rest = Page {
                first: page.limit() - rows.len() as i64 - 1,
                after: Some(last),
            };
            rows.extend(matching(pool, tenant_id, filter, &rest).await?);
        }
        return Ok(rows);
    }
    matching(pool, tenant_id, filter, page).await
}

/// A page of the customers the filter matches, filtering the table. With a
/// search, the matches are found first through the trigram indexes and
/// only they are sorted: walking the sort index and filtering would scan
/// every customer that sorts before the first match.
async fn matching(
    pool: &PgPool,
    tenant_id: TenantId,
    filter: &Filter,
    page: &Page,
) -> sqlx::Result<Vec<CustomerRow>> {
    let mut query = if filter.search.is_some() {
        let mut query = QueryBuilder::new(
            "WITH matches AS MATERIALIZED (SELECT c.* FROM customers c WHERE c.tenant_id = ",
        );
        query.push_bind(tenant_id);
        push_filter(&mut query, filter);
        query.push(format!(") SELECT {COLUMNS} FROM matches c WHERE true"));
        query
    } else {
        let mut query = QueryBuilder::new(format!(
            "SELECT {COLUMNS} FROM customers c WHERE c.tenant_id = "
        ));
        query.push_bind(tenant_id);
        push_filter(&mut query, filter);
        query
    };
    if let Some(after) = &page.after {
        query.push(" AND c.sort_key > ").push_bind(after.clone());
    }
    query
        .push(" ORDER BY c.sort_key LIMIT ")
        .push_bind(page.limit());
    query.build_query_as().fetch_all(pool).await
}

/// How many customers the filter lists; a search of the whole tenant stops
/// counting at `SEARCH_COUNT_LIMIT`.
pub async fn count(pool: &PgPool, tenant_id: TenantId, filter: &Filter) -> sqlx::Result<Count> {
    let Some(search) = walks_grams(filter) else {
        return counted(pool, tenant_id, filter, None, None)
            .await
            .map(Count::exact);
    };
    let mut query = QueryBuilder::new("SELECT count(*) FROM (SELECT FROM ");
    push_walk(&mut query, tenant_id, search, None);
    query.push(" WHERE");
    push_holds_term(&mut query, search);
    query
        .push(" LIMIT ")
        .push_bind(SEARCH_COUNT_LIMIT + 1)
        .push(") AS matches");
    let mut found: i64 = query.build_query_scalar().fetch_one(pool).await?;
    if found <= SEARCH_COUNT_LIMIT
        && let Some(last) = walk_stopped_at(pool, tenant_id, search, None).await?
    {
        let limit = SEARCH_COUNT_LIMIT + 1 - found;
        found += counted(pool, tenant_id, filter, Some(&last), Some(limit)).await?;
    }
    Ok(Count {
        value: found.min(SEARCH_COUNT_LIMIT),
        exact: found <= SEARCH_COUNT_LIMIT,
    })
}

/// The customers the filter matches after `after`, counted up to `limit`.
async fn counted(
    pool: &PgPool,
    tenant_id: TenantId,
    filter: &Filter,
    after: Option<&str>,
    limit: Option<i64>,
) -> sqlx::Result<i64> {
    let mut query =
        QueryBuilder::new("SELECT count(*) FROM (SELECT FROM customers c WHERE c.tenant_id = ");
    query.push_bind(tenant_id);
    push_filter(&mut query, filter);
    if let Some(after) = after {
        query.push(" AND c.sort_key > ").push_bind(after.to_owned());
    }
    if let Some(limit) = limit {
        query.push(" LIMIT ").push_bind(limit);
    }
    query.push(") AS matches");
    query.build_query_scalar().fetch_one(pool).await
}

/// A page of inner customers for each parent, in one statement.
pub async fn children_pages(
    pool: &PgPool,
    tenant_id: TenantId,
    parent_ids: &[CustomerId],
    search: Option<&Search>,
    page: &Page,
) -> sqlx::Result<HashMap<CustomerId, Vec<CustomerRow>>> {
    let mut query = QueryBuilder::new(format!(
        "SELECT p.id AS group_id, {} FROM unnest(",
        COLUMNS.replace("c.", "x.")
    ));
    query
        .push_bind(parent_ids.to_vec())
        .push("::bigint[]) AS p(id) CROSS JOIN LATERAL (SELECT c.* FROM customers c WHERE c.tenant_id = ")
        .push_bind(tenant_id)
        .push(" AND c.parent_id = p.id");
    push_filter(
        &mut query,
        &Filter {
            search: search.cloned(),
            ..Filter::default()
        },
    );
    if let Some(after) = &page.after {
        query.push(" AND c.sort_key > ").push_bind(after.clone());
    }
    query
        .push(" ORDER BY c.sort_key LIMIT ")
        .push_bind(page.limit())
        .push(") x ORDER BY p.id, x.sort_key");
    let rows: Vec<Grouped<CustomerId, CustomerRow>> =
        query.build_query_as().fetch_all(pool).await?;
    Ok(by_group(rows))
}

/// The number of inner customers of each parent (matching `search`).
pub async fn child_counts(
    pool: &PgPool,
    tenant_id: TenantId,
    parent_ids: &[CustomerId],
    search: Option<&Search>,
) -> sqlx::Result<HashMap<CustomerId, i64>> {
    let mut query =
        QueryBuilder::new("SELECT c.parent_id, count(*) FROM customers c WHERE c.tenant_id = ");
    query
        .push_bind(tenant_id)
        .push(" AND c.parent_id = ANY(")
        .push_bind(parent_ids.to_vec())
        .push(")");
    push_filter(
        &mut query,
        &Filter {
            search: search.cloned(),
            ..Filter::default()
        },
    );
    query.push(" GROUP BY c.parent_id");
    let rows: Vec<(CustomerId, i64)> = query.build_query_as().fetch_all(pool).await?;
    Ok(rows.into_iter().collect())
}

/// What joins the sort keys in `tree_sort` (chr(30)), and the character
/// right after it: every descendant's `tree_sort` lies between its root's
/// followed by one and by the other.
const SEPARATOR: char = '\u{1e}';
const AFTER_SEPARATOR: char = '\u{1f}';

fn push_descendants(
    query: &mut QueryBuilder<'_, Postgres>,
    root: &CustomerRow,
    max_depth: Option<i32>,
) {
    // The subtree is exactly the tree_sort range below the root's own:
    // sort keys hold no control characters, so no other chain starts with
    // the root's and chr(30). An index range scan reads a page in order.
    query
        .push(" FROM customers c WHERE c.tenant_id = ")
        .push_bind(root.tenant_id)
        .push(" AND c.tree_sort > ")
        .push_bind(format!("{}{SEPARATOR}", root.tree_sort))
        .push(" AND c.tree_sort < ")
        .push_bind(format!("{}{AFTER_SEPARATOR}", root.tree_sort));
    if let Some(max_depth) = max_depth {
        query
            .push(" AND nlevel(c.path) <= nlevel(")
            .push_bind(root.path.clone())
            .push("::ltree) + ")
            .push_bind(i64::from(max_depth));
    }
}

/// A page of the subtree below `root` in depth-first pre-order, children by
/// title then number, at most `max_depth` levels down.
pub async fn descendants(
    pool: &PgPool,
    root: &CustomerRow,
    max_depth: Option<i32>,
    page: &Page,
) -> sqlx::Result<Vec<CustomerRow>> {
    let mut query = QueryBuilder::new(format!("SELECT {COLUMNS}"));
    push_descendants(&mut query, root, max_depth);
    if let Some(after) = &page.after {
        query.push(" AND c.tree_sort > ").push_bind(after.clone());
    }
    query
        .push(" ORDER BY c.tree_sort LIMIT ")
        .push_bind(page.limit());
    query.build_query_as().fetch_all(pool).await
}

pub async fn descendants_count(
    pool: &PgPool,
    root: &CustomerRow,
    max_depth: Option<i32>,
) -> sqlx::Result<i64> {
    let mut query = QueryBuilder::new("SELECT count(*)");
    push_descendants(&mut query, root, max_depth);
    query.build_query_scalar().fetch_one(pool).await
}

/// Takes the next number from the tenant's counter, in a readable form.
async fn next_number(conn: &mut PgConnection, tenant_id: TenantId) -> sqlx::Result<String> {
    let n: i64 = sqlx::query_scalar(
        "INSERT INTO tenant_counters (tenant_id, customer_number) VALUES ($1, 1)
         ON CONFLICT (tenant_id) DO UPDATE
         SET customer_number = tenant_counters.customer_number + 1
         RETURNING customer_number",
    )
    .bind(tenant_id)
    .fetch_one(conn)
    .await?;
    Ok(format!("C-{n:06}"))
}

/// Inserts a customer below `parent` (a root when `None`). With no number,
/// numbers are drawn from the tenant's counter until one is free (a caller
/// may have taken one by hand); a given number that is taken fails on the
/// unique constraint `customers_number_key`.
pub async fn insert(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    parent: Option<&CustomerRow>,
    number: Option<&str>,
    fields: &Fields,
) -> sqlx::Result<CustomerRow> {
    // The id is drawn first because the path ends with it.
    let id: CustomerId =
        sqlx::query_scalar("SELECT nextval(pg_get_serial_sequence('customers', 'id'))")
            .fetch_one(&mut *conn)
            .await?;
    let path = match parent {
        Some(parent) => parent.path.child(id),
        None => Path::root(id),
    };
    loop {
        let (number, assigned) = match number {
            Some(number) => (number.to_owned(), false),
            None => (next_number(&mut *conn, tenant_id).await?, true),
        };
        let on_conflict = if assigned {
            "ON CONFLICT ON CONSTRAINT customers_number_key DO NOTHING"
        } else {
            ""
        };
        let row: Option<CustomerRow> = sqlx::query_as(&format!(
            "INSERT INTO customers AS c (tenant_id, id, parent_id, path, tree_sort, number, title,
                 info, email, phone, country, state, city, address, address2, zip, external_id)
             OVERRIDING SYSTEM VALUE
             VALUES ($1, $2, $3, $4::ltree, coalesce($5 || chr(30), '') || lower($7) || chr(31) || $6,
                     $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
             {on_conflict} RETURNING {COLUMNS}"
        ))
        .bind(tenant_id)
        .bind(id)
        .bind(parent.map(|p| p.id))
        .bind(&path)
        .bind(parent.map(|p| p.tree_sort.clone()))
        .bind(&number)
        .bind(&fields.title)
        .bind(&fields.info)
        .bind(&fields.email)
        .bind(&fields.phone)
        .bind(&fields.country)
        .bind(&fields.state)
        .bind(&fields.city)
        .bind(&fields.address)
        .bind(&fields.address2)
        .bind(&fields.zip)
        .bind(&fields.external_id)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(row) = row {
            return Ok(row);
        }
    }
}

/// Writes a customer's fields and number. The caller refreshes the subtree's
/// `tree_sort` when the title or number changed (`move_subtree` in place).
pub async fn update(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    id: CustomerId,
    number: &str,
    fields: &Fields,
) -> sqlx::Result<CustomerRow> {
    sqlx::query_as(&format!(
        "UPDATE customers AS c SET number = $3, title = $4, info = $5, email = $6, phone = $7,
             country = $8, state = $9, city = $10, address = $11, address2 = $12, zip = $13,
             external_id = $14, updated_at = now()
         WHERE c.tenant_id = $1 AND c.id = $2 RETURNING {COLUMNS}"
    ))
    .bind(tenant_id)
    .bind(id)
    .bind(number)
    .bind(&fields.title)
    .bind(&fields.info)
    .bind(&fields.email)
    .bind(&fields.phone)
    .bind(&fields.country)
    .bind(&fields.state)
    .bind(&fields.city)
    .bind(&fields.address)
    .bind(&fields.address2)
    .bind(&fields.zip)
    .bind(&fields.external_id)
    .fetch_one(conn)
    .await
}

/// The customer a partner knows by `external_id`.
pub async fn by_external_id(
    pool: &PgPool,
    tenant_id: TenantId,
    external_id: &str,
) -> sqlx::Result<Option<CustomerRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM customers c WHERE c.tenant_id = $1 AND c.external_id = $2"
    ))
    .bind(tenant_id)
    .bind(external_id)
    .fetch_optional(pool)
    .await
}

/// Moves `id` and its subtree below `new_parent` (to the roots when `None`)
/// and, in the same statement, rebuilds the subtree's `tree_sort` from the
/// new parent's. With `new_parent == current parent` it only re-sorts, which
/// is what a changed title or number needs.
pub async fn move_subtree(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    id: CustomerId,
    new_parent: Option<CustomerId>,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE customers d SET
             path = CASE WHEN d.id = $2 THEN n.new_path
                         ELSE n.new_path || subpath(d.path, nlevel(n.old_path)) END,
             tree_sort = n.new_sort || substr(d.tree_sort, length(n.old_sort) + 1),
             parent_id = CASE WHEN d.id = $2 THEN $3 ELSE d.parent_id END,
             updated_at = CASE WHEN d.id = $2 AND d.parent_id IS DISTINCT FROM $3
                               THEN now() ELSE d.updated_at END
         FROM (SELECT c.path AS old_path, c.tree_sort AS old_sort,
                      CASE WHEN p.path IS NULL THEN text2ltree(c.id::text)
                           ELSE p.path || text2ltree(c.id::text) END AS new_path,
                      coalesce(p.tree_sort || chr(30), '') || c.sort_key AS new_sort
               FROM customers c
               LEFT JOIN customers p ON p.tenant_id = c.tenant_id AND p.id = $3
               WHERE c.tenant_id = $1 AND c.id = $2) n
         WHERE d.tenant_id = $1 AND d.path <@ n.old_path",
    )
    .bind(tenant_id)
    .bind(id)
    .bind(new_parent)
    .execute(conn)
    .await?;
    Ok(())
}

/// Whether `candidate` is `id` itself or lies below it.
pub async fn is_in_subtree(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    id: CustomerId,
    candidate: CustomerId,
) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM customers c, customers r
                        WHERE c.tenant_id = $1 AND c.id = $3
                          AND r.tenant_id = $1 AND r.id = $2 AND c.path <@ r.path)",
    )
    .bind(tenant_id)
    .bind(id)
    .bind(candidate)
    .fetch_one(conn)
    .await
}

/// What deleting the subtree of `root` would take with it.
pub struct SubtreeCensus {
    pub customers: i64,
    pub cloud_accounts: i64,
}

pub async fn census(conn: &mut PgConnection, root: &CustomerRow) -> sqlx::Result<SubtreeCensus> {
    let (customers, cloud_accounts): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM customers c
                 WHERE c.tenant_id = $1 AND c.path <@ $2::ltree),
                (SELECT count(*) FROM entitlements e
                 JOIN customers c ON c.tenant_id = e.tenant_id AND c.id = e.customer_id
                 WHERE e.tenant_id = $1 AND e.kind = 'CLOUD_ACCOUNT' AND c.path <@ $2::ltree)",
    )
    .bind(root.tenant_id)
    .bind(&root.path)
    .fetch_one(conn)
    .await?;
    Ok(SubtreeCensus {
        customers,
        cloud_accounts,
    })
}

/// What a subtree deletion removed and detached.
pub struct Deleted {
    pub customer_ids: Vec<CustomerId>,
    pub user_ids: Vec<UserId>,
    pub detached_entitlement_ids: Vec<i64>,
}

/// Deletes `root` and everything below it: their users go, their
/// entitlements are detached keeping the customer's number, their
/// administrator assignments go with them.
pub async fn delete_subtree(conn: &mut PgConnection, root: &CustomerRow) -> sqlx::Result<Deleted> {
    let user_ids: Vec<UserId> = sqlx::query_scalar(
        "DELETE FROM users u USING customers c
         WHERE u.tenant_id = $1 AND c.tenant_id = $1 AND u.customer_id = c.id
           AND c.path <@ $2::ltree
         RETURNING u.id",
    )
    .bind(root.tenant_id)
    .bind(&root.path)
    .fetch_all(&mut *conn)
    .await?;
    let detached_entitlement_ids: Vec<i64> = sqlx::query_scalar(
        "UPDATE entitlements e SET customer_id = NULL, customer_number = c.number
         FROM customers c
         WHERE e.tenant_id = $1 AND c.tenant_id = $1 AND e.customer_id = c.id
           AND c.path <@ $2::ltree
         RETURNING e.id",
    )
    .bind(root.tenant_id)
    .bind(&root.path)
    .fetch_all(&mut *conn)
    .await?;
    let customer_ids: Vec<CustomerId> = sqlx::query_scalar(
        "DELETE FROM customers c WHERE c.tenant_id = $1 AND c.path <@ $2::ltree
         RETURNING c.id",
    )
    .bind(root.tenant_id)
    .bind(&root.path)
    .fetch_all(&mut *conn)
    .await?;
    Ok(Deleted {
        customer_ids,
        user_ids,
        detached_entitlement_ids,
    })
}
