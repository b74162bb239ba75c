//! Configuration from the environment, each value with a working local default
//! (see the table in README.md).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use anyhow::{Context, Result};

/// `CANOPY_PUBLIC_URL`, or by default the address canopy-api serves (a
/// wildcard address as `localhost`).
fn public_url_or_served(value: &str, addr: &str) -> Result<url::Url> {
    let value = if value.is_empty() {
        let served: SocketAddr = addr
            .parse()
            .with_context(|| format!("CANOPY_ADDR is not an address: {addr}"))?;
        if served.ip().is_unspecified() {
            format!("http://localhost:{}", served.port())
        } else {
            format!("http://{served}")
        }
    } else {
        value.trim_end_matches('/').to_owned()
    };
    let url = url::Url::parse(&value)
        .ok()
        .filter(|u| {
            matches!(u.scheme(), "http" | "https")
                && u.host().is_some()
                && u.path() == "/"
                && u.query().is_none()
                && u.fragment().is_none()
                && u.username().is_empty()
                && u.password().is_none()
        })
        .with_context(|| {
            format!(
                "CANOPY_PUBLIC_URL must be an http(s) origin, without path, query or \
                 fragment, such as https://accounts.example.com: {value}"
            )
        })?;
    Ok(url)
}

/// The shortest server secret accepted: 256 bits.
pub const MIN_SECRET_BYTES: usize = 32;

#[derive(Clone, Debug)]
pub struct Config {
    pub database_url: String,
    pub redis_url: String,
    /// Prefix of every Redis key.
    pub queue: String,
    pub addr: SocketAddr,
    /// Where people reach Canopy (`CANOPY_PUBLIC_URL`): the base of the
    /// account pages, and so of the links in the emails of a tenant
    /// without a portal of its own. No trailing slash.
    pub public_url: url::Url,
    pub embedded_worker: bool,
    /// Whether webhooks may go to private, loopback and link-local
    /// addresses and over plain http (`CANOPY_WEBHOOK_ALLOW_PRIVATE`, for
    /// tests and closed networks; off by default).
    pub webhook_allow_private: bool,
    /// Attempts of one webhook delivery before it is given up
    /// (`CANOPY_WEBHOOK_MAX_ATTEMPTS`).
    pub webhook_max_attempts: i32,
    /// Failed deliveries in a row that disable an endpoint
    /// (`CANOPY_WEBHOOK_DISABLE_AFTER`).
    pub webhook_disable_after: i32,
    /// Events older than this are pruned (`CANOPY_EVENT_RETENTION_DAYS`).
    pub event_retention: std::time::Duration,
    /// May hold credentials: never log it as it is.
    pub smtp_url: Option<String>,
    /// PEM certificates trusted for the SMTP server besides the system's
    /// roots (`SMTP_CA_FILE`), for a relay under a private CA.
    pub smtp_ca_file: Option<PathBuf>,
    pub mail_dir: PathBuf,
    /// `CANOPY_SECRET`; unset, the installation's generated secret (kept in
    /// the database) is used: see `secrets::Keyring::load`.
    pub secret: Option<Secret>,
    /// `CANOPY_SECRET_PREVIOUS`: the secret being rotated out, kept until
    /// the links it made have expired.
    pub previous_secret: Option<Secret>,
    pub mail_from: String,
    /// Attempts before a job is KILLED (`CANOPY_JOB_MAX_ATTEMPTS`).
    pub job_max_attempts: i32,
    /// How long a dispatched or running job may stay silent before the relay
    /// hands it out again (`CANOPY_JOB_LEASE_SECONDS`).
    pub job_lease: std::time::Duration,
    /// Jobs one worker process runs at once (`CANOPY_WORKER_CONCURRENCY`).
    pub worker_concurrency: usize,
    /// Where `canopy-worker` serves /healthz, /readyz and /metrics
    /// (`CANOPY_WORKER_ADDR`).
    pub worker_addr: WorkerAddr,
    /// DONE jobs older than this are pruned (`CANOPY_JOB_RETENTION_DAYS`).
    pub job_retention: std::time::Duration,
    /// Audit entries older than this are pruned
    /// (`CANOPY_AUDIT_RETENTION_DAYS`).
    pub audit_retention: std::time::Duration,
    /// How often callers may act (`CANOPY_LIMIT_*`).
    pub limits: RateLimits,
    /// Proxies whose `X-Forwarded-For` names the client
    /// (`CANOPY_TRUSTED_PROXIES`, comma-separated addresses).
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// How long a GraphQL request may take (`CANOPY_REQUEST_TIMEOUT_MS`).
    pub request_timeout: std::time::Duration,
    /// GraphQL requests served at once; more are shed with 503
    /// (`CANOPY_MAX_IN_FLIGHT`).
    pub max_in_flight: usize,
    /// Browser origins allowed to call the API (`CANOPY_CORS_ORIGINS`,
    /// comma-separated; none by default).
    pub cors_origins: Vec<String>,
    /// Whether GET /graphql serves GraphiQL (`CANOPY_GRAPHIQL`).
    pub graphiql: bool,
    /// Whether the schema answers introspection (`CANOPY_INTROSPECTION`).
    pub introspection: bool,
    /// Where /metrics, /healthz and /readyz are served instead of
    /// `CANOPY_ADDR` (`CANOPY_OPS_ADDR`; unset: with the API).
    pub ops_addr: Option<SocketAddr>,
}

