use anyhow::Result;
use serde_json::json;

/// jobQueue over a ledger of a million rows (by default) in one tenant.
pub async fn run() -> Result<()> {
    let rows: i64 = super::mode_argument(1_000_000)?;
    let url = "postgres://postgres@127.0.0.1:5432/canopy_bench_jobs";
    let pool = super::fresh_database(url).await?;
    let config = std::sync::Arc::new(canopy_core::config::Config::from_lookup(
        |name| match name {
            "CANOPY_EMBEDDED_WORKER" => Some("false".into()),
            "CANOPY_SECRET" => Some("canopy-benchmark-secret-0123456789".into()),
            "CANOPY_LIMIT_CALLER" => Some(canopy_tests::GENEROUS_LIMIT.into()),
            _ => None,
        },
    )?);
    let tenant = super::bench_tenant(&pool, &config).await?;
    let tenant_id = canopy_api::ids::decode(&tenant.tenant_id).unwrap().1;
    let started = std::time::Instant::now();
    // Mostly DONE, as a ledger is; some of every other state. Loaded in
    // bulk with the counting triggers off, then counted as the migration
    // does.
    sqlx::query("ALTER TABLE jobs DISABLE TRIGGER USER")
        .execute(&pool)
        .await?;
    sqlx::query(
        "INSERT INTO jobs (tenant_id, kind, state, payload, recipient, max_attempts, attempts)
         SELECT $1,
                (ARRAY['EMAIL_VALIDATION','INVITATION','ADMIN_NOTIFICATION','PASSWORD_RESET'])[1 + g % 4],
                CASE WHEN g % 100 = 0 THEN 'KILLED' WHEN g % 100 = 1 THEN 'FAILED'
                     WHEN g % 100 = 2 THEN 'PENDING' WHEN g % 100 = 3 THEN 'AWAITING_DISPATCH'
                     ELSE 'DONE' END,
                '{}'::jsonb, 'user' || g || '@bench.test', 8, 1
         FROM generate_series(1, $2::bigint) g",
    )
    .bind(tenant_id)
    .bind(rows)
    .execute(&pool)
    .await?;
    sqlx::query("ALTER TABLE jobs ENABLE TRIGGER USER")
        .execute(&pool)
        .await?;
    sqlx::query(
        "INSERT INTO job_counts (tenant_id, kind, state, count)
         SELECT tenant_id, kind, state, count(*) FROM jobs GROUP BY tenant_id, kind, state",
    )
    .execute(&pool)
    .await?;
    // A busy hour of throughput: every minute, kind and shard has its row,
    // as many as the per-minute counts ever hold for a tenant.
    sqlx::query(
        "INSERT INTO job_minutes (tenant_id, minute, kind, shard, done, retried, killed)
         SELECT $1, date_trunc('minute', now()) - make_interval(mins => m), k, s, 500, 5, 1
         FROM generate_series(0, 59) m,
              unnest(ARRAY['EMAIL_VALIDATION','INVITATION','ADMIN_NOTIFICATION',
                           'PASSWORD_RESET','ACCOUNT_NOTICE']) k,
              generate_series(0, 7) s",
    )
    .bind(tenant_id)
    .execute(&pool)
    .await?;
    sqlx::query("VACUUM ANALYZE jobs").execute(&pool).await?;
    sqlx::query("VACUUM ANALYZE job_minutes")
        .execute(&pool)
        .await?;
    println!(
        "seeded {rows} job rows in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let bench = super::serve(&pool, config.clone(), tenant.api_key).await?;
    println!(
        "\n| operation | mean ms | p50 ms | p95 ms | p99 ms |\n| --- | --- | --- | --- | --- |"
    );
    bench
        .time(
            "jobQueue: counts per kind and state, active workers",
            "{ jobQueue { activeWorkers kinds { kind awaitingDispatch pending running done failed killed } } }",
            &json!({}),
        )
        .await?;
    bench
        .time(
            "jobQueue as the console reads it every 2 s: counts, pauses, throughput of the last hour, workers",
            "{ jobQueue { activeWorkers kinds { kind awaitingDispatch pending running done failed killed
               paused { at } throughput { minute done retried killed } }
               workers { id startedAt lastHeartbeatAt active } } }",
            &json!({}),
        )
        .await?;
    bench
        .time(
            "jobQueue.jobs(recipient: …, first: 20) + totalCount",
            "{ jobQueue { jobs(recipient: \"USER777777@bench.test\", first: 20) { totalCount nodes { id state } } } }",
            &json!({}),
        )
        .await?;
    bench
        .time(
            "jobQueue.jobs(state: KILLED, first: 20) + totalCount",
            "{ jobQueue { jobs(state: KILLED, first: 20) { totalCount nodes { id kind lastError } } } }",
            &json!({}),
        )
        .await?;
    bench
        .time(
            "jobQueue.jobs(kind: INVITATION, first: 20), newest first",
            "{ jobQueue { jobs(kind: INVITATION, first: 20) { nodes { id state } } } }",
            &json!({}),
        )
        .await?;
    Ok(())
}
