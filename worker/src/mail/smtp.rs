//! SMTP over a small pool of connections with TCP_NODELAY set. lettre's own
//! pool cannot set it, and without it every message waits for a delayed
//! ACK (tens of milliseconds on loopback); lettre accepts a socket we open.
//!
//! The socket is secured as `SMTP_URL` says: `smtps://` speaks TLS from the
//! first byte; `smtp://` upgrades with STARTTLS when the server offers it,
//! and insists on it when the URL carries credentials or `?tls=required`.
//! Credentials (PLAIN or LOGIN) are only ever sent over TLS, and never
//! appear in logs or in a job's `lastError`.

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use anyhow::{Context, Result};
use lettre::Message;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, AsyncTokioStream, Certificate, CertificateStore, TlsParameters,
};
use lettre::transport::smtp::extension::ClientId;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::SendError;

/// No SMTP step may take longer than this.
const STEP_TIMEOUT: Duration = Duration::from_secs(15);

/// What lettre may authenticate with, in order of preference.
const MECHANISMS: &[Mechanism] = &[Mechanism::Plain, Mechanism::Login];

/// How the connection to the SMTP server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Security {
    /// `smtps://`: TLS from the first byte.
    Implicit,
    /// `smtp://`: STARTTLS when the server offers it; when `required`, no
    /// message (and no credential) goes out without it.
    StartTls { required: bool },
    /// `smtp://…?tls=none`: never TLS, for a relay on the same host.
    Plain,
}

/// `SMTP_URL`, read. Not `Debug`: it holds the password.
struct Target {
    host: url::Host<String>,
    port: u16,
    security: Security,
    /// User and password, percent-decoded.
    credentials: Option<(String, String)>,
    /// The URL as logs may show it.
    redacted: String,
}

/// What a TLS session needs, prepared once.
struct Tls {
    /// For STARTTLS, which lettre drives on its connection.
    starttls: TlsParameters,
    /// For implicit TLS, which we start on our own socket.
    connector: TlsConnector,
    server_name: ServerName<'static>,
}

pub struct SmtpPool {
    addr: String,
    hello: ClientId,
    security: Security,
    /// None with `Security::Plain`.
    tls: Option<Tls>,
    credentials: Option<Credentials>,
    max_idle: usize,
    idle: Mutex<Vec<AsyncSmtpConnection>>,
}