/// Where `canopy-worker` serves /healthz, /readyz and /metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkerAddr {
    /// `CANOPY_WORKER_ADDR` names it: there or nowhere, since the
    /// operator's probes look there.
    Explicit(SocketAddr),
    /// Unset: [`WorkerAddr::DEFAULT`] while it is free, else a free port on
    /// the same host, so any number of workers start on one host.
    Default,
}

impl WorkerAddr {
    pub const DEFAULT: SocketAddr =
        SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 9091);
}

/// So many events per period, refilling evenly (a GCRA quota): `burst`
/// at once at most, then one every `period / burst`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Quota {
    pub burst: u32,
    pub period: std::time::Duration,
}

impl Quota {
    /// `"<count>/<seconds>"`, e.g. `"5/60"`.
    pub fn parse(value: &str) -> Option<Quota> {
        let (count, seconds) = value.trim().split_once('/')?;
        let burst: u32 = count.trim().parse().ok().filter(|n| *n >= 1)?;
        let seconds: u64 = seconds
            .trim()
            .parse()
            .ok()
            .filter(|s| (1..=86_400).contains(s))?;
        Some(Quota {
            burst,
            period: std::time::Duration::from_secs(seconds),
        })
    }
}

/// The rate limits, each a [`Quota`] per key (see README "Rate limits").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimits {
    /// Sign-in attempts per client address and target email address.
    pub login_client_address: Quota,
    /// Sign-in attempts per target email address, from anywhere.
    pub login_address: Quota,
    /// Public account mutations per client address, all together.
    pub public_client: Quota,
    /// Emails an anonymous flow may cause to one address (password
    /// resets, sign-up attempts).
    pub email_address: Quota,
    /// Operation cost per API key or session.
    pub caller: Quota,
}

impl RateLimits {
    /// The environment variables and their defaults.
    pub const SETTINGS: [(&'static str, &'static str); 5] = [
        ("CANOPY_LIMIT_LOGIN_CLIENT_ADDRESS", "5/60"),
        ("CANOPY_LIMIT_LOGIN_ADDRESS", "20/60"),
        ("CANOPY_LIMIT_PUBLIC_CLIENT", "30/60"),
        ("CANOPY_LIMIT_EMAIL_ADDRESS", "3/3600"),
        ("CANOPY_LIMIT_CALLER", "600000/60"),
    ];

    fn from_lookup(lookup: &impl Fn(&str) -> Option<String>) -> Result<Self> {
        let quota = |index: usize| -> Result<Quota> {
            let (name, default) = Self::SETTINGS[index];
            let value = lookup(name)
                .filter(|v| !v.trim().is_empty())
                .unwrap_or_else(|| default.to_owned());
            Quota::parse(&value).with_context(|| {
                format!("{name} must be <count>/<seconds> (1 to 86400 seconds): {value}")
            })
        };
        Ok(Self {
            login_client_address: quota(0)?,
            login_address: quota(1)?,
            public_client: quota(2)?,
            email_address: quota(3)?,
            caller: quota(4)?,
        })
    }
}

/// A count from 1 to 1,000.
fn count(name: &str, value: &str) -> Result<i32> {
    value
        .parse::<i32>()
        .ok()
        .filter(|n| (1..=1000).contains(n))
        .with_context(|| format!("{name} must be a whole number from 1 to 1000: {value}"))
}

/// A whole number of days, at least one (and at most a hundred years).
fn days(name: &str, value: &str) -> Result<std::time::Duration> {
    value
        .parse::<u64>()
        .ok()
        .filter(|days| (1..=36_500).contains(days))
        .map(|days| std::time::Duration::from_secs(days * 86_400))
        .with_context(|| format!("{name} must be a whole number of days: {value}"))
}

