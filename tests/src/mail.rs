//! A real SMTP server for the tests, in the test process: the SMTP
//! protocol is `mailin`'s, the sockets are tokio's, TLS is rustls'. Each
//! test starts its own on a free port; it can refuse messages with a reply
//! of the test's choosing, answer slowly, stop and start again on the same
//! port, offer STARTTLS or speak TLS from the first byte, and demand a user
//! and password. It runs on a runtime of its own, so it answers even while
//! the test's runtime is blocked (a dropping `TestApp` waiting for the
//! worker to finish its jobs). Messages are read back by polling, never
//! after a fixed sleep.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use mailin::AuthMechanism;
use mailin::{Action, Response, Session, SessionBuilder};
use rustls::ServerConfig;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::background::Background;

pub struct SmtpSink {
    pub port: u16,
    state: Arc<Mutex<State>>,
    server: Server,
    /// Declared last: it outlives the server's tasks it runs.
    runtime: Background,
}

/// What the test set, and what the sink received.
#[derive(Default)]
struct State {
    /// A reply refusing every message (e.g. "451 4.3.0 later").
    refusal: Option<String>,
    /// How long to wait before answering each message.
    delay: Option<Duration>,
    /// The TLS offered to new connections.
    tls: Option<SinkTls>,
    /// The user and password new connections must authenticate with.
    login: Option<Login>,
    received: Vec<Delivery>,
    /// Woken at each message received.
    arrivals: Arc<tokio::sync::Notify>,
}

/// How the sink offers TLS, under the certificate of `config`.
#[derive(Clone)]
pub enum SinkTls {
    /// Plain at first, upgraded with STARTTLS (port 25 or 587 style).
    StartTls(Arc<ServerConfig>),
    /// TLS from the first byte (`smtps://`, port 465 style).
    Implicit(Arc<ServerConfig>),
}

#[derive(Clone)]
struct Login {
    user: String,
    password: String,
    mechanisms: Vec<AuthMechanism>,
}

/// A message as it arrived.
#[derive(Clone)]
struct Delivery {
    raw: Vec<u8>,
    tls: bool,
    user: Option<String>,
    accepted_at: std::time::Instant,
}

/// One run of the server: stopping it closes the listener and every
/// connection, as a stopped mail server would.
struct Server {
    stop: CancellationToken,
    /// Until it has been awaited after a stop.
    task: Option<JoinHandle<()>>,
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
    /// Whether it came over TLS.
    pub tls: bool,
    /// The user its connection authenticated as.
    pub user: Option<String>,
    /// When the server accepted it (answered its DATA).
    pub accepted_at: std::time::Instant,
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
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let runtime = Background::new("smtp-sink");
        let server = Server::spawn(&runtime, listener, state.clone());
        Self {
            port,
            state,
            server,
            runtime,
        }
    }

    /// Stops the server: connections are refused until `restart`.
    pub async fn stop(&mut self) {
        self.server.stop.cancel();
        if let Some(task) = self.server.task.take() {
            let _ = task.await;
        }
    }

    /// Starts it again on the same port, keeping what it received.
    pub async fn restart(&mut self) {
        self.stop().await;
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let listener = crate::eventually(&format!("{addr} to bind again"), async || {
            std::net::TcpListener::bind(addr)
        })
        .await;
        self.server = Server::spawn(&self.runtime, listener, self.state.clone());
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Makes the sink refuse messages with `reply` (e.g. "451 4.3.0 later"),
    /// or accept them again with `None`.
    pub fn refuse_with(&self, reply: Option<&str>) {
        self.state.lock().unwrap().refusal = reply.map(str::to_owned);
    }

    /// Makes new connections use `tls` (or none).
    pub fn offer_tls(&self, tls: Option<SinkTls>) {
        self.state.lock().unwrap().tls = tls;
    }

    /// Makes new connections authenticate as `user` with `password`, by
    /// one of `mechanisms`, before sending (only offered over TLS).
    pub fn require_login(&self, user: &str, password: &str, mechanisms: &[AuthMechanism]) {
        self.state.lock().unwrap().login = Some(Login {
            user: user.to_owned(),
            password: password.to_owned(),
            mechanisms: mechanisms.to_vec(),
        });
    }

    /// Makes the sink wait `seconds` before answering each message.
    pub fn delay(&self, seconds: Option<f64>) {
        self.state.lock().unwrap().delay = seconds.map(Duration::from_secs_f64);
    }

    /// How many messages were received so far (cheaper than `messages`).
    pub fn received(&self) -> usize {
        self.state.lock().unwrap().received.len()
    }

    /// Waits until `count` messages in all were received, however long
    /// that takes (a benchmark's backlog); tests use `wait_for`.
    pub async fn wait_for_count(&self, count: usize) {
        let arrivals = self.state.lock().unwrap().arrivals.clone();
        loop {
            let arrived = arrivals.notified();
            tokio::pin!(arrived);
            // Registered before the count is read, so no arrival is missed.
            arrived.as_mut().enable();
            if self.received() >= count {
                return;
            }
            arrived.await;
        }
    }

    /// Every message received so far, in order.
    pub fn messages(&self) -> Vec<Received> {
        let received = self.state.lock().unwrap().received.clone();
        received.iter().map(parse).collect()
    }

    /// Waits for a message to `to` whose subject contains `subject`.
    pub async fn wait_for(&self, to: &str, subject: &str) -> Received {
        let what = format!("an email to {to} about {subject:?}");
        crate::eventually(&what, async || {
            let messages = self.messages();
            let found = messages
                .iter()
                .find(|m| m.to.eq_ignore_ascii_case(to) && m.subject.contains(subject));
            found.cloned().ok_or_else(|| {
                let seen: Vec<_> = messages.iter().map(|m| (&m.to, &m.subject)).collect();
                format!("received: {seen:#?}")
            })
        })
        .await
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
        self.server.stop.cancel();
    }
}

