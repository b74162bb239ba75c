//! One tenant's customer forest, users and administrators, written with
//! set-based SQL exactly as the application would have written them row by
//! row, then checked.

use anyhow::{Context, Result, bail, ensure};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::{PgConnection, PgPool};

/// Bumped whenever the shape or what is written changes, so that a kept
/// database of an older shape is seeded again.
pub const VERSION: i32 = 1;
/// Customers in each tree of the forest: a root and 99 descendants.
pub const TREE: i64 = 100;
/// Levels of a forest tree, the root's included (`nlevel(path)`).
pub const LEVELS: usize = 6;
/// The one large subtree below "Big Root": 50 children, 19 below each, 20
/// below each of those.
pub const BIG: [i64; 3] = [50, 19, 20];
/// Tenant admins besides the one the tenant was created with.
const EXTRA_ADMINS: i64 = 4;
/// Every this many roots has one of its users as administrator.
const ADMINISTERED_EVERY: i64 = 33;

/// Customers below the big root.
pub fn big_subtree() -> i64 {
    BIG[0] + BIG[0] * BIG[1] + BIG[0] * BIG[1] * BIG[2]
}

/// What was seeded, as the marker table records it.
pub struct Shape {
    pub forest: i64,
    pub users: i64,
}

impl Shape {
    pub fn for_customers(customers: i64) -> Self {
        let forest = (customers / TREE).max(1) * TREE;
        Shape {
            forest,
            users: (forest / 10).max(EXTRA_ADMINS + 100),
        }
    }

    pub fn customers(&self) -> i64 {
        self.forest + 1 + big_subtree()
    }
}

/// The customer number the tenant's counter gives its `n`th customer
/// (`format!("C-{n:06}")`, as `store::customers` does).
const NUMBER: &str = "'C-' || lpad(n::text, greatest(6, length(n::text)), '0')";
/// Titles from a small vocabulary, so that searches match many or few.
const TITLE: &str = "(ARRAY['Acme','Globex','Initech','Umbrella','Hooli','Stark','Wayne','Wonka',
        'Tyrell','Cyberdyne','Soylent','Aperture','Vandelay','Oscorp','Gringotts','Monarch',
        'Dunder','Pied Piper','Massive','Prestige'])[1 + (n % 20)]
    || ' ' || (ARRAY['Holdings','GmbH','Ltd','Inc','Labs','Group','Partners','Systems',
        'Trading','Services'])[1 + (n / 20 % 10)] || ' ' || n";

/// One node of a tree's template: its place, its parent's, and the places
/// from the root down to it.
struct Node {
    parent: Option<i32>,
    chain: Vec<i32>,
}

/// The shapes forest trees take, by the root's ordinal modulo their count:
/// a bush, chains of five, one wide level, and irregular trees.
fn shapes() -> Vec<Vec<Node>> {
    let mut shapes = Vec::new();
    let build = |parent_of: &mut dyn FnMut(usize, &[Node]) -> usize| {
        let mut nodes = vec![Node {
            parent: None,
            chain: vec![0],
        }];
        for i in 1..TREE as usize {
            let p = parent_of(i, &nodes);
            let mut chain = nodes[p].chain.clone();
            chain.push(i as i32);
            nodes.push(Node {
                parent: Some(p as i32),
                chain,
            });
        }
        nodes
    };
    // 9 children of 10 each.
    shapes.push(build(&mut |i, _| {
        if i <= 9 { 0 } else { 1 + (i - 10) / 10 }
    }));
    // Chains hanging from the root, five customers long.
    shapes.push(build(&mut |i, _| if (i - 1) % 5 == 0 { 0 } else { i - 1 }));
    // Every customer a child of the root.
    shapes.push(build(&mut |_, _| 0));
    // Irregular: each below a random earlier customer that has room below.
    for seed in 0..5 {
        let mut rng = StdRng::seed_from_u64(seed);
        shapes.push(build(&mut |_, nodes: &[Node]| loop {
            let p = rng.random_range(0..nodes.len());
            if nodes[p].chain.len() < LEVELS {
                break p;
            }
        }));
    }
    shapes
}

