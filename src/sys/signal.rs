//! Termination signals handled synchronously: block SIGINT and SIGTERM in every thread, then
//! wait for them in one dedicated thread with `sigwait`. No async-signal-safety concerns, and
//! the waiting thread can call ordinary code (start a graceful shutdown).

use std::io;
use std::mem::MaybeUninit;

/// SIGINT and SIGTERM.
#[derive(Clone, Copy)]
pub struct TerminationSignals {
    set: libc::sigset_t,
}

impl std::fmt::Debug for TerminationSignals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TerminationSignals(SIGINT, SIGTERM)")
    }
}

/// A signal that asks the process to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Termination {
    Interrupt,
    Terminate,
}

impl TerminationSignals {
    /// Blocks SIGINT and SIGTERM in the calling thread, and so in every thread it spawns
    /// afterwards. Call first thing in `main`, before any thread exists.
    pub fn block() -> io::Result<TerminationSignals> {
        let mut set = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigemptyset initializes the set it is given; we pass a pointer to local,
        // properly sized storage and only read it after the call succeeded.
        let set = unsafe {
            if libc::sigemptyset(set.as_mut_ptr()) != 0 {
                return Err(io::Error::last_os_error());
            }
            libc::sigaddset(set.as_mut_ptr(), libc::SIGINT);
            libc::sigaddset(set.as_mut_ptr(), libc::SIGTERM);
            set.assume_init()
        };
        // SAFETY: `set` is an initialized sigset_t living on this stack frame; the old mask
        // pointer may be null.
        let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        Ok(TerminationSignals { set })
    }

    /// Waits for the next SIGINT or SIGTERM.
    pub fn wait(&self) -> io::Result<Termination> {
        let mut signal: libc::c_int = 0;
        // SAFETY: `self.set` is an initialized sigset_t and `signal` a live local the call
        // writes once.
        let rc = unsafe { libc::sigwait(&self.set, &mut signal) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        Ok(if signal == libc::SIGINT {
            Termination::Interrupt
        } else {
            Termination::Terminate
        })
    }
}
