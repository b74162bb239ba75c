//! Rate limits shared by every api process: each limit is a GCRA quota
//! per key, kept in Redis by one atomic script (as go-redis/redis_rate and
//! redis-cell do), under the installation's `CANOPY_QUEUE` prefix. When
//! Redis cannot be reached in time, each process falls back to an
//! in-process limiter (`governor`) with the same quotas: never to no limit.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use governor::RateLimiter;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;

use canopy_core::config::{Config, Quota, RateLimits};

use crate::redis_link::{REDIS_TIMEOUT, RedisLink};

/// Keys one in-process limiter keeps before forgetting those back to full.
const MAX_LOCAL_KEYS: usize = 100_000;

/// The GCRA step in Redis, atomic per key, in microseconds (exact in
/// Lua's doubles for centuries). Time is Redis's own, so every process
/// agrees. Answers {allowed, remaining, retry_after_us, reset_after_us}.
const GCRA: &str = r"
local burst = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local capacity = interval * burst
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then tat = now end
local new_tat = tat + interval * cost
local allow_at = new_tat - capacity
if allow_at > now then
  return {0, math.floor((capacity - (tat - now)) / interval), allow_at - now, tat - now}
end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.max(1, math.ceil((new_tat - now) / 1000)))
return {1, math.floor((now - allow_at) / interval), 0, new_tat - now}
";

/// The script with its digest, computed once.
static GCRA_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(GCRA));

/// Which limit a check counts against: its quota and its name in keys and
/// metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Limit {
    LoginClientAddress,
    LoginAddress,
    PublicClient,
    EmailAddress,
    Caller,
}

impl Limit {
    pub fn name(self) -> &'static str {
        match self {
            Limit::LoginClientAddress => "login_client_address",
            Limit::LoginAddress => "login_address",
            Limit::PublicClient => "public_client",
            Limit::EmailAddress => "email_address",
            Limit::Caller => "caller",
        }
    }

    pub fn quota(self, limits: &RateLimits) -> Quota {
        match self {
            Limit::LoginClientAddress => limits.login_client_address,
            Limit::LoginAddress => limits.login_address,
            Limit::PublicClient => limits.public_client,
            Limit::EmailAddress => limits.email_address,
            Limit::Caller => limits.caller,
        }
    }
}

/// A check's answer, for the caller and the RateLimit headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    pub quota: Quota,
    /// What may still be spent now.
    pub remaining: u32,
    /// When a refused check could succeed.
    pub retry_after: Duration,
    /// When the whole quota is available again.
    pub reset_after: Duration,
}

type Local =
    RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

pub struct Limiter {
    limits: RateLimits,
    prefix: String,
    redis: Arc<RedisLink>,
    /// One in-process limiter per limit and quota (keys may have their own).
    local: Mutex<HashMap<(Limit, Quota), Arc<Local>>>,
}

impl Limiter {
    pub fn new(config: &Config, redis: Arc<RedisLink>) -> Self {
        Self {
            limits: config.limits,
            prefix: format!("{}:limits", config.queue),
            redis,
            local: Mutex::new(HashMap::new()),
        }
    }

    pub fn quota(&self, limit: Limit) -> Quota {
        limit.quota(&self.limits)
    }

    /// Spends `cost` of `limit` for `key`. A cost beyond the whole quota
    /// is charged as the whole quota, so a large operation can still pass
    /// when nothing else was spent.
    pub async fn check(&self, limit: Limit, key: &str, cost: u32) -> Verdict {
        self.check_with(limit, self.quota(limit), key, cost).await
    }

    /// As `check`, with a quota of the key's own (an API key's budget).
    pub async fn check_with(&self, limit: Limit, quota: Quota, key: &str, cost: u32) -> Verdict {
        let cost = cost.clamp(1, quota.burst);
        let key = format!("{}:{}:{key}", self.prefix, limit.name());
        let verdict =
            match tokio::time::timeout(REDIS_TIMEOUT, self.in_redis(&key, quota, cost)).await {
                Ok(Ok(verdict)) => verdict,
                Ok(Err(error)) => {
                    tracing::warn!(%error, "rate limits fall back to this process: Redis refused");
                    self.in_process(limit, key, quota, cost)
                }
                Err(_) => {
                    tracing::warn!("rate limits fall back to this process: Redis is slow");
                    self.in_process(limit, key, quota, cost)
                }
            };
        let used = 1.0 - f64::from(verdict.remaining) / f64::from(quota.burst);
        metrics::histogram!("canopy_rate_limit_used_ratio", "limit" => limit.name()).record(used);
        if !verdict.allowed {
            metrics::counter!("canopy_rate_limited_total", "limit" => limit.name()).increment(1);
        }
        verdict
    }

    async fn in_redis(&self, key: &str, quota: Quota, cost: u32) -> redis::RedisResult<Verdict> {
        let mut conn = self.redis.conn().await?;
        let interval = interval_us(quota);
        let (allowed, remaining, retry_us, reset_us): (i64, i64, i64, i64) = GCRA_SCRIPT
            .key(key)
            .arg(quota.burst)
            .arg(interval)
            .arg(cost)
            .invoke_async(&mut conn)
            .await?;
        Ok(Verdict {
            allowed: allowed == 1,
            quota,
            remaining: u32::try_from(remaining.max(0)).unwrap_or(u32::MAX),
            retry_after: Duration::from_micros(retry_us.max(0) as u64),
            reset_after: Duration::from_micros(reset_us.max(0) as u64),
        })
    }