/// The server secret; its `Debug` never prints it.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup`, so tests can supply values
    /// without touching the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let get = |name: &str, default: &str| {
            lookup(name)
                .filter(|value| !value.trim().is_empty())
                .unwrap_or_else(|| default.to_owned())
        };
        let addr = get("CANOPY_ADDR", "127.0.0.1:8080");
        let public_url = get("CANOPY_PUBLIC_URL", "");
        let embedded_worker = get("CANOPY_EMBEDDED_WORKER", "true");
        let webhook_private = get("CANOPY_WEBHOOK_ALLOW_PRIVATE", "false");
        let webhook_attempts = get("CANOPY_WEBHOOK_MAX_ATTEMPTS", "10");
        let webhook_disable = get("CANOPY_WEBHOOK_DISABLE_AFTER", "50");
        let event_retention = get("CANOPY_EVENT_RETENTION_DAYS", "30");
        let max_attempts = get(
            "CANOPY_JOB_MAX_ATTEMPTS",
            &crate::jobs::DEFAULT_MAX_ATTEMPTS.to_string(),
        );
        let secret = server_secret(&lookup, "CANOPY_SECRET")?;
        let previous_secret = server_secret(&lookup, "CANOPY_SECRET_PREVIOUS")?;
        let worker_addr = get("CANOPY_WORKER_ADDR", "");
        let retention = get("CANOPY_JOB_RETENTION_DAYS", "30");
        let audit_retention = get("CANOPY_AUDIT_RETENTION_DAYS", "365");
        let lease = get("CANOPY_JOB_LEASE_SECONDS", "60");
        let concurrency = get("CANOPY_WORKER_CONCURRENCY", "8");
        let proxies = get("CANOPY_TRUSTED_PROXIES", "");
        let timeout = get("CANOPY_REQUEST_TIMEOUT_MS", "30000");
        let graphiql = get("CANOPY_GRAPHIQL", "true");
        let introspection = get("CANOPY_INTROSPECTION", "true");
        let ops_addr = get("CANOPY_OPS_ADDR", "");
        let in_flight = get("CANOPY_MAX_IN_FLIGHT", "256");
        Ok(Self {
            cors_origins: get("CANOPY_CORS_ORIGINS", "")
                .split(',')
                .map(str::trim)
                .filter(|o| !o.is_empty())
                .map(|origin| {
                    let url = url::Url::parse(origin).ok().filter(|u| {
                        matches!(u.scheme(), "http" | "https")
                            && u.host().is_some()
                            && origin == u.origin().ascii_serialization()
                    });
                    url.map(|_| origin.to_owned()).with_context(|| {
                        format!(
                            "CANOPY_CORS_ORIGINS holds {origin:?}: each must be an origin such as \
                             https://app.example.com (no wildcard, path or trailing slash)"
                        )
                    })
                })
                .collect::<Result<_>>()?,
            graphiql: parse_bool(&graphiql)
                .with_context(|| format!("CANOPY_GRAPHIQL is not a boolean: {graphiql}"))?,
            introspection: parse_bool(&introspection).with_context(|| {
                format!("CANOPY_INTROSPECTION is not a boolean: {introspection}")
            })?,
            ops_addr: match ops_addr.as_str() {
                "" => None,
                addr => Some(
                    addr.parse()
                        .with_context(|| format!("CANOPY_OPS_ADDR is not an address: {addr}"))?,
                ),
            },
            request_timeout: timeout
                .parse::<u64>()
                .ok()
                .filter(|ms| (1..=600_000).contains(ms))
                .map(std::time::Duration::from_millis)
                .with_context(|| {
                    format!("CANOPY_REQUEST_TIMEOUT_MS must be 1 to 600000: {timeout}")
                })?,
            max_in_flight: in_flight
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=100_000).contains(n))
                .with_context(|| {
                    format!("CANOPY_MAX_IN_FLIGHT must be 1 to 100000: {in_flight}")
                })?,
            limits: RateLimits::from_lookup(&lookup)?,
            trusted_proxies: proxies
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| {
                    p.parse()
                        .with_context(|| format!("CANOPY_TRUSTED_PROXIES holds a non-address: {p}"))
                })
                .collect::<Result<_>>()?,
            worker_addr: match worker_addr.as_str() {
                "" => WorkerAddr::Default,
                addr => WorkerAddr::Explicit(
                    addr.parse()
                        .with_context(|| format!("CANOPY_WORKER_ADDR is not an address: {addr}"))?,
                ),
            },
            job_retention: days("CANOPY_JOB_RETENTION_DAYS", &retention)?,
            audit_retention: days("CANOPY_AUDIT_RETENTION_DAYS", &audit_retention)?,
            job_lease: lease
                .parse::<u64>()
                .ok()
                .filter(|s| *s >= 1)
                .map(std::time::Duration::from_secs)
                .with_context(|| {
                    format!("CANOPY_JOB_LEASE_SECONDS must be a whole number of seconds: {lease}")
                })?,
            worker_concurrency: concurrency
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=256).contains(n))
                .with_context(|| {
                    format!("CANOPY_WORKER_CONCURRENCY must be 1 to 256: {concurrency}")
                })?,
            database_url: get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/canopy"),
            redis_url: get("REDIS_URL", "redis://127.0.0.1:6379"),
            queue: get("CANOPY_QUEUE", "canopy"),
            public_url: public_url_or_served(&public_url, &addr)?,
            addr: addr
                .parse()
                .with_context(|| format!("CANOPY_ADDR is not an address: {addr}"))?,
            webhook_allow_private: parse_bool(&webhook_private).with_context(|| {
                format!("CANOPY_WEBHOOK_ALLOW_PRIVATE is not a boolean: {webhook_private}")
            })?,
            webhook_max_attempts: count("CANOPY_WEBHOOK_MAX_ATTEMPTS", &webhook_attempts)?,
            webhook_disable_after: count("CANOPY_WEBHOOK_DISABLE_AFTER", &webhook_disable)?,
            event_retention: days("CANOPY_EVENT_RETENTION_DAYS", &event_retention)?,
            embedded_worker: parse_bool(&embedded_worker).with_context(|| {
                format!("CANOPY_EMBEDDED_WORKER is not a boolean: {embedded_worker}")
            })?,
            smtp_url: lookup("SMTP_URL").filter(|s| !s.trim().is_empty()),
            smtp_ca_file: lookup("SMTP_CA_FILE")
                .filter(|s| !s.trim().is_empty())
                .map(PathBuf::from),
            mail_dir: PathBuf::from(get("CANOPY_MAIL_DIR", "./mail")),
            secret,
            previous_secret,
            mail_from: get("CANOPY_MAIL_FROM", "Canopy <no-reply@localhost>"),
            job_max_attempts: max_attempts
                .parse()
                .ok()
                .filter(|n| (1..=100).contains(n))
                .with_context(|| {
                    format!("CANOPY_JOB_MAX_ATTEMPTS must be 1 to 100: {max_attempts}")
                })?,
        })
    }
}

