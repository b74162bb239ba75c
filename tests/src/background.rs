//! Runtimes apart from the test's own. A `#[tokio::test]` runs on one
//! thread, and a `Drop` that waits blocks it: what must go on meanwhile
//! (the SMTP sink, the app's worker) runs on a runtime of its own, and a
//! `Drop` that needs to await does so on a thread of its own.

use std::future::Future;

use tokio::runtime::{Handle, Runtime};

/// Runs `future` to its end on a new thread with a runtime of its own, and
/// returns what it gave (or how the thread panicked). For `Drop`, which
/// cannot await, and may run while the test's runtime is ending.
pub fn run_apart<F>(future: F) -> std::thread::Result<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(future)
    })
    .join()
}

/// A runtime on a thread of its own, shut down on drop with whatever it
/// still runs.
pub struct Background {
    runtime: Option<Runtime>,
}

impl Background {
    pub fn new(name: &str) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(name)
            .enable_all()
            .build()
            .expect("runtime");
        Self {
            runtime: Some(runtime),
        }
    }

    pub fn handle(&self) -> &Handle {
        self.runtime.as_ref().expect("running").handle()
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        // Without waiting: a runtime may not block when dropped in another.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
