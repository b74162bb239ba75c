//! Concurrent clients over HTTP for a fixed time, each on its own
//! connection, with latencies in an HDR histogram.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use hdrhistogram::Histogram;
use serde_json::Value;

/// What one scenario measured.
pub struct Measured {
    pub requests: u64,
    pub seconds: f64,
    /// Latencies in microseconds.
    pub latencies: Histogram<u64>,
}

impl Measured {
    pub fn per_second(&self) -> f64 {
        self.requests as f64 / self.seconds
    }

    pub fn ms(&self, quantile: f64) -> f64 {
        self.latencies.value_at_quantile(quantile) as f64 / 1000.0
    }
}

/// One task's count of requests and their latencies.
pub type Tally = Result<(u64, Histogram<u64>)>;

/// Waits for every task that measured from `began`, and adds up what they
/// counted.
pub async fn gather(
    began: Instant,
    tasks: Vec<tokio::task::JoinHandle<Tally>>,
) -> Result<Measured> {
    let mut latencies = Histogram::<u64>::new(3)?;
    let mut requests = 0;
    for task in tasks {
        let (n, h) = task.await??;
        requests += n;
        latencies.add(h)?;
    }
    Ok(Measured {
        requests,
        seconds: began.elapsed().as_secs_f64(),
        latencies,
    })
}

/// Makes the body of client `client`'s `n`th request.
pub type Body = Arc<dyn Fn(usize, u64) -> Value + Send + Sync>;

/// `clients` clients, each on one connection of its own, send `body` to
/// `url` one request after another for `lasting`. Every answer must be a
/// 200 without GraphQL errors, or the run fails.
pub async fn drive(
    url: &str,
    key: Option<&str>,
    clients: usize,
    lasting: Duration,
    body: Body,
) -> Result<Measured> {
    let began = Instant::now();
    let stop = began + lasting;
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let url = url.to_owned();
            let key = key.map(str::to_owned);
            let body = body.clone();
            tokio::spawn(async move { one_client(&url, key.as_deref(), client, stop, &body).await })
        })
        .collect();
    gather(began, tasks).await
}

async fn one_client(
    url: &str,
    key: Option<&str>,
    client: usize,
    stop: Instant,
    body: &Body,
) -> Result<(u64, Histogram<u64>)> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .tcp_nodelay(true)
        .build()?;
    let mut latencies = Histogram::<u64>::new(3)?;
    let mut n = 0;
    while Instant::now() < stop {
        let payload = serde_json::to_vec(&body(client, n))?;
        let began = Instant::now();
        let mut request = http
            .post(url)
            .header("content-type", "application/json")
            .body(payload);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await?;
        let status = response.status();
        let answer = response.bytes().await?;
        let took = began.elapsed();
        if !status.is_success() || contains(&answer, b"\"errors\"") {
            bail!(
                "HTTP {status}: {}",
                String::from_utf8_lossy(&answer[..answer.len().min(500)])
            );
        }
        latencies.record(took.as_micros() as u64)?;
        n += 1;
    }
    Ok((n, latencies))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
