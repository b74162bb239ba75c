//! Webhook deliveries: workers take due deliveries (leased, so one whose
//! worker dies is sent again: at least once), POST each event signed as
//! Standard Webhooks specifies, and record status, latency and error. A
//! failed attempt is retried with exponential backoff until
//! `CANOPY_WEBHOOK_MAX_ATTEMPTS`; an endpoint failing
//! `CANOPY_WEBHOOK_DISABLE_AFTER` times in a row is disabled and the
//! tenant's administrators are told.
//!
//! Requests go only to the registered URL, with a timeout and no
//! redirects; a host that resolves to a private, loopback or link-local
//! address is refused when connecting, whatever it resolved to at
//! registration (unless `CANOPY_WEBHOOK_ALLOW_PRIVATE`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use canopy_core::config::Config;
use canopy_core::events;
use canopy_core::id::TenantId;
use canopy_core::jobs::Notice;
use canopy_core::secrets::Keyring;
use canopy_core::store::jobs::{Notification, notify_administrators};
use canopy_core::store::webhooks::{self, Attempt, Due};
use rand::Rng;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use sqlx::PgPool;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Deliveries one worker sends at once.
const AT_ONCE: usize = 16;
/// Of those, at most this many to one endpoint.
const PER_ENDPOINT: usize = 2;
/// How long a taken delivery is the worker's: past it, another sends it.
const LEASE: Duration = Duration::from_secs(60);
/// How long a receiver may take to answer.
const TIMEOUT: Duration = Duration::from_secs(5);
/// How often to look for due deliveries when none were.
const IDLE: Duration = Duration::from_millis(250);

pub async fn run(
    pool: PgPool,
    config: Arc<Config>,
    keyring: Arc<Keyring>,
    shutdown: CancellationToken,
) {
    let client = match client(config.webhook_allow_private) {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "cannot build the webhook client; no webhook is sent");
            return;
        }
    };
    // Each delivery is sent on its own as a slot frees (no batch waits for
    // its slowest receiver), and one endpoint holds at most
    // `PER_ENDPOINT` slots: a slow receiver delays its own deliveries only.
    let slots = Arc::new(Semaphore::new(AT_ONCE));
    let sending: Arc<Mutex<HashMap<(TenantId, i64), usize>>> = Arc::default();
    while !shutdown.is_cancelled() {
        let free = slots.available_permits();
        let busy: Vec<i64> = sending
            .lock()
            .expect("sending")
            .iter()
            .filter(|(_, n)| **n >= PER_ENDPOINT)
            .map(|((_, endpoint), _)| *endpoint)
            .collect();
        let due = if free == 0 {
            Vec::new()
        } else {
            webhooks::take_due(&pool, free as i64, PER_ENDPOINT as i64, LEASE, &busy)
                .await
                .unwrap_or_else(|error| {
                    tracing::warn!(%error, "cannot take webhook deliveries");
                    Vec::new()
                })
        };
        let idle = due.is_empty();
        for due in due {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                break;
            };
            let key = (due.tenant_id, due.endpoint_id);
            *sending.lock().expect("sending").entry(key).or_default() += 1;
            let (pool, config, keyring, client) = (
                pool.clone(),
                config.clone(),
                keyring.clone(),
                client.clone(),
            );
            let sending = sending.clone();
            tokio::spawn(async move {
                send(&pool, &config, &keyring, &client, due).await;
                let mut sending = sending.lock().expect("sending");
                if let Some(n) = sending.get_mut(&key) {
                    *n -= 1;
                    if *n == 0 {
                        sending.remove(&key);
                    }
                }
                drop(slot);
            });
        }
        if idle {
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(IDLE) => {}
            }
        }
    }
    // Sends under way finish (each within its timeout).
    let _ = slots.acquire_many(AT_ONCE as u32).await;
}

fn client(allow_private: bool) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .user_agent("Canopy-Webhooks/1")
        // A proxy would resolve the receiver itself, past `PublicOnly`.
        .no_proxy()
        .dns_resolver(Arc::new(PublicOnly { allow_private }))
        .build()
}

/// Resolves a receiver's host and keeps only public addresses (all, when
/// private ones are allowed): a name that points inside is refused at
/// connect time, not only when it was registered.
struct PublicOnly {
    allow_private: bool,
}

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0))
                .await?
                .filter(|a| allow_private || events::is_public(a.ip()))
                .collect();
            if found.is_empty() {
                return Err("the host resolves to no public address".into());
            }
            let addrs: Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}

/// The wait before attempt `attempts + 1`: exponential from 1 s, at most
/// an hour, with ±25 % jitter.
fn backoff(attempts: i32) -> Duration {
    let base = 2f64.powi(attempts.clamp(1, 20) - 1);
    let jitter = rand::rng().random_range(0.75..1.25);
    Duration::from_secs_f64(base.min(3600.0) * jitter)
}