impl Server {
    /// Serves `listener` on `runtime`.
    fn spawn(
        runtime: &Background,
        listener: std::net::TcpListener,
        state: Arc<Mutex<State>>,
    ) -> Self {
        listener.set_nonblocking(true).unwrap();
        let listener = {
            let _within = runtime.handle().enter();
            TcpListener::from_std(listener).unwrap()
        };
        let stop = CancellationToken::new();
        let task = runtime
            .handle()
            .spawn(accept(listener, state, stop.clone()));
        Self {
            stop,
            task: Some(task),
        }
    }
}

async fn accept(listener: TcpListener, state: Arc<Mutex<State>>, stop: CancellationToken) {
    loop {
        let socket = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((socket, _)) => socket,
                Err(_) => continue,
            },
        };
        let state = state.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = stop.cancelled() => {}
                _ = converse(socket, state) => {}
            }
        });
    }
}

/// One SMTP conversation: lines in, `mailin`'s replies out, in TLS when
/// the sink offers it (from the first byte, or once STARTTLS is answered).
async fn converse(socket: TcpStream, state: Arc<Mutex<State>>) -> std::io::Result<()> {
    let peer = socket.peer_addr()?.ip();
    let (tls, login) = {
        let state = state.lock().unwrap();
        (state.tls.clone(), state.login.clone())
    };
    let mut builder = SessionBuilder::new("canopy-test-sink");
    if let Some(login) = &login {
        for mechanism in &login.mechanisms {
            builder.enable_auth(mechanism.clone());
        }
    }
    if let Some(SinkTls::StartTls(_)) = tls {
        builder.enable_start_tls();
    }
    let shared = Arc::new(Mutex::new(Shared::default()));
    let collector = Collector {
        message: Vec::new(),
        login,
        shared: shared.clone(),
    };
    let mut session: Session<Collector> = builder.build(peer, collector);
    let talk = Talk {
        state: &state,
        shared: &shared,
    };
    match tls {
        Some(SinkTls::Implicit(config)) => {
            let stream = TlsAcceptor::from(config).accept(socket).await?;
            session.tls_active();
            let mut stream = BufReader::new(stream);
            reply(&mut stream, &session.greeting()).await?;
            talk.lines(&mut stream, &mut session, true).await?;
        }
        tls => {
            let mut stream = BufReader::new(socket);
            reply(&mut stream, &session.greeting()).await?;
            if talk.lines(&mut stream, &mut session, false).await? == Ended::StartTls {
                let Some(SinkTls::StartTls(config)) = tls else {
                    unreachable!("mailin offers STARTTLS only when enabled");
                };
                let stream = TlsAcceptor::from(config)
                    .accept(stream.into_inner())
                    .await?;
                session.tls_active();
                talk.lines(&mut BufReader::new(stream), &mut session, true)
                    .await?;
            }
        }
    }
    Ok(())
}