/// Seeds the tenant in one transaction; returns how many customers it holds.
pub async fn seed(pool: &PgPool, tenant: i64, shape: &Shape) -> Result<i64> {
    let mut tx = pool.begin().await?;
    let shapes = shapes();
    // The templates, one row per node, in a table of the transaction.
    sqlx::query(
        "CREATE TEMP TABLE shape_nodes (shape int, place int, parent int, chain int[])
         ON COMMIT DROP",
    )
    .execute(&mut *tx)
    .await?;
    let (mut shape_col, mut place, mut parent, mut chain) = (vec![], vec![], vec![], vec![]);
    for (s, nodes) in shapes.iter().enumerate() {
        for (i, node) in nodes.iter().enumerate() {
            shape_col.push(s as i32);
            place.push(i as i32);
            parent.push(node.parent);
            // As text: Postgres arrays of arrays must be rectangular.
            chain.push(
                node.chain
                    .iter()
                    .map(i32::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            );
        }
    }
    sqlx::query(
        "INSERT INTO shape_nodes
         SELECT s, p, par, string_to_array(c, ',')::int[]
         FROM unnest($1::int[], $2::int[], $3::int[], $4::text[]) AS t(s, p, par, c)",
    )
    .bind(&shape_col)
    .bind(&place)
    .bind(&parent)
    .bind(&chain)
    .execute(&mut *tx)
    .await?;

    // Ids follow the sequence and numbers the tenant's counter, as if every
    // customer had been created through the API, one after the other.
    let first_id: i64 =
        sqlx::query_scalar("SELECT nextval(pg_get_serial_sequence('customers', 'id'))")
            .fetch_one(&mut *tx)
            .await?;
    let first_number: i64 = sqlx::query_scalar(
        "SELECT coalesce((SELECT customer_number FROM tenant_counters WHERE tenant_id = $1), 0) + 1",
    )
    .bind(tenant)
    .fetch_one(&mut *tx)
    .await?;
    // A customer's ordinal k (from 0) gives its id and its counter value n;
    // its title and number follow from n. Each forest tree takes TREE
    // consecutive ordinals; the big tree comes after the forest.
    sqlx::query(&format!(
        "CREATE TEMP TABLE seeded ON COMMIT DROP AS
         SELECT k, $1::bigint + k AS id, $2::bigint + k AS n,
                CASE WHEN parent IS NULL THEN NULL ELSE $1::bigint + base + parent END AS parent_id,
                array(SELECT $1::bigint + base + c FROM unnest(chain) c) AS chain_ids
         FROM (SELECT r * {TREE} + place AS k, r * {TREE} AS base, parent, chain
               FROM generate_series(0, $3::bigint - 1) r
               JOIN shape_nodes ON shape = r % {shapes}) f",
        shapes = shapes.len()
    ))
    .bind(first_id)
    .bind(first_number)
    .bind(shape.forest / TREE)
    .execute(&mut *tx)
    .await?;
    // The big tree: level by level, ordinals from the end of the forest.
    let big = shape.forest;
    let levels = [1, BIG[0], BIG[0] * BIG[1], BIG[0] * BIG[1] * BIG[2]];
    let mut level_start = big;
    for (depth, width) in levels.iter().enumerate() {
        let per_parent = if depth == 0 { 1 } else { BIG[depth - 1] };
        let parent_start = level_start - levels.get(depth.wrapping_sub(1)).copied().unwrap_or(0);
        sqlx::query(
            "INSERT INTO seeded (k, id, n, parent_id, chain_ids)
             SELECT g.k, $1::bigint + g.k, $2::bigint + g.k, p.id,
                    coalesce(p.chain_ids, '{}') || ($1::bigint + g.k)
             FROM generate_series($3::bigint, $3::bigint + $4::bigint - 1) AS g(k)
             LEFT JOIN seeded p ON $5 AND p.k = $6::bigint + (g.k - $3::bigint) / $7::bigint",
        )
        .bind(first_id)
        .bind(first_number)
        .bind(level_start)
        .bind(width)
        .bind(depth > 0)
        .bind(parent_start)
        .bind(per_parent)
        .execute(&mut *tx)
        .await?;
        level_start += width;
    }
    let count = level_start;
    ensure!(
        count == shape.customers(),
        "seeded {count}, expected {}",
        shape.customers()
    );

    // The customers (the big root is found by its title), with the path and tree_sort `store::customers::insert`
    // writes: the chain of ids, and the chain of sort keys (lower(title) ||
    // chr(31) || number) joined by chr(30).
    sqlx::query(&format!(
        "CREATE TEMP TABLE named ON COMMIT DROP AS
         SELECT id, n, CASE WHEN k = $1 THEN 'Big Root' ELSE {TITLE} END AS title,
                {NUMBER} AS number
         FROM seeded s"
    ))
    .bind(big)
    .execute(&mut *tx)
    .await?;
    sqlx::query("CREATE UNIQUE INDEX ON named (id)")
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO customers (tenant_id, id, parent_id, path, tree_sort, number, title)
         OVERRIDING SYSTEM VALUE
         SELECT $1, s.id, s.parent_id, array_to_string(s.chain_ids, '.')::ltree,
                (SELECT string_agg(lower(a.title) || chr(31) || a.number, chr(30) ORDER BY o)
                 FROM unnest(s.chain_ids) WITH ORDINALITY AS c(id, o) JOIN named a ON a.id = c.id),
                me.number, me.title
         FROM seeded s JOIN named me ON me.id = s.id
         ORDER BY s.id",
    )
    .bind(tenant)
    .execute(&mut *tx)
    .await?;
    sqlx::query("SELECT setval(pg_get_serial_sequence('customers', 'id'), $1)")
        .bind(first_id + count - 1)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO tenant_counters (tenant_id, customer_number) VALUES ($1, $2)
         ON CONFLICT (tenant_id) DO UPDATE SET customer_number = $2",
    )
    .bind(tenant)
    .bind(first_number + count - 1)
    .execute(&mut *tx)
    .await?;
    users(&mut tx, tenant, shape, first_id).await?;
    tx.commit().await?;
    // What autovacuum would do after a bulk load: statistics and the
    // visibility map (for index-only counts).
    sqlx::query("VACUUM ANALYZE").execute(pool).await?;
    Ok(count)
}

