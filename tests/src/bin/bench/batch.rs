//! Batches against single calls: users created per second by `createUsers`
//! of `users` users at once, and by as many single `createUser` calls
//! from 8 clients, all with invitations, beside the machine's floor (a
//! user and a job inserted through the store in one transaction, from 8
//! tasks).

use std::time::{Duration, Instant};

use anyhow::Result;
use canopy_core::id::{CustomerId, TenantId};
use serde_json::{Value, json};

use crate::{floors, pipeline};

const CLIENTS: usize = 8;
/// Batches timed, after one to warm up.
const ROUNDS: usize = 5;

const INVITE_MANY: &str = "mutation($inputs: [CreateUserInput!]!) {
    createUsers(inputs: $inputs) { succeeded failed } }";

pub async fn run() -> Result<()> {
    let users: usize = super::mode_argument(1000)?;
    let super::Fresh {
        pool,
        config,
        queue,
        bench,
        customer,
    } = super::fresh_served("canopy_bench_batch", None).await?;

    // Single calls from 8 clients.
    let began = Instant::now();
    pipeline::invite(&bench, &customer, "single", users, None).await?;
    let single = users as f64 / began.elapsed().as_secs_f64();

    // One batch at a time.
    let mut rates = Vec::new();
    for round in 0..=ROUNDS {
        let inputs: Vec<Value> = (0..users)
            .map(|n| {
                json!({ "customerId": customer, "email": format!("batch{round}-{n}@bench.test"),
                        "activation": "SEND_ACTIVATION_EMAIL" })
            })
            .collect();
        let began = Instant::now();
        let answer = bench.data(INVITE_MANY, json!({ "inputs": inputs })).await?;
        let elapsed = began.elapsed();
        anyhow::ensure!(
            answer["createUsers"]["succeeded"] == json!(users),
            "the batch made {answer}"
        );
        if round > 0 {
            rates.push(users as f64 / elapsed.as_secs_f64());
        }
    }
    rates.sort_by(f64::total_cmp);
    let batch = rates[rates.len() / 2];

    let tenant_id = TenantId(
        sqlx::query_scalar("SELECT min(id) FROM tenants")
            .fetch_one(&pool)
            .await?,
    );
    let customer_id = CustomerId(
        sqlx::query_scalar("SELECT min(id) FROM customers")
            .fetch_one(&pool)
            .await?,
    );
    let floor = floors::user_and_job(
        &pool,
        tenant_id,
        customer_id,
        CLIENTS,
        Duration::from_secs(5),
    )
    .await?
    .per_second();
    println!("users with an invitation, created per second ({users} each way):");
    println!(
        "  createUser, {CLIENTS} clients:        {single:>8.0}/s  ({:.0} % of the floor)",
        100.0 * single / floor
    );
    println!(
        "  createUsers of {users}, one client: {batch:>8.0}/s  ({:.0} % of the floor; median of {ROUNDS} batches, {:.0} ms each)",
        100.0 * batch / floor,
        1000.0 * users as f64 / batch
    );
    println!("  floor: a user and a job inserted through the store, {CLIENTS} tasks: {floor:.0}/s");
    super::forget_queue(&config.redis_url, &queue).await
}