    fn in_process(&self, limit: Limit, key: String, quota: Quota, cost: u32) -> Verdict {
        let limiter = {
            let mut local = self.local.lock().expect("limiter map");
            local
                .entry((limit, quota))
                .or_insert_with(|| {
                    let per_cell = Duration::from_micros(interval_us(quota));
                    let burst = NonZeroU32::new(quota.burst).expect("a quota of at least 1");
                    let governed = governor::Quota::with_period(per_cell)
                        .expect("a positive period")
                        .allow_burst(burst);
                    Arc::new(
                        RateLimiter::keyed(governed)
                            .with_middleware::<StateInformationMiddleware>(),
                    )
                })
                .clone()
        };
        // Keys chosen by callers must not pile up while Redis is away.
        if limiter.len() > MAX_LOCAL_KEYS {
            limiter.retain_recent();
        }
        let cost = NonZeroU32::new(cost).expect("a cost of at least 1");
        let per_cell = Duration::from_micros(interval_us(quota));
        match limiter.check_key_n(&key, cost) {
            Ok(Ok(state)) => {
                let remaining = state.remaining_burst_capacity();
                Verdict {
                    allowed: true,
                    quota,
                    remaining,
                    retry_after: Duration::ZERO,
                    reset_after: per_cell * (quota.burst - remaining),
                }
            }
            Ok(Err(not_until)) => Verdict {
                allowed: false,
                quota,
                remaining: 0,
                retry_after: not_until.wait_time_from(DefaultClock::default().now()),
                reset_after: quota.period,
            },
            Err(_) => Verdict {
                allowed: false,
                quota,
                remaining: 0,
                retry_after: quota.period,
                reset_after: quota.period,
            },
        }
    }
}

/// Microseconds between two events of a quota (a quota's period is at most
/// a day, so this is exact to the microsecond for any burst).
fn interval_us(quota: Quota) -> u64 {
    (quota.period.as_micros() as u64 / u64::from(quota.burst)).max(1)
}

/// The client's address: the socket's, or, when the socket is a trusted
/// proxy, the nearest `X-Forwarded-For` hop that is not a trusted proxy
/// itself. `forwarded_for` holds every line of that header, in order; a
/// client can write entries only to the left of what its proxies add, and
/// the walk stops at the first entry that is not an address (falling back
/// to the last trusted hop) rather than reading past it.
pub fn client_address(
    socket: Option<IpAddr>,
    forwarded_for: &[&str],
    trusted: &[IpAddr],
) -> Option<IpAddr> {
    let socket = socket?.to_canonical();
    if !trusted.contains(&socket) {
        return Some(socket);
    }
    let mut client = socket;
    let hops: Vec<&str> = forwarded_for
        .iter()
        .flat_map(|line| line.split(','))
        .collect();
    for hop in hops.into_iter().rev() {
        let Ok(hop) = hop.trim().parse::<IpAddr>().map(|ip| ip.to_canonical()) else {
            break;
        };
        client = hop;
        if !trusted.contains(&hop) {
            break;
        }
    }
    Some(client)
}

/// The key a client address is limited under: the address itself, or for
/// IPv6 its /64, which one subscriber usually holds whole.
pub fn client_key(client: Option<IpAddr>) -> String {
    match client {
        None => "unknown".to_owned(),
        Some(IpAddr::V4(ip)) => ip.to_string(),
        Some(IpAddr::V6(ip)) => {
            let s = ip.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_trusted_proxies_name_the_client() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let client: IpAddr = "203.0.113.7".parse().unwrap();
        let forged = ["1.2.3.4, 203.0.113.7"];
        assert_eq!(
            client_address(Some(client), &forged, &[proxy]),
            Some(client)
        );
        assert_eq!(
            client_address(Some(proxy), &forged, &[proxy]),
            Some(client),
            "the hop the proxy added, not the one the client wrote"
        );
        assert_eq!(client_address(Some(proxy), &[], &[proxy]), Some(proxy));
        assert_eq!(client_address(None, &forged, &[proxy]), None);
        // The proxy's own line comes last; a client's line before it.
        assert_eq!(
            client_address(Some(proxy), &["6.6.6.6", "203.0.113.7"], &[proxy]),
            Some(client)
        );
        // An entry that is no address ends the walk: nothing left of it counts.
        assert_eq!(
            client_address(Some(proxy), &["6.6.6.6, unknown, 10.0.0.1"], &[proxy]),
            Some(proxy)
        );
        // An IPv4 proxy seen on a dual-stack socket is still that proxy.
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(
            client_address(Some(mapped), &forged, &[proxy]),
            Some(client)
        );
    }

    #[test]
    fn ipv6_clients_are_limited_by_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        assert_eq!(client_key(Some(a)), client_key(Some(b)));
        assert_eq!(client_key(Some("192.0.2.1".parse().unwrap())), "192.0.2.1");
    }

    #[test]
    fn intervals_keep_their_precision() {
        assert_eq!(interval_us(Quota::parse("600000/60").unwrap()), 100);
        assert_eq!(interval_us(Quota::parse("5/60").unwrap()), 12_000_000);
    }
}
