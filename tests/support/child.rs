//! A `ringserve` child process's standard error, read line by line on a thread so that a test
//! can wait for a line with a deadline (the start-up line, an acknowledgement) without ever
//! blocking on the pipe; and signals to the child. Shared by the test crates that run the
//! binary (`#[path = "support/child.rs"] mod child;`).

#![allow(dead_code)] // each test crate uses part of it

use std::io::{BufRead, BufReader};
use std::process;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// Spawns `cmd` (the binary, or a shell that execs it) with stdin and stdout on /dev/null and
/// stderr read by [`read_stderr`].
pub fn spawn(cmd: &mut process::Command) -> (process::Child, Stderr) {
    spawn_with_stdout(cmd, process::Stdio::null())
}

/// As [`spawn`], with `stdout` as its standard output.
pub fn spawn_with_stdout(
    cmd: &mut process::Command,
    stdout: process::Stdio,
) -> (process::Child, Stderr) {
    let mut child = cmd
        .stdin(process::Stdio::null())
        .stdout(stdout)
        .stderr(process::Stdio::piped())
        .spawn()
        .expect("spawn ringserve");
    let stderr = read_stderr(&mut child);
    (child, stderr)
}

/// Lines a child wrote to stderr, in order.
#[derive(Debug)]
pub struct Stderr(mpsc::Receiver<String>);

/// Reads `child`'s stderr (spawned with `Stdio::piped()`) on a thread, line by line.
pub fn read_stderr(child: &mut process::Child) -> Stderr {
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Stderr(rx)
}

impl Stderr {
    /// Waits at most `timeout` for a line starting with `prefix`, looking at 20 lines at
    /// most; on failure, the lines seen.
    pub fn line(&self, prefix: &str, timeout: Duration) -> Result<String, Vec<String>> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        while seen.len() < 20 {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.0.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return Ok(line),
                Ok(line) => seen.push(line),
                Err(_) => break,
            }
        }
        Err(seen)
    }

    /// The next line, waiting at most `timeout`.
    pub fn next(&self, timeout: Duration) -> Option<String> {
        self.0.recv_timeout(timeout).ok()
    }

    /// Every line already written, without waiting.
    pub fn drain(&self) -> Vec<String> {
        self.0.try_iter().collect()
    }
}

/// Sends `signal` to `child`, which must not have been reaped yet.
pub fn signal(child: &process::Child, signal: libc::c_int) {
    let pid = libc::pid_t::try_from(child.id()).expect("pid fits");
    // SAFETY: kill takes no pointers; the child is not reaped yet, so the pid is still ours
    // (at worst a zombie, which ignores the signal).
    let rc = unsafe { libc::kill(pid, signal) };
    assert_eq!(rc, 0, "kill({pid}, {signal})");
}

/// Waits for `child` to exit, at most `timeout` (then the test fails); its status.
pub fn wait_exit(child: &mut process::Child, timeout: Duration) -> process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "ringserve did not exit within {timeout:?}"
        );
        thread::sleep(Duration::from_millis(2));
    }
}

/// Kills `child` if it is still running, and reaps it (for `Drop`).
pub fn reap(child: &mut process::Child) {
    if let Ok(None) = child.try_wait() {
        let _ = child.kill();
        let _ = child.wait();
    }
}