/// Customer users spread over the forest, a few more tenant admins, and an
/// administrator (one of its own users) for every ADMINISTERED_EVERY-th root.
async fn users(tx: &mut PgConnection, tenant: i64, shape: &Shape, first_id: i64) -> Result<()> {
    let roots = shape.forest / TREE;
    // The first users belong to the administered roots; the rest land on
    // customers spread over the forest by a multiplicative stride.
    sqlx::query(
        "INSERT INTO users (tenant_id, customer_id, email, first_name, last_name, role, status)
         SELECT $1, CASE WHEN u < $5 THEN $2 + u * $6 * $7
                         ELSE $2 + (u * 7919) % $4 END,
                'user' || u || '@bench.test', 'User', 'Number ' || u, 'CUSTOMER_USER', 'ACTIVE'
         FROM generate_series(0, $3::bigint - 1) u",
    )
    .bind(tenant)
    .bind(first_id)
    .bind(shape.users - EXTRA_ADMINS)
    .bind(shape.forest)
    .bind((roots + ADMINISTERED_EVERY - 1) / ADMINISTERED_EVERY)
    .bind(ADMINISTERED_EVERY)
    .bind(TREE)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO users (tenant_id, customer_id, email, role, status)
         SELECT $1, NULL, 'admin' || a || '@bench.test', 'TENANT_ADMIN', 'ACTIVE'
         FROM generate_series(1, $2::bigint) a",
    )
    .bind(tenant)
    .bind(EXTRA_ADMINS)
    .execute(&mut *tx)
    .await?;
    // Every address is claimed, as `store::users::insert` does.
    sqlx::query(
        "INSERT INTO email_claims (tenant_id, address, user_id)
         SELECT u.tenant_id, lower(u.email), u.id FROM users u
         WHERE u.tenant_id = $1 AND NOT EXISTS
               (SELECT 1 FROM email_claims c WHERE c.tenant_id = u.tenant_id AND c.user_id = u.id)",
    )
    .bind(tenant)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO customer_administrators (tenant_id, customer_id, user_id)
         SELECT u.tenant_id, u.customer_id, min(u.id) FROM users u JOIN customers c
           ON c.tenant_id = u.tenant_id AND c.id = u.customer_id AND c.parent_id IS NULL
         WHERE u.tenant_id = $1 AND (u.customer_id - $2) % ($3 * $4) = 0
         GROUP BY u.tenant_id, u.customer_id",
    )
    .bind(tenant)
    .bind(first_id)
    .bind(ADMINISTERED_EVERY)
    .bind(TREE)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Fails loudly when the seeded data breaks an invariant the application
