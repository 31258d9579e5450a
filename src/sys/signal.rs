//! The signals the binary acts on, handled synchronously: block SIGINT, SIGTERM and SIGUSR1 in
//! every thread, then wait for them in one dedicated thread with `sigwait`. No
//! async-signal-safety concerns, and the waiting thread can call ordinary code (start a
//! graceful shutdown, reopen the access log).

use std::io;
use std::mem::MaybeUninit;

/// SIGINT, SIGTERM and SIGUSR1, blocked and waited for.
#[derive(Clone, Copy)]
pub struct Signals {
    set: libc::sigset_t,
}

impl std::fmt::Debug for Signals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signals(SIGINT, SIGTERM, SIGUSR1)")
    }
}

/// A signal the server acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT: stop.
    Interrupt,
    /// SIGTERM: stop.
    Terminate,
    /// SIGUSR1: reopen the access log (log rotation; nginx uses the same signal).
    ReopenLogs,
}

impl Signal {
    /// Whether the signal asks the process to stop.
    pub fn is_termination(self) -> bool {
        matches!(self, Signal::Interrupt | Signal::Terminate)
    }
}

impl Signals {
    /// Blocks SIGINT, SIGTERM and SIGUSR1 in the calling thread, and so in every thread it
    /// spawns afterwards. Call first thing in `main`, before any thread exists. Until
    /// [`Signals::wait`] takes them, they stay pending (a SIGUSR1 then no longer kills the
    /// process, its default action).
    pub fn block() -> io::Result<Signals> {
        let mut set = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigemptyset initializes the set it is given; we pass a pointer to local,
        // properly sized storage and only read it after the call succeeded.
        let set = unsafe {
            if libc::sigemptyset(set.as_mut_ptr()) != 0 {
                return Err(io::Error::last_os_error());
            }
            libc::sigaddset(set.as_mut_ptr(), libc::SIGINT);
            libc::sigaddset(set.as_mut_ptr(), libc::SIGTERM);
            libc::sigaddset(set.as_mut_ptr(), libc::SIGUSR1);
            set.assume_init()
        };
        // SAFETY: `set` is an initialized sigset_t living on this stack frame; the old mask
        // pointer may be null.
        let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        Ok(Signals { set })
    }

    /// Waits for the next of the signals.
    pub fn wait(&self) -> io::Result<Signal> {
        let mut signal: libc::c_int = 0;
        // SAFETY: `self.set` is an initialized sigset_t and `signal` a live local the call
        // writes once.
        let rc = unsafe { libc::sigwait(&self.set, &mut signal) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        Ok(match signal {
            libc::SIGINT => Signal::Interrupt,
            libc::SIGUSR1 => Signal::ReopenLogs,
            _ => Signal::Terminate,
        })
    }
}