/// A server secret from the environment: unset or blank is none; shorter
/// than 256 bits is refused, so no installation runs on a guessable one.
fn server_secret(lookup: &impl Fn(&str) -> Option<String>, name: &str) -> Result<Option<Secret>> {
    match lookup(name).filter(|value| !value.is_empty()) {
        None => Ok(None),
        Some(value) if value.len() < MIN_SECRET_BYTES => anyhow::bail!(
            "{name} must be at least {MIN_SECRET_BYTES} bytes (it has {}); \
             generate one with `openssl rand -base64 32`, or leave it unset to have \
             Canopy generate one and keep it in the database",
            value.len()
        ),
        Some(value) => Ok(Some(Secret::new(value))),
    }
}

fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_url_defaults_to_the_address_served_and_must_be_plain() {
        let config = Config::from_lookup(|_| None).unwrap();
        assert_eq!(config.public_url.as_str(), "http://127.0.0.1:8080/");
        let anywhere =
            Config::from_lookup(|name| (name == "CANOPY_ADDR").then(|| "0.0.0.0:9000".to_owned()))
                .unwrap();
        assert_eq!(anywhere.public_url.as_str(), "http://localhost:9000/");
        let set = |value: &'static str| {
            Config::from_lookup(move |name| (name == "CANOPY_PUBLIC_URL").then(|| value.to_owned()))
        };
        assert_eq!(
            set("https://accounts.example.com/")
                .unwrap()
                .public_url
                .as_str(),
            "https://accounts.example.com/"
        );
        for bad in [
            "https://x.example/canopy",
            "ftp://x.example",
            "https://x.example/?a=1",
            "nonsense",
            "https://u:p@x.example",
        ] {
            let error = set(bad).unwrap_err().to_string();
            assert!(error.contains("CANOPY_PUBLIC_URL"), "{bad}: {error}");
        }
    }

    #[test]
    fn defaults_work_locally() {
        let config = Config::from_lookup(|_| None).unwrap();
        assert_eq!(
            config.database_url,
            "postgres://postgres@127.0.0.1:5432/canopy"
        );
        assert_eq!(config.redis_url, "redis://127.0.0.1:6379");
        assert_eq!(config.queue, "canopy");
        assert_eq!(config.addr.to_string(), "127.0.0.1:8080");
        assert!(config.embedded_worker);
        assert!(config.smtp_url.is_none());
        assert!(config.smtp_ca_file.is_none());
        assert_eq!(config.mail_dir, PathBuf::from("./mail"));
        assert_eq!(config.mail_from, "Canopy <no-reply@localhost>");
        assert_eq!(config.worker_addr, WorkerAddr::Default);
        assert_eq!(WorkerAddr::DEFAULT.to_string(), "127.0.0.1:9091");
    }

    #[test]
    fn a_worker_address_set_is_explicit() {
        let config =
            Config::from_lookup(|n| (n == "CANOPY_WORKER_ADDR").then(|| "127.0.0.1:9091".into()))
                .unwrap();
        assert_eq!(
            config.worker_addr,
            WorkerAddr::Explicit(WorkerAddr::DEFAULT),
            "even the default address, once named, is explicit"
        );
        let blank = Config::from_lookup(|n| (n == "CANOPY_WORKER_ADDR").then(|| " ".into()));
        assert_eq!(blank.unwrap().worker_addr, WorkerAddr::Default);
        let bad = Config::from_lookup(|n| (n == "CANOPY_WORKER_ADDR").then(|| "9091".into()));
        assert!(
            bad.unwrap_err()
                .to_string()
                .contains("CANOPY_WORKER_ADDR is not an address")
        );
    }

    #[test]
    fn values_override_defaults_and_bad_ones_are_refused() {
        let config = Config::from_lookup(|name| match name {
            "CANOPY_EMBEDDED_WORKER" => Some("false".into()),
            "CANOPY_ADDR" => Some("0.0.0.0:9000".into()),
            _ => None,
        })
        .unwrap();
        assert!(!config.embedded_worker);
        assert_eq!(config.addr.port(), 9000);

        let bad = Config::from_lookup(|name| (name == "CANOPY_ADDR").then(|| "nowhere".into()));
        assert!(bad.unwrap_err().to_string().contains("CANOPY_ADDR"));
    }

    #[test]
    fn limits_have_defaults_and_take_settings() {
        let config = Config::from_lookup(|_| None).unwrap();
        assert_eq!(
            config.limits.login_client_address,
            Quota::parse("5/60").unwrap()
        );
        assert!(config.trusted_proxies.is_empty());
        let config = Config::from_lookup(|name| match name {
            "CANOPY_LIMIT_CALLER" => Some("100/10".into()),
            "CANOPY_TRUSTED_PROXIES" => Some("10.0.0.1, ::1".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(
            config.limits.caller,
            Quota {
                burst: 100,
                period: std::time::Duration::from_secs(10)
            }
        );
        assert_eq!(config.trusted_proxies.len(), 2);
        for bad in ["5", "0/60", "5/0", "x/60", "5/100000"] {
            let refused =
                Config::from_lookup(|n| (n == "CANOPY_LIMIT_LOGIN_ADDRESS").then(|| bad.into()));
            assert!(
                refused
                    .unwrap_err()
                    .to_string()
                    .contains("CANOPY_LIMIT_LOGIN_ADDRESS"),
                "{bad}"
            );
        }
    }

    #[test]
    fn cors_origins_are_exact_origins() {
        let ok = Config::from_lookup(|n| {
            (n == "CANOPY_CORS_ORIGINS")
                .then(|| "https://app.example, http://localhost:3000".into())
        })
        .unwrap();
        assert_eq!(ok.cors_origins.len(), 2);
        for bad in [
            "*",
            "https://app.example/",
            "app.example",
            "https://app.example/x",
        ] {
            let refused = Config::from_lookup(|n| (n == "CANOPY_CORS_ORIGINS").then(|| bad.into()));
            assert!(refused.is_err(), "{bad}");
        }
    }

    #[test]
    fn a_short_secret_is_refused_and_none_is_generated_later() {
        assert!(Config::from_lookup(|_| None).unwrap().secret.is_none());
        for name in ["CANOPY_SECRET", "CANOPY_SECRET_PREVIOUS"] {
            let short = Config::from_lookup(|n| (n == name).then(|| "x".repeat(31)));
            let message = short.unwrap_err().to_string();
            assert!(
                message.contains(name) && message.contains("32 bytes"),
                "{message}"
            );
        }
        let long = Config::from_lookup(|n| (n == "CANOPY_SECRET").then(|| "x".repeat(32))).unwrap();
        assert_eq!(long.secret.unwrap().expose(), "x".repeat(32).as_bytes());
    }
}