/// relies on.
pub async fn check(pool: &PgPool, tenant: i64, shape: &Shape) -> Result<()> {
    let checks: &[(&str, &str)] = &[
        (
            "a root's path is its id, a child's its parent's path and its id",
            "SELECT count(*) FROM customers c LEFT JOIN customers p
               ON p.tenant_id = c.tenant_id AND p.id = c.parent_id
             WHERE c.tenant_id = $1 AND c.path IS DISTINCT FROM
                   CASE WHEN c.parent_id IS NULL THEN c.id::text::ltree
                        ELSE p.path || c.id::text END",
        ),
        (
            "tree_sort is the parent's tree_sort, chr(30) and the sort key",
            "SELECT count(*) FROM customers c LEFT JOIN customers p
               ON p.tenant_id = c.tenant_id AND p.id = c.parent_id
             WHERE c.tenant_id = $1 AND c.tree_sort IS DISTINCT FROM
                   coalesce(p.tree_sort || chr(30), '') || c.sort_key",
        ),
        (
            "every descendant_count equals a recount of the subtree",
            "SELECT count(*) FROM customers c LEFT JOIN
               (SELECT tenant_id, a AS id, count(*) AS n
                FROM customers, unnest(customer_ancestors(path)) AS a
                WHERE tenant_id = $1 GROUP BY 1, 2) d
               ON d.tenant_id = c.tenant_id AND d.id = c.id
             WHERE c.tenant_id = $1 AND c.descendant_count <> coalesce(d.n, 0)",
        ),
        (
            "forest trees are at most LEVELS deep",
            "SELECT count(*) FROM customers WHERE tenant_id = $1 AND nlevel(path) > $2",
        ),
        (
            "numbers are the counter's format and below the counter",
            "SELECT count(*) FROM customers c JOIN tenant_counters t ON t.tenant_id = c.tenant_id
             WHERE c.tenant_id = $1 AND (c.number !~ '^C-[0-9]{6,}$'
                   OR substr(c.number, 3)::bigint > t.customer_number)",
        ),
        (
            "ids are below the sequence",
            "SELECT count(*) FROM customers
             WHERE id > (SELECT last_value FROM customers_id_seq)",
        ),
        (
            "a user's role and customer agree, and the customer is the tenant's",
            "SELECT count(*) FROM users u LEFT JOIN customers c
               ON c.tenant_id = u.tenant_id AND c.id = u.customer_id
             WHERE u.tenant_id = $1 AND ((u.role = 'CUSTOMER_USER') <> (c.id IS NOT NULL))",
        ),
        (
            "every user holds exactly its own address's claim",
            "SELECT count(*) FROM users u FULL JOIN email_claims e
               ON e.tenant_id = u.tenant_id AND e.user_id = u.id
             WHERE coalesce(u.tenant_id, e.tenant_id) = $1
               AND (e.address IS DISTINCT FROM lower(u.email) AND u.pending_email IS NULL)",
        ),
        (
            "administrators are customer users of the tenant",
            "SELECT count(*) FROM customer_administrators a LEFT JOIN users u
               ON u.tenant_id = a.tenant_id AND u.id = a.user_id
             WHERE a.tenant_id = $1 AND u.role IS DISTINCT FROM 'CUSTOMER_USER'",
        ),
    ];
    for (what, sql) in checks {
        let broken: i64 = sqlx::query_scalar(sql)
            .bind(tenant)
            .bind(LEVELS as i32)
            .fetch_one(pool)
            .await
            .with_context(|| what.to_string())?;
        if broken > 0 {
            bail!("seed invariant broken for {broken} rows: {what}");
        }
    }
    let (customers, numbers, users, administrators): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM customers WHERE tenant_id = $1),
                (SELECT count(DISTINCT number) FROM customers WHERE tenant_id = $1),
                (SELECT count(*) FROM users WHERE tenant_id = $1),
                (SELECT count(*) FROM customer_administrators WHERE tenant_id = $1)",
    )
    .bind(tenant)
    .fetch_one(pool)
    .await?;
    ensure!(customers >= shape.customers(), "{customers} customers");
    ensure!(numbers == customers, "{numbers} numbers for {customers}");
    ensure!(users > shape.users, "{users} users");
    ensure!(administrators > 0, "no customer administrators");
    let big: i64 = sqlx::query_scalar(
        "SELECT count(*) - 1 FROM customers c JOIN customers r ON c.path <@ r.path
         WHERE r.tenant_id = $1 AND r.title = 'Big Root' AND c.tenant_id = $1",
    )
    .bind(tenant)
    .fetch_one(pool)
    .await?;
    ensure!(big == big_subtree(), "the big root has {big} descendants");
    Ok(())
}
