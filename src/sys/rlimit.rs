//! The descriptor limit (`RLIMIT_NOFILE`): read it, and raise the soft limit to the hard one.

use std::io;

/// A process's descriptor limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Nofile {
    /// What `open`/`accept` are held to now (`EMFILE` beyond it).
    pub soft: u64,
    /// How far an unprivileged process may raise `soft`.
    pub hard: u64,
}

/// The current limits.
pub fn nofile() -> io::Result<Nofile> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a live local of the type getrlimit writes.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Nofile {
        soft: lim.rlim_cur,
        hard: lim.rlim_max,
    })
}

/// Raises the soft limit to the hard one, as Go's runtime does at start: services are often
/// started with a soft limit of 1024 kept for the sake of old `select(2)` programs, which
/// this server is not. An unlimited hard limit is not a value `setrlimit` accepts for the soft
/// one; the kernel's ceiling (`fs.nr_open`) is used then. Returns the limits now in force.
pub fn raise_nofile() -> io::Result<Nofile> {
    let now = nofile()?;
    let mut target = now.hard;
    if target == libc::RLIM_INFINITY {
        target = std::fs::read_to_string("/proc/sys/fs/nr_open")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            // The kernel's default nr_open.
            .unwrap_or(1 << 20);
    }
    if target <= now.soft {
        return Ok(now);
    }
    let lim = libc::rlimit {
        rlim_cur: target,
        rlim_max: now.hard,
    };
    // SAFETY: `lim` is a live local of the type setrlimit reads.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    nofile()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_is_raised_to_the_hard_one() {
        // Raising within the hard limit never needs privilege, and the test process may run
        // with any soft limit; afterwards soft equals hard (or nr_open when unlimited).
        let after = raise_nofile().unwrap();
        assert_eq!(after, nofile().unwrap());
        assert!(after.soft == after.hard || after.hard == libc::RLIM_INFINITY);
    }
}
