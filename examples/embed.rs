//! Serving a directory from inside another program.
//!
//! ```sh
//! cargo run --example embed -- [DIR] [--listen ADDR|unix:/path] [--requests N] [--seconds S]
//! ```
//!
//! Serves DIR (or, without one, a temporary directory it fills with an `index.html`) and
//! prints `embed: serving <dir> at <address>`. It stops gracefully on Ctrl-C or SIGTERM, after
//! N responses (`--requests`), or after S seconds (`--seconds`), whichever comes first; then
//! prints how many responses it sent. `scripts/test.sh` runs it with bounds and fetches from it.

use ringserve::{Config, ListenAddr, Mode, Server, Signals};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant};

struct Args {
    dir: Option<PathBuf>,
    listen: ListenAddr,
    requests: Option<u64>,
    seconds: Option<f64>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        dir: None,
        listen: ListenAddr::Tcp(([127, 0, 0, 1], 0).into()),
        requests: None,
        seconds: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--listen" => args.listen = value("--listen")?.parse()?,
            "--requests" => {
                let v = value("--requests")?;
                args.requests = Some(v.parse().map_err(|_| format!("bad --requests {v}"))?);
            }
            "--seconds" => {
                let v = value("--seconds")?;
                match v.parse::<f64>() {
                    Ok(s) if s.is_finite() && s > 0.0 => args.seconds = Some(s),
                    _ => return Err(format!("bad --seconds {v}")),
                }
            }
            flag if flag.starts_with('-') => return Err(format!("unknown flag {flag}")),
            dir if args.dir.is_none() => args.dir = Some(dir.into()),
            extra => return Err(format!("unexpected argument {extra}")),
        }
    }
    Ok(args)
}

/// Why the example stops.
enum Stop {
    Signal,
    Requests,
    Time,
}

fn main() -> ExitCode {
    // Before any thread: every thread the server starts inherits the blocked signals, and
    // this program receives them with `wait` instead of a handler.
    let signals = match Signals::block() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("embed: cannot set up signals: {e}");
            return ExitCode::FAILURE;
        }
    };
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("embed: {e}");
            return ExitCode::from(2);
        }
    };
    // Without a directory: a temporary one, removed when `_temp` drops at the end.
    let (dir, _temp) = match args.dir {
        Some(d) => (d, None),
        None => {
            let temp = tempfile::tempdir().expect("create a temporary directory");
            std::fs::write(
                temp.path().join("index.html"),
                "<!doctype html>\n<title>embedded</title>\n<p>served by an embedded ringserve</p>\n",
            )
            .expect("write index.html");
            (temp.path().to_path_buf(), Some(temp))
        }
    };

    let config = Config::new(&dir)
        .listen_addr(args.listen)
        .mode(Mode::Threaded)
        .status_path("/-/status")
        .shutdown_grace(Duration::from_secs(2));
    let handle = match Server::bind(config) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("embed: {e}");
            return ExitCode::from(2);
        }
    };
    let at = match (handle.local_addrs().first(), handle.unix_paths().first()) {
        (Some(addr), _) => format!("http://{addr}/"),
        (None, Some(path)) => format!("unix:{}", path.display()),
        (None, None) => unreachable!("a server always listens somewhere"),
    };
    println!("embed: serving {} at {at}", dir.display());

    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        // SIGINT or SIGTERM stops; SIGUSR1 (log rotation) has no log to reopen here.
        while let Ok(signal) = signals.wait() {
            if signal.is_termination() {
                let _ = tx.send(());
                break;
            }
        }
    });
    let deadline = args
        .seconds
        .map(|s| Instant::now() + Duration::from_secs_f64(s));
    let stop = loop {
        if rx.recv_timeout(Duration::from_millis(50)).is_ok() {
            break Stop::Signal;
        }
        if args
            .requests
            .is_some_and(|n| handle.stats().responses() >= n)
        {
            break Stop::Requests;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break Stop::Time;
        }
    };
    let why = match stop {
        Stop::Signal => "signal",
        Stop::Requests => "request count reached",
        Stop::Time => "time bound reached",
    };
    let stats = std::sync::Arc::clone(handle.stats());
    handle.shutdown();
    handle.join();
    println!(
        "embed: stopped ({why}) after {} responses",
        stats.responses()
    );
    ExitCode::SUCCESS
}
