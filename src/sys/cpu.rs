//! Processor counts the standard library does not give.

/// CPUs online on this machine (not only those this process may use), at least 1.
pub fn online() -> usize {
    // SAFETY: sysconf reads a system constant; no pointer is involved.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(n).unwrap_or(1).max(1)
}

#[cfg(test)]
mod tests {
    #[test]
    fn at_least_the_cpus_this_process_may_use_are_online() {
        let usable = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert!(super::online() >= usable);
    }
}
