//! Sending email: over SMTP when `SMTP_URL` is set, else as `.eml` files
//! in `CANOPY_MAIL_DIR`. Either way one job is one message with a stable
//! Message-ID, so a retried send is recognisably the same message.

pub mod smtp;
pub mod templates;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use canopy_core::config::Config;
use lettre::Message;
use lettre::message::{Mailbox, MultiPart};
use tokio_util::sync::CancellationToken;

/// A rendered email for one recipient.
#[derive(Debug, Clone)]
pub struct Email {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// Without the angle brackets.
    pub message_id: String,
}

/// Why a send failed, and whether trying again may help.
#[derive(Debug, Clone)]
pub enum SendError {
    /// The server cannot be reached (refused or timed-out connections):
    /// says nothing about the message, so it costs the job no attempt.
    Unreachable(String),
    /// 4xx replies, timeouts within a conversation.
    Transient(String),
    /// 5xx replies, an address that cannot be written.
    Permanent(String),
}

/// Whether the mail server was last seen unreachable. While it is, workers
/// claim no job: each waits, and one of them probes the server about once a
/// second, so they resume within a second of its return and no attempt is
/// spent on a server that is not there.
#[derive(Default)]
pub struct Reachability {
    down: AtomicBool,
    /// Held by the one waiter probing, through its pause.
    probing: tokio::sync::Mutex<()>,
}

/// How often a waiting worker probes an unreachable mail server.
const PROBE_EVERY: Duration = Duration::from_secs(1);

impl Reachability {
    pub fn unreachable(&self) {
        if !self.down.swap(true, Ordering::AcqRel) {
            tracing::warn!(
                "the mail server cannot be reached; waiting for it before claiming jobs"
            );
        }
    }

    /// Waits until the server is (seen) reachable; false when `stop` came
    /// first.
    pub async fn wait(&self, mailer: &Mailer, stop: &CancellationToken) -> bool {
        while self.down.load(Ordering::Acquire) {
            let _probing = tokio::select! {
                guard = self.probing.lock() => guard,
                () = stop.cancelled() => return false,
            };
            if !self.down.load(Ordering::Acquire) {
                break;
            }
            let probed = tokio::select! {
                probed = mailer.probe() => probed,
                () = stop.cancelled() => return false,
            };
            if probed.is_ok() {
                self.down.store(false, Ordering::Release);
                tracing::info!("the mail server answers again; sending");
                break;
            }
            tokio::select! {
                () = tokio::time::sleep(PROBE_EVERY) => {}
                () = stop.cancelled() => return false,
            }
        }
        true
    }
}

pub enum Mailer {
    Smtp(smtp::SmtpPool),
    Files(PathBuf),
}

impl Mailer {
    pub fn from_config(config: &Config) -> Result<Self> {
        match &config.smtp_url {
            Some(url) => Ok(Mailer::Smtp(smtp::SmtpPool::from_url(
                url,
                config.smtp_ca_file.as_deref(),
                config.worker_concurrency,
            )?)),
            None => {
                std::fs::create_dir_all(&config.mail_dir).with_context(|| {
                    format!(
                        "cannot create CANOPY_MAIL_DIR {}",
                        config.mail_dir.display()
                    )
                })?;
                Ok(Mailer::Files(config.mail_dir.clone()))
            }
        }
    }

    /// Whether sending can be tried again: the SMTP server accepts
    /// connections (files can always be written).
    pub async fn probe(&self) -> Result<(), SendError> {
        match self {
            Mailer::Smtp(pool) => pool.probe().await,
            Mailer::Files(_) => Ok(()),
        }
    }

    pub async fn send(&self, from: &Mailbox, email: &Email) -> Result<(), SendError> {
        let message = build(from, email)?;
        match self {
            Mailer::Smtp(pool) => pool.send(&message).await,
            Mailer::Files(dir) => {
                // Named after the Message-ID: a retry rewrites the same file.
                let path = dir.join(format!("{}.eml", email.message_id.replace(['@', '/'], "_")));
                tokio::fs::write(&path, message.formatted())
                    .await
                    .map_err(|e| {
                        SendError::Transient(format!("cannot write {}: {e}", path.display()))
                    })
            }
        }
    }
}

fn build(from: &Mailbox, email: &Email) -> Result<Message, SendError> {
    let to: Mailbox = email
        .to
        .parse()
        .map_err(|e| SendError::Permanent(format!("cannot address {}: {e}", mask(&email.to))))?;
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(&email.subject)
        .message_id(Some(format!("<{}>", email.message_id)))
        .header(AutoSubmitted)
        .multipart(MultiPart::alternative_plain_html(
            email.text.clone(),
            email.html.clone(),
        ))
        .map_err(|e| SendError::Permanent(format!("cannot build the message: {e}")))
}

/// `Auto-Submitted: auto-generated` (RFC 3834): a machine wrote this
/// message, so an out-of-office reply must not answer it.
#[derive(Clone, Copy, Debug)]
struct AutoSubmitted;

impl lettre::message::header::Header for AutoSubmitted {
    fn name() -> lettre::message::header::HeaderName {
        lettre::message::header::HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(AutoSubmitted)
    }

    fn display(&self) -> lettre::message::header::HeaderValue {
        lettre::message::header::HeaderValue::new(Self::name(), "auto-generated".to_owned())
    }
}

/// An address as logs may show it: `a***@example.com`.
pub fn mask(address: &str) -> String {
    match address.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_owned(),
    }
}

/// `text` with every address in it masked, for causes that reach logs and
/// the ledger (SMTP replies often quote the recipient).
pub fn mask_addresses(text: &str) -> String {
    text.split(' ')
        .map(|word| {
            if word.contains('@') {
                let trimmed = word.trim_matches(|c: char| "<>:;,()[]\"'".contains(c));
                word.replace(trimmed, &mask(trimmed))
            } else {
                word.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_masked() {
        assert_eq!(mask("ann@example.com"), "a***@example.com");
        assert_eq!(mask("nonsense"), "***");
        assert_eq!(
            mask_addresses("SMTP 550: 5.1.1 <bob@example.com>: no such user"),
            "SMTP 550: 5.1.1 <b***@example.com>: no such user"
        );
    }

    #[test]
    fn messages_are_multipart_with_our_message_id() {
        let email = Email {
            to: "ann@example.com".into(),
            subject: "Hello".into(),
            text: "plain".into(),
            html: "<p>html</p>".into(),
            message_id: "canopy-job-1-2@localhost".into(),
        };
        let from: Mailbox = "Canopy <no-reply@localhost>".parse().unwrap();
        let raw = String::from_utf8(build(&from, &email).unwrap().formatted()).unwrap();
        assert!(
            raw.contains("Message-ID: <canopy-job-1-2@localhost>"),
            "{raw}"
        );
        assert!(raw.contains("multipart/alternative"));
        assert!(raw.contains("text/plain") && raw.contains("text/html"));
        let bad = Email {
            to: "not an address".into(),
            ..email
        };
        assert!(matches!(build(&from, &bad), Err(SendError::Permanent(_))));
    }
}