impl SmtpPool {
    /// From `SMTP_URL` (see `parse`), trusting the system's root
    /// certificates and those in `ca_file`.
    pub fn from_url(url: &str, ca_file: Option<&Path>, max_idle: usize) -> Result<Self> {
        let target = parse(url)?;
        let domain = match &target.host {
            url::Host::Domain(name) => name.clone(),
            url::Host::Ipv4(ip) => ip.to_string(),
            url::Host::Ipv6(ip) => ip.to_string(),
        };
        let tls = match target.security {
            Security::Plain => None,
            _ => Some(Tls::new(domain, &trusted_roots(ca_file)?)?),
        };
        tracing::info!(
            server = %target.redacted,
            security = ?target.security,
            authenticated = target.credentials.is_some(),
            "sending mail over SMTP"
        );
        Ok(Self {
            addr: format!("{}:{}", target.host, target.port),
            hello: ClientId::Domain("canopy".to_owned()),
            security: target.security,
            tls,
            credentials: target
                .credentials
                .map(|(user, password)| Credentials::new(user, password)),
            max_idle,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// A new connection, secured and authenticated as configured. Its
    /// failures say nothing about the message, so each is transient: once
    /// the server, its certificate or the credentials are put right, the
    /// retries go through.
    async fn connect(&self) -> Result<AsyncSmtpConnection, SendError> {
        let tcp = self.reach().await?;
        tcp.set_nodelay(true)
            .map_err(|e| SendError::Transient(format!("cannot configure the SMTP socket: {e}")))?;
        let stream: Box<dyn AsyncTokioStream> = match (&self.tls, self.security) {
            (Some(tls), Security::Implicit) => {
                let handshake = tls.connector.connect(tls.server_name.clone(), tcp);
                let stream = within(
                    "the TLS handshake with the SMTP server timed out",
                    handshake,
                )
                .await?
                .map_err(|e| handshake_failed(&e))?;
                Box::new(TlsSocket(stream))
            }
            _ => Box::new(tcp),
        };
        let mut conn = within(
            "the SMTP server did not greet in time",
            AsyncSmtpConnection::connect_with_transport(stream, &self.hello),
        )
        .await?
        .map_err(|e| SendError::Transient(cause(&e)))?;
        if let (Some(tls), Security::StartTls { required }) = (&self.tls, self.security) {
            if conn.can_starttls() {
                within(
                    "the SMTP server did not finish STARTTLS in time",
                    conn.starttls(tls.starttls.clone(), &self.hello),
                )
                .await?
                .map_err(|e| starttls_failed(&e))?;
            } else if required {
                conn.abort().await;
                return Err(SendError::Transient(
                    "the SMTP server does not offer STARTTLS, which SMTP_URL requires \
                     (it carries credentials or ?tls=required); nothing was sent"
                        .into(),
                ));
            }
        }
        if let Some(credentials) = &self.credentials {
            // Over TLS by now: with credentials, `parse` made it required.
            if conn.server_info().get_auth_mechanism(MECHANISMS).is_none() {
                conn.abort().await;
                return Err(SendError::Transient(
                    "the SMTP server offers no authentication Canopy can use (PLAIN or LOGIN)"
                        .into(),
                ));
            }
            within(
                "the SMTP server did not answer the authentication in time",
                conn.auth(MECHANISMS, credentials),
            )
            .await?
            .map_err(|e| auth_failed(&e))?;
        }
        Ok(conn)
    }

    /// A TCP connection to the server; failing, the server is unreachable
    /// (not a verdict on any message).
    async fn reach(&self) -> Result<TcpStream, SendError> {
        tokio::time::timeout(STEP_TIMEOUT, TcpStream::connect(&self.addr))
            .await
            .map_err(|_| SendError::Unreachable("timed out connecting to the SMTP server".into()))?
            .map_err(|e| SendError::Unreachable(format!("cannot connect to the SMTP server: {e}")))
    }

    /// Whether the server accepts connections again.
    pub async fn probe(&self) -> Result<(), SendError> {
        self.reach().await.map(drop)
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

/// Reads `SMTP_URL`:
/// - `smtps://[user:password@]host[:port]`: implicit TLS, port 465;
/// - `smtp://[user:password@]host[:port]`: port 25, STARTTLS when offered,
///   required with credentials or `?tls=required`;
/// - `smtp://host[:port]?tls=none`: never TLS (refused with credentials).
///
/// Its errors never quote the URL, which may hold a password.
fn parse(url: &str) -> Result<Target> {
    let parsed = url::Url::parse(url).map_err(|e| anyhow::anyhow!("SMTP_URL is not a URL: {e}"))?;
    let implicit = match parsed.scheme() {
        "smtps" => true,
        "smtp" => false,
        other => anyhow::bail!("SMTP_URL must start with smtp:// or smtps://, not {other}://"),
    };
    let host = parsed.host().context("SMTP_URL names no host")?.to_owned();
    let port = parsed.port().unwrap_or(if implicit { 465 } else { 25 });
    let credentials = match (parsed.username(), parsed.password()) {
        ("", None) => None,
        (user, Some(password)) if !user.is_empty() => Some((decode(user)?, decode(password)?)),
        _ => anyhow::bail!("SMTP_URL must carry both a user and a password, or neither"),
    };
    let mut tls = None;
    for (key, value) in parsed.query_pairs() {
        anyhow::ensure!(
            key == "tls" && tls.is_none(),
            "SMTP_URL takes one parameter, tls (required or none)"
        );
        tls = Some(value.into_owned());
    }
    let security = match (implicit, tls.as_deref()) {
        (true, None | Some("required")) => Security::Implicit,
        (true, Some(_)) => anyhow::bail!("smtps:// is always TLS: drop ?tls= from SMTP_URL"),
        (false, None) => Security::StartTls {
            required: credentials.is_some(),
        },
        (false, Some("required")) => Security::StartTls { required: true },
        (false, Some("none")) if credentials.is_some() => {
            anyhow::bail!(
                "SMTP_URL carries credentials with ?tls=none: they are never sent in clear"
            )
        }
        (false, Some("none")) => Security::Plain,
        (false, Some(_)) => anyhow::bail!("SMTP_URL's tls must be required or none"),
    };
    let mut shown = parsed.clone();
    if credentials.is_some() {
        // Both halves: a user name is often the half that identifies an API key.
        let _ = shown.set_username("***");
        let _ = shown.set_password(Some("***"));
    }
    Ok(Target {
        host,
        port,
        security,
        credentials,
        redacted: shown.to_string(),
    })
}

fn decode(part: &str) -> Result<String> {
    percent_encoding::percent_decode_str(part)
        .decode_utf8()
        .map(|text| text.into_owned())
        .map_err(|_| anyhow::anyhow!("SMTP_URL's user or password is not UTF-8 once decoded"))
}

/// The certificates trusted for the SMTP server: the system's (which
/// honour `SSL_CERT_FILE` and `SSL_CERT_DIR`) and those in `ca_file`.
fn trusted_roots(ca_file: Option<&Path>) -> Result<Vec<CertificateDer<'static>>> {
    let system = rustls_native_certs::load_native_certs();
    for error in &system.errors {
        tracing::warn!(%error, "cannot read the system's root certificates");
    }
    let mut roots = system.certs;
    if let Some(path) = ca_file {
        let pem = std::fs::read(path)
            .with_context(|| format!("cannot read SMTP_CA_FILE {}", path.display()))?;
        let certs = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow::anyhow!("SMTP_CA_FILE {} is not PEM: {e}", path.display()))?;
        anyhow::ensure!(
            !certs.is_empty(),
            "SMTP_CA_FILE {} holds no certificate",
            path.display()
        );
        roots.extend(certs);
    }
    if roots.is_empty() {
        tracing::warn!("no root certificate is trusted: TLS to the SMTP server will fail");
    }
    Ok(roots)
}

impl Tls {
    /// The same roots for both ways into TLS; ring as the crypto provider,
    /// chosen here rather than left to a process-wide default.
    fn new(domain: String, roots: &[CertificateDer<'static>]) -> Result<Self> {
        let mut store = RootCertStore::empty();
        let mut starttls =
            TlsParameters::builder(domain.clone()).certificate_store(CertificateStore::None);
        for root in roots {
            // A system certificate rustls cannot use is skipped, not fatal.
            if store.add(root.clone()).is_ok() {
                starttls = starttls.add_root_certificate(Certificate::from_der(root.to_vec())?);
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(store)
            .with_no_client_auth();
        Ok(Self {
            starttls: starttls.build_rustls()?,
            connector: TlsConnector::from(Arc::new(config)),
            server_name: ServerName::try_from(domain)
                .context("SMTP_URL's host is not a valid TLS server name")?,
        })
    }
}

/// Our implicit-TLS stream, driven by lettre as if it were a plain socket.
#[derive(Debug)]
struct TlsSocket(TlsStream<TcpStream>);

impl AsyncTokioStream for TlsSocket {
    fn peer_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

impl AsyncRead for TlsSocket {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsSocket {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// `step`, or a transient failure saying `late` once it has taken too long.
async fn within<T>(late: &str, step: impl Future<Output = T>) -> Result<T, SendError> {
    tokio::time::timeout(STEP_TIMEOUT, step)
        .await
        .map_err(|_| SendError::Transient(late.to_owned()))
}

fn handshake_failed(error: &dyn std::error::Error) -> SendError {
    SendError::Transient(format!(
        "TLS handshake with the SMTP server failed: {}",
        first_line(&error.to_string())
    ))
}

fn starttls_failed(error: &lettre::transport::smtp::Error) -> SendError {
    match (error.status(), std::error::Error::source(error)) {
        (Some(_), _) => SendError::Transient(format!(
            "the SMTP server refused STARTTLS: {}",
            cause(error)
        )),
        // lettre wraps the handshake's own error: say that one.
        (None, Some(source)) => handshake_failed(source),
        (None, None) => handshake_failed(error),
    }
}

fn auth_failed(error: &lettre::transport::smtp::Error) -> SendError {
    let what = match error.status() {
        Some(_) => "the SMTP server refused the credentials",
        None => "authenticating with the SMTP server failed",
    };
    SendError::Transient(format!("{what}: {}", cause(error)))
}

/// 5xx replies are permanent; everything else (4xx, I/O) may pass.
fn classify(error: lettre::transport::smtp::Error) -> SendError {
    if error.is_permanent() {
        SendError::Permanent(cause(&error))
    } else {
        SendError::Transient(cause(&error))
    }
}

/// An error as `lastError` shows it: the reply code and its first line,
/// addresses masked.
fn cause(error: &lettre::transport::smtp::Error) -> String {
    match error.status() {
        Some(code) => format!(
            "SMTP {}: {}",
            u16::from(code),
            first_line(&error.to_string())
        ),
        None => first_line(&error.to_string()),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn security(url: &str) -> Security {
        parse(url).map(|t| t.security).unwrap()
    }

    #[test]
    fn schemes_choose_the_port_and_the_tls() {
        let plain = parse("smtp://mail.example.com").unwrap();
        assert_eq!(plain.port, 25);
        assert_eq!(plain.security, Security::StartTls { required: false });
        assert!(plain.credentials.is_none());
        let implicit = parse("smtps://mail.example.com").unwrap();
        assert_eq!(implicit.port, 465);
        assert_eq!(implicit.security, Security::Implicit);
        assert_eq!(parse("smtp://127.0.0.1:2525").unwrap().port, 2525);
        assert_eq!(
            security("smtp://mail.example.com?tls=required"),
            Security::StartTls { required: true }
        );
        assert_eq!(security("smtp://127.0.0.1:25?tls=none"), Security::Plain);
        assert_eq!(
            security("smtps://mail.example.com:2465?tls=required"),
            Security::Implicit
        );
    }

    #[test]
    fn credentials_are_decoded_and_require_tls() {
        let target =
            parse("smtp://mailer%40example.com:p%40ss%3Aw%20rd@mail.example.com:587").unwrap();
        let (user, password) = target.credentials.unwrap();
        assert_eq!(user, "mailer@example.com");
        assert_eq!(password, "p@ss:w rd");
        assert_eq!(target.security, Security::StartTls { required: true });
        assert_eq!(target.redacted, "smtp://***:***@mail.example.com:587");
        assert_eq!(security("smtps://u:p@mail.example.com"), Security::Implicit);
    }

    #[test]
    fn bad_urls_are_refused_without_quoting_the_password() {
        for bad in [
            "http://u:hunter2@mail.example.com",
            "smtp://u:hunter2@mail.example.com?tls=none",
            "smtp://u:hunter2@mail.example.com?tls=sometimes",
            "smtp://u:hunter2@mail.example.com?tls=required&x=1",
            "smtps://u:hunter2@mail.example.com?tls=none",
            "smtp://u@mail.example.com",
            "smtp://:hunter2@mail.example.com",
            "smtp://u:hunter2@",
            "smtp://u:hunter2@mail.example.com:99999",
        ] {
            let message = format!("{:#}", parse(bad).err().expect(bad));
            assert!(message.contains("SMTP_URL"), "{bad}: {message}");
            assert!(!message.contains("hunter2"), "{bad}: {message}");
        }
    }

    #[test]
    fn a_ca_file_must_hold_certificates() {
        let dir = std::env::temp_dir().join(format!("canopy-ca-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let error = trusted_roots(Some(&empty)).unwrap_err().to_string();
        assert!(error.contains("holds no certificate"), "{error}");
        let missing = trusted_roots(Some(&dir.join("missing.pem")))
            .unwrap_err()
            .to_string();
        assert!(missing.contains("cannot read SMTP_CA_FILE"), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
