//! A program under test as a child process: what it writes to stderr (its
//! log) read line by line as it comes, and the process killed when the test
//! ends, its log shown if the test failed.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub struct Process {
    /// The program's name, for its log shown on failure.
    name: String,
    child: Option<Child>,
    log: Arc<Mutex<Vec<String>>>,
    reader: Option<JoinHandle<()>>,
}

impl Process {
    /// Starts `command` with no stdin or stdout, and its stderr read.
    pub fn spawn(name: &str, mut command: Command) -> Self {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("{name} starts: {error}"));
        // Read all along, so the process never blocks on a full pipe.
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let lines = log.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                lines.lock().unwrap().push(line);
            }
        });
        Self {
            name: name.to_owned(),
            child: Some(child),
            log,
            reader: Some(reader),
        }
    }

    /// What the process has logged so far, line by line.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// The log so far as one text.
    pub fn log_text(&self) -> String {
        self.log().join("\n")
    }

    /// What `find` finds in the first logged line it finds anything in,
    /// waiting for the process to log it.
    pub async fn wait_for_log<T>(&self, what: &str, find: impl Fn(&str) -> Option<T>) -> T {
        crate::eventually(what, async || {
            self.log()
                .iter()
                .find_map(|line| find(line))
                .ok_or_else(|| format!("{} logged:\n{}", self.name, self.log_text()))
        })
        .await
    }

    /// Waits for a logged line that contains `text`.
    pub async fn wait_for_line(&self, text: &str) {
        self.wait_for_log(text, |line| line.contains(text).then_some(()))
            .await;
    }

    /// The exit status, if the process has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .expect("running")
            .try_wait()
            .expect("try_wait")
    }

    /// SIGKILL: the process dies wherever it is.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, and the exit status once the process has stopped, which
    /// must be within `within`.
    pub async fn terminate(&mut self, within: Duration) -> ExitStatus {
        let id = self.child.as_ref().expect("running").id();
        let sent = Command::new("kill")
            .args(["-TERM", &id.to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM {id}: {sent}");
        self.wait_exit(within).await
    }

    /// The exit status once the process has stopped by itself, which must
    /// be within `within`, with all it logged read.
    pub async fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.exited() {
                break status;
            }
            assert!(
                started.elapsed() < within,
                "{} still running after {within:?}",
                self.name
            );
            tokio::time::sleep(crate::POLL).await;
        };
        self.child = None;
        // The process has exited, so its stderr closes and the reader ends.
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        status
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("--- {} log ---\n{}", self.name, self.log_text());
        }
    }
}