#[derive(PartialEq, Eq)]
enum Ended {
    Closed,
    StartTls,
}

struct Talk<'a> {
    state: &'a Arc<Mutex<State>>,
    shared: &'a Arc<Mutex<Shared>>,
}

impl Talk<'_> {
    /// Answers lines until the client leaves or STARTTLS is agreed. When a
    /// message's final "." arrives the sink waits the delay the test set,
    /// then keeps the message, or answers the refusal instead of `mailin`'s
    /// OK (`mailin` would stay in its data state after an error of its
    /// handler).
    async fn lines<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        stream: &mut BufReader<S>,
        session: &mut Session<Collector>,
        tls: bool,
    ) -> std::io::Result<Ended> {
        let mut line = Vec::new();
        loop {
            line.clear();
            if stream.read_until(b'\n', &mut line).await? == 0 {
                return Ok(Ended::Closed);
            }
            let mut response = session.process(&line);
            let (message, user) = {
                let mut shared = self.shared.lock().unwrap();
                (shared.finished.take(), shared.user.clone())
            };
            if let Some(raw) = message {
                let delay = self.state.lock().unwrap().delay;
                if let Some(delay) = delay {
                    tokio::time::sleep(delay).await;
                }
                let mut state = self.state.lock().unwrap();
                match &state.refusal {
                    Some(refusal) => response = refused(refusal),
                    None => {
                        state.received.push(Delivery {
                            raw,
                            tls,
                            user,
                            accepted_at: std::time::Instant::now(),
                        });
                        state.arrivals.notify_waiters();
                    }
                }
            }
            match response.action {
                Action::NoReply => {}
                Action::Reply => reply(stream, &response).await?,
                Action::UpgradeTls => {
                    reply(stream, &response).await?;
                    return Ok(Ended::StartTls);
                }
                Action::Close => {
                    reply(stream, &response).await?;
                    return Ok(Ended::Closed);
                }
            }
        }
    }
}

/// A reply such as "451 4.3.0 later" as a response.
fn refused(reply: &str) -> Response {
    let (code, text) = reply.split_once(' ').unwrap_or((reply, ""));
    Response::custom(code.parse().expect("a reply code"), text.to_owned())
}

async fn reply<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut BufReader<S>,
    response: &Response,
) -> std::io::Result<()> {
    stream.write_all(&response.buffer()?).await?;
    stream.flush().await
}

/// Collects each message and hands it to the conversation when it ends;
/// checks the user and password.
struct Collector {
    message: Vec<u8>,
    login: Option<Login>,
    shared: Arc<Mutex<Shared>>,
}

/// What the handler tells the conversation.
#[derive(Default)]
struct Shared {
    finished: Option<Vec<u8>>,
    /// Once authenticated.
    user: Option<String>,
}

impl Collector {
    fn authenticate(&mut self, user: &str, password: &str) -> Response {
        match &self.login {
            Some(login) if login.user == user && login.password == password => {
                self.shared.lock().unwrap().user = Some(user.to_owned());
                mailin::response::AUTH_OK
            }
            _ => mailin::response::INVALID_CREDENTIALS,
        }
    }
}

impl mailin::Handler for Collector {
    fn data_start(
        &mut self,
        _domain: &str,
        _from: &str,
        _is8bit: bool,
        _to: &[String],
    ) -> Response {
        self.message.clear();
        mailin::response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.message.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        self.shared.lock().unwrap().finished = Some(std::mem::take(&mut self.message));
        mailin::response::OK
    }

    fn auth_plain(
        &mut self,
        _authorization_id: &str,
        authentication_id: &str,
        password: &str,
    ) -> Response {
        self.authenticate(authentication_id, password)
    }

    fn auth_login(&mut self, username: &str, password: &str) -> Response {
        self.authenticate(username, password)
    }
}

fn parse(delivery: &Delivery) -> Received {
    let raw = &delivery.raw;
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
        tls: delivery.tls,
        user: delivery.user.clone(),
        accepted_at: delivery.accepted_at,
    }
}
