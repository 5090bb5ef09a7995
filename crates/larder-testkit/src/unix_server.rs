//! `larder serve` on a Unix socket, behind a guard that kills the process
//! (by its PID) when the test ends.

use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::larder::{Larder, start_serve};

/// A running `larder serve --listen unix:PATH`, killed (SIGKILL to its
/// PID) on drop.
pub struct UnixServer {
    child: Child,
    socket: PathBuf,
    first_line: String,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl Larder {
    /// Starts `larder serve --data-dir DIR --listen unix:SOCKET
    /// --log-format json EXTRA...` and waits for its listening line.
    pub fn serve_unix(&self, data_dir: &Path, socket: &Path, extra_args: &[&str]) -> UnixServer {
        let listen = format!("unix:{}", socket.display());
        let started = start_serve(self.serve_command_on(data_dir, &listen, extra_args));
        UnixServer {
            child: started.child,
            socket: socket.to_owned(),
            first_line: started.first_line,
            stderr: started.stderr,
        }
    }
}

impl UnixServer {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The socket's path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The first stdout line (the listening line), newline included.
    pub fn first_line(&self) -> &str {
        &self.first_line
    }

    /// Everything written to stderr so far.
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Waits up to `timeout` for the process to exit; its status, or
    /// `None` if it still runs.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait().expect("wait for larder serve") {
                Some(status) => return Some(status),
                None if Instant::now() >= deadline => return None,
                None => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}

impl Drop for UnixServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- larder serve (pid {}) stderr ---\n{}", self.child.id(), self.stderr_text());
        }
    }
}