async fn send(
    pool: &PgPool,
    config: &Config,
    keyring: &Keyring,
    client: &reqwest::Client,
    due: Due,
) {
    let began = Instant::now();
    let result = post(keyring, client, &due, config.webhook_allow_private).await;
    let latency_ms = i32::try_from(began.elapsed().as_millis()).unwrap_or(i32::MAX);
    let recorded = match result {
        Ok(status) if (200..300).contains(&status) => {
            let attempt = Attempt {
                status: Some(i32::from(status)),
                latency_ms,
                error: None,
            };
            webhooks::delivered(pool, &due, &attempt).await
        }
        outcome => {
            let (status, error) = match outcome {
                Ok(status) => (
                    Some(i32::from(status)),
                    format!("the receiver answered {status}"),
                ),
                Err(error) => (None, error),
            };
            let attempt = Attempt {
                status,
                latency_ms,
                error: Some(&error),
            };
            failed(pool, config, &due, &attempt).await
        }
    };
    if let Err(error) = recorded {
        tracing::warn!(%error, delivery = due.id, "cannot record a webhook delivery");
    }
}

async fn failed(
    pool: &PgPool,
    config: &Config,
    due: &Due,
    attempt: &Attempt<'_>,
) -> sqlx::Result<()> {
    let retry_at = (due.attempts < config.webhook_max_attempts).then(|| {
        chrono::Utc::now() + chrono::Duration::from_std(backoff(due.attempts)).unwrap_or_default()
    });
    let reason = format!(
        "{} deliveries failed in a row; the last: {}",
        config.webhook_disable_after,
        attempt.error.unwrap_or("no answer")
    );
    let mut tx = pool.begin().await?;
    let disabled = webhooks::failed(
        &mut tx,
        due,
        attempt,
        retry_at,
        config.webhook_disable_after,
        &reason,
    )
    .await?;
    if disabled {
        tracing::warn!(
            endpoint = due.endpoint_id,
            "webhook endpoint disabled after failing in a row"
        );
        let label = canopy_core::id::global("WebhookEndpoint", due.endpoint_id);
        notify_administrators(
            &mut tx,
            Notification {
                tenant_id: due.tenant_id,
                customer_id: None,
                notice: Notice::WebhookDisabled,
                subject_user_id: None,
                subject_label: &label,
                actor_user_id: None,
                fall_back_to_tenant_admins: true,
                max_attempts: config.job_max_attempts,
            },
        )
        .await?;
    }
    tx.commit().await?;
    match retry_at {
        Some(_) => tracing::info!(
            delivery = due.id,
            attempt = due.attempts,
            error = attempt.error,
            "webhook delivery failed; will retry"
        ),
        None => tracing::warn!(
            delivery = due.id,
            attempt = due.attempts,
            error = attempt.error,
            "webhook delivery failed; given up"
        ),
    }
    Ok(())
}

/// Posts the event, signed; answers the receiver's status, or why none
/// came.
async fn post(
    keyring: &Keyring,
    client: &reqwest::Client,
    due: &Due,
    allow_private: bool,
) -> Result<u16, String> {
    let url = url::Url::parse(&due.url).map_err(|e| format!("the URL is not valid: {e}"))?;
    // An address in the URL is not resolved: judge it here.
    if let Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)) = url.host()
        && !allow_private
    {
        let ip: std::net::IpAddr = url
            .host_str()
            .unwrap_or_default()
            .trim_matches(|c| c == '[' || c == ']')
            .parse()
            .map_err(|_| "the URL's address is not valid".to_owned())?;
        if !events::is_public(ip) {
            return Err("the URL's address is private, loopback or link-local".to_owned());
        }
    }
    let secret = events::rebuilt_secret(
        keyring,
        &due.secret_id,
        due.tenant_id,
        due.endpoint_id,
        due.generation,
    )
    .ok_or("the server secret the endpoint's secret was made under is no longer known")?;
    let id = canopy_core::id::global("Event", due.event_id);
    let body = serde_json::json!({
        "type": due.event_type.as_str(),
        "timestamp": due.event_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "data": due.data.0,
    })
    .to_string();
    let timestamp = chrono::Utc::now().timestamp();
    let signature = standardwebhooks::Webhook::new(&secret)
        .and_then(|webhook| webhook.sign(&id, timestamp, body.as_bytes()))
        .map_err(|e| format!("cannot sign: {e}"))?;
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .header(standardwebhooks::HEADER_WEBHOOK_ID, &id)
        .header(
            standardwebhooks::HEADER_WEBHOOK_TIMESTAMP,
            timestamp.to_string(),
        )
        .header(standardwebhooks::HEADER_WEBHOOK_SIGNATURE, signature)
        .body(body)
        .send()
        .await
        .map_err(|e| describe(&e))?;
    Ok(response.status().as_u16())
}

/// Why a request got no answer, as a class only: not the URL (its query
/// may hold a token of the receiver's), nor the low-level cause (refused,
/// reset, TLS), which would make deliveries a port scanner.
fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "the receiver did not answer in time"
    } else if error.is_connect() {
        "cannot connect to the receiver"
    } else {
        "the request failed"
    }
    .to_owned()
}
