//! SMTP over a small pool of connections with TCP_NODELAY set. lettre's own
//! pool cannot set it, and without it every message waits for a delayed
//! ACK (tens of milliseconds on loopback); lettre accepts a socket we open.

use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result};
use lettre::Message;
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::extension::ClientId;
use tokio::net::TcpStream;

use super::SendError;

/// No SMTP step may take longer than this.
const STEP_TIMEOUT: Duration = Duration::from_secs(15);

pub struct SmtpPool {
    addr: String,
    hello: ClientId,
    max_idle: usize,
    idle: Mutex<Vec<AsyncSmtpConnection>>,
}

impl SmtpPool {
    /// From `smtp://host:port` (port 25 when absent); plain SMTP, no TLS.
    pub fn from_url(url: &str, max_idle: usize) -> Result<Self> {
        let parsed =
            url::Url::parse(url).with_context(|| format!("SMTP_URL is not a URL: {url}"))?;
        anyhow::ensure!(
            parsed.scheme() == "smtp",
            "SMTP_URL must start with smtp://"
        );
        let host = parsed.host_str().context("SMTP_URL names no host")?;
        let port = parsed.port().unwrap_or(25);
        Ok(Self {
            addr: format!("{host}:{port}"),
            hello: ClientId::Domain("canopy".to_owned()),
            max_idle,
            idle: Mutex::new(Vec::new()),
        })
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, SendError> {
        let tcp = tokio::time::timeout(STEP_TIMEOUT, TcpStream::connect(&self.addr))
            .await
            .map_err(|_| SendError::Transient("timed out connecting to the SMTP server".into()))?
            .map_err(|e| SendError::Transient(format!("cannot connect to the SMTP server: {e}")))?;
        tcp.set_nodelay(true)
            .map_err(|e| SendError::Transient(format!("cannot configure the SMTP socket: {e}")))?;
        tokio::time::timeout(
            STEP_TIMEOUT,
            AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello),
        )
        .await
        .map_err(|_| SendError::Transient("the SMTP server did not greet in time".into()))?
        .map_err(classify)
    }

    /// An idle connection that still answers, or a new one.
    async fn checkout(&self) -> Result<AsyncSmtpConnection, SendError> {
        loop {
            let parked = self.idle.lock().ok().and_then(|mut idle| idle.pop());
            let Some(mut conn) = parked else {
                return self.connect().await;
            };
            let alive = !conn.has_broken()
                && tokio::time::timeout(STEP_TIMEOUT, conn.test_connected())
                    .await
                    .unwrap_or(false);
            if alive {
                return Ok(conn);
            }
        }
    }

    pub async fn send(&self, message: &Message) -> Result<(), SendError> {
        let mut conn = self.checkout().await?;
        let sent = tokio::time::timeout(
            STEP_TIMEOUT,
            conn.send(message.envelope(), &message.formatted()),
        )
        .await;
        match sent {
            Ok(Ok(_)) => {
                if !conn.has_broken()
                    && let Ok(mut idle) = self.idle.lock()
                    && idle.len() < self.max_idle
                {
                    idle.push(conn);
                }
                Ok(())
            }
            // lettre has closed the connection after an error reply.
            Ok(Err(error)) => Err(classify(error)),
            // Mid-transaction: never reuse it.
            Err(_) => Err(SendError::Transient(
                "the SMTP server did not answer in time".into(),
            )),
        }
    }
}

/// 5xx replies are permanent; everything else (4xx, I/O) may pass.
fn classify(error: lettre::transport::smtp::Error) -> SendError {
    let cause = match error.status() {
        Some(code) => format!(
            "SMTP {}: {}",
            u16::from(code),
            first_line(&error.to_string())
        ),
        None => first_line(&error.to_string()),
    };
    if error.is_permanent() {
        SendError::Permanent(cause)
    } else {
        SendError::Transient(cause)
    }
}

fn first_line(text: &str) -> String {
    let line: String = text
        .lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(300)
        .collect();
    super::mask_addresses(&line)
}
