//! A real SMTP server for the tests: aiosmtpd (`tests/smtp_sink.py`),
//! started by the test on a free port. Messages are read back from the
//! files it writes, waiting for them by polling, never by a fixed sleep.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long a test waits for an email before failing.
const MAIL_TIMEOUT: Duration = Duration::from_secs(30);

pub struct SmtpSink {
    pub port: u16,
    dir: PathBuf,
    child: Child,
}

/// A message the sink received.
#[derive(Debug, Clone)]
pub struct Received {
    pub to: String,
    pub subject: String,
    pub message_id: String,
    pub text: String,
    pub html: String,
    pub raw: String,
}

impl Received {
    /// The first link in the text body.
    pub fn link(&self) -> String {
        let start = self
            .text
            .find("http")
            .unwrap_or_else(|| panic!("no link in {}", self.text));
        self.text[start..]
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned()
    }

    /// The `token` of the first link.
    pub fn token(&self) -> String {
        crate::link_token(&self.link())
    }
}

impl SmtpSink {
    pub async fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("canopy-smtp-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        let port = free_port();
        let child = spawn(port, &dir).await;
        Self { port, dir, child }
    }

    /// Stops the server: connections are refused until `restart`.
    pub async fn stop(&mut self) {
        let _ = self.child.kill().await;
    }

    /// Starts it again on the same port, keeping what it received.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.child = spawn(self.port, &self.dir).await;
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Makes the sink refuse messages with `reply` (e.g. "451 4.3.0 later"),
    /// or accept them again with `None`.
    pub fn refuse_with(&self, reply: Option<&str>) {
        std::fs::write(self.dir.join("reply"), reply.unwrap_or("")).unwrap();
    }

    /// Makes the sink wait `seconds` before answering each message.
    pub fn delay(&self, seconds: Option<f64>) {
        std::fs::write(
            self.dir.join("delay"),
            seconds.map(|s| s.to_string()).unwrap_or_default(),
        )
        .unwrap();
    }

    /// Every message received so far, in order.
    pub fn messages(&self) -> Vec<Received> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .unwrap()
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
            .collect();
        paths.sort();
        paths
            .iter()
            .map(|path| parse(&std::fs::read(path).unwrap()))
            .collect()
    }

    /// Waits for a message to `to` whose subject contains `subject`.
    pub async fn wait_for(&self, to: &str, subject: &str) -> Received {
        let started = Instant::now();
        loop {
            if let Some(found) = self
                .messages()
                .into_iter()
                .find(|m| m.to.eq_ignore_ascii_case(to) && m.subject.contains(subject))
            {
                return found;
            }
            assert!(
                started.elapsed() < MAIL_TIMEOUT,
                "no email to {to} about {subject:?}; received: {:#?}",
                self.messages()
                    .iter()
                    .map(|m| (&m.to, &m.subject))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(crate::POLL).await;
        }
    }

    /// Messages to `to`, as many as have arrived.
    pub fn messages_to(&self, to: &str) -> Vec<Received> {
        self.messages()
            .into_iter()
            .filter(|m| m.to.eq_ignore_ascii_case(to))
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `smtp_sink.py` on `port`, storing into `dir`; returns once it listens.
async fn spawn(port: u16, dir: &std::path::Path) -> Child {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/smtp_sink.py");
    let mut child = Command::new("python3")
        .arg(script)
        .arg("--port")
        .arg(port.to_string())
        .arg("--dir")
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 with aiosmtpd (pip install aiosmtpd)");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let ready = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("the SMTP sink starts in time")
        .unwrap();
    assert_eq!(
        ready.as_deref(),
        Some("ready"),
        "the SMTP sink did not start"
    );
    child
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn parse(raw: &[u8]) -> Received {
    let message = mail_parser::MessageParser::default()
        .parse(raw)
        .expect("a parsable message");
    let to = message
        .to()
        .and_then(|to| to.first())
        .and_then(|addr| addr.address())
        .unwrap_or_default()
        .to_owned();
    Received {
        to,
        subject: message.subject().unwrap_or_default().to_owned(),
        message_id: message.message_id().unwrap_or_default().to_owned(),
        text: message.body_text(0).unwrap_or_default().into_owned(),
        html: message.body_html(0).unwrap_or_default().into_owned(),
        raw: String::from_utf8_lossy(raw).into_owned(),
    }
}
