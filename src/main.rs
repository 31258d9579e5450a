//! `ringserve [DIR]`: parse the flags (and `--config FILE`, see [`config_file`]) into a
//! [`Config`], start, wait for SIGINT/SIGTERM, shut down gracefully; SIGUSR1 reopens the
//! access log; or, with `--check-config FILE`, check and exit. Nothing else happens here.

mod config_file;

use clap::{CommandFactory, FromArgMatches, Parser};
use ringserve::{
    AccessLog, Config, HeaderRule, ListenAddr, Mode, Pin, Precompressed, Server, Signals, Trigger,
    TrustedProxy,
};
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Exit code for start-up failures (the same as clap's for a bad flag).
const EXIT_USAGE: u8 = 2;

/// A static-file HTTP/1.1 server: thread-per-core on io_uring, or thread-per-connection.
#[derive(Debug, Parser)]
#[command(name = "ringserve", version, about)]
struct Cli {
    /// Directory to serve.
    #[arg(default_value = "www")]
    dir: PathBuf,

    /// Address to listen on (repeatable): 127.0.0.1:8080, [::1]:8080, or unix:/path/to.sock
    /// (mode 0660, shared by all workers, removed on shutdown) [default: 127.0.0.1:8080].
    #[arg(long = "listen", value_name = "ADDR")]
    listen: Vec<ListenAddr>,

    /// Believe X-Forwarded-For / X-Real-IP from peers in this block (repeatable), e.g.
    /// 10.0.0.0/8, 127.0.0.1, ::1, or unix: for Unix-socket peers.
    #[arg(long = "trusted-proxy", value_name = "CIDR|unix:")]
    trusted_proxy: Vec<TrustedProxy>,

    /// Answer this path with 200 "ok" while serving, 503 while shutting down.
    #[arg(long, value_name = "PATH")]
    health_path: Option<String>,

    /// Answer this path with counters in the Prometheus text format.
    #[arg(long, value_name = "PATH")]
    status_path: Option<String>,

    /// Seconds to keep accepting after SIGTERM while the health path answers 503, before
    /// stopping (lets a proxy's health check drain this instance first).
    #[arg(long, value_name = "S", default_value_t = 0.0, value_parser = seconds_or_zero)]
    drain_delay: f64,

    /// I/O mode.
    #[arg(long, value_enum, default_value_t = CliMode::Uring)]
    mode: CliMode,

    /// Worker threads for the uring mode [default: the cores this process may use].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    workers: Option<u16>,

    /// Pin each uring worker to a core: auto pins only when this process was given a CPU set
    /// of its own (taskset, a cgroup cpuset), where its cores are not shared.
    #[arg(long, value_enum, default_value_t = CliPin::Auto)]
    pin: CliPin,

    /// List directories that have no index.html.
    #[arg(long)]
    listing: bool,

    /// Serve names starting with a dot (hidden with 404 otherwise).
    #[arg(long)]
    dotfiles: bool,

    /// Write an access log (combined format + µs) to PATH, or to stdout with '-'.
    #[arg(long, value_name = "PATH|-")]
    access_log: Option<PathBuf>,

    /// Seconds a client may take to send a request head (then 408).
    #[arg(long, value_name = "S", default_value_t = 10.0, value_parser = positive_seconds)]
    header_timeout: f64,

    /// Seconds the kernel holds a new TCP connection that has sent nothing before handing it
    /// over (TCP_DEFER_ACCEPT); one whose request arrives is handed over with it at once.
    /// 0: hand over every connection at once. Sockets from systemd keep DeferAcceptSec=.
    #[arg(long, value_name = "S", default_value_t = ringserve::DEFAULT_DEFER_ACCEPT,
          value_parser = clap::value_parser!(u32).range(0..=600))]
    defer_accept: u32,

    /// Seconds a keep-alive connection may stay idle.
    #[arg(long, value_name = "S", default_value_t = 60.0, value_parser = positive_seconds)]
    idle_timeout: f64,

    /// Connections served at once; more get 503 [default: what the descriptor limit allows,
    /// at most 65536; a larger value is clamped to that, with a warning].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_conns: Option<u32>,

    /// Cache-Control value for files, e.g. "public, max-age=3600".
    #[arg(long, value_name = "VALUE")]
    cache_control: Option<String>,

    /// Largest request head in bytes (431 beyond it; 414 if the request line alone is).
    #[arg(long, value_name = "BYTES", default_value_t = 8192,
          value_parser = clap::value_parser!(u32).range(256..=1_048_576))]
    max_head: u32,

    /// Serve precompressed sidecars (app.js.br, app.js.zst, app.js.gz next to app.js) to
    /// clients that accept them, preferring the codings in this order; 'off' never does.
    #[arg(long, value_name = "LIST|off", default_value_t = Precompressed::DEFAULT)]
    precompressed: Precompressed,

    /// Send this file beneath the root (a URL path, e.g. /404.html) as the body of every 404.
    #[arg(long, value_name = "PAGE")]
    not_found: Option<String>,

    /// Answer a GET or HEAD of a missing path without a file extension, from a client that
    /// accepts text/html, with this page (e.g. /index.html) and status 200: the single-page
    /// app rule. Missing assets (/app.js) still get 404.
    #[arg(long, value_name = "PAGE")]
    fallback: Option<String>,

    /// Seconds a graceful shutdown waits for responses in flight before cutting them.
    #[arg(long, value_name = "S", default_value_t = 10.0, value_parser = positive_seconds)]
    shutdown_grace: f64,

    /// Send a header with the files matching PATTERN (repeatable; the last matching rule wins
    /// per header): '/assets/**=Cache-Control: max-age=31536000, immutable', '*.html=X-A: b'.
    /// A pattern with '/' matches the file's path ('*' within a segment, '**' any segments),
    /// one without matches its name.
    #[arg(long = "header", value_name = "PATTERN=Name: value")]
    header: Vec<HeaderRule>,

    /// Read settings from a TOML file whose keys are these flags' long names (DIR is 'root');
    /// flags on the command line win. See ringserve.toml.example.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Check FILE and the other flags as a start would, print "ok" and exit 0 (or the error
    /// and exit 2), without binding or serving.
    #[arg(long, value_name = "FILE", conflicts_with = "config")]
    check_config: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum CliPin {
    Auto,
    On,
    Off,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum CliMode {
    Uring,
    Threaded,
}

/// A bad flag is one `ringserve: error: …` line and exit 2, like every other start-up error
/// (clap's own message, without its usage hint); `--help` and `--version` print as usual.
fn usage_exit(e: clap::Error) -> ! {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        e.exit();
    }
    let text = e.to_string();
    let first = text.lines().next().unwrap_or("bad command line");
    eprintln!(
        "ringserve: error: {} (see --help)",
        first.strip_prefix("error: ").unwrap_or(first)
    );
    std::process::exit(i32::from(EXIT_USAGE));
}

fn positive_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 86_400.0 => Ok(v),
        _ => Err(format!(
            "'{s}' is not a number of seconds between 0 and 86400"
        )),
    }
}

fn seconds_or_zero(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=3_600.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "'{s}' is not a number of seconds between 0 and 3600"
        )),
    }
}

impl Cli {
    /// The command line, merged with `--config FILE` (or `--check-config FILE`) when given:
    /// clap's own error and exit for a bad flag, one line and exit 2 for a bad file.
    fn parse_with_file() -> Result<Cli, config_file::FileError> {
        let argv: Vec<OsString> = std::env::args_os().collect();
        let cmd = Cli::command();
        let given = cmd
            .clone()
            .try_get_matches_from(&argv)
            .unwrap_or_else(|e| usage_exit(e));
        let cli = Cli::from_arg_matches(&given).unwrap_or_else(|e| usage_exit(e));
        let Some(file) = cli.config.as_ref().or(cli.check_config.as_ref()) else {
            return Ok(cli);
        };
        let mut args = vec![argv.first().cloned().unwrap_or_else(|| "ringserve".into())];
        args.extend(config_file::merged_args(&cmd, &argv[1..], &given, file)?);
        let merged = cmd
            .try_get_matches_from(args)
            .unwrap_or_else(|e| usage_exit(e));
        Ok(Cli::from_arg_matches(&merged).unwrap_or_else(|e| usage_exit(e)))
    }

    fn into_config(self) -> Config {
        let mut config = Config::new(self.dir)
            .mode(match self.mode {
                CliMode::Uring => Mode::Uring,
                CliMode::Threaded => Mode::Threaded,
            })
            .header_timeout(Duration::from_secs_f64(self.header_timeout))
            .idle_timeout(Duration::from_secs_f64(self.idle_timeout))
            .defer_accept(self.defer_accept)
            .max_head(self.max_head as usize)
            .shutdown_grace(Duration::from_secs_f64(self.shutdown_grace))
            .drain_delay(Duration::from_secs_f64(self.drain_delay))
            .pin(match self.pin {
                CliPin::Auto => Pin::Auto,
                CliPin::On => Pin::On,
                CliPin::Off => Pin::Off,
            })
            .precompressed(self.precompressed);
        for addr in self.listen {
            config = config.listen_addr(addr);
        }
        for proxy in self.trusted_proxy {
            config = config.trusted_proxy(proxy);
        }
        if let Some(p) = self.health_path {
            config = config.health_path(p);
        }
        if let Some(p) = self.status_path {
            config = config.status_path(p);
        }
        if let Some(n) = self.max_conns {
            config = config.max_conns(n as usize);
        }
        if let Some(n) = self.workers {
            config = config.workers(usize::from(n));
        }
        if self.listing {
            config = config.enable_listing();
        }
        if self.dotfiles {
            config = config.serve_dotfiles();
        }
        if let Some(path) = self.access_log {
            config = config.access_log(if path.as_os_str() == "-" {
                AccessLog::Stdout
            } else {
                AccessLog::File(path)
            });
        }
        if let Some(cc) = self.cache_control {
            config = config.cache_control(cc);
        }
        if let Some(page) = self.not_found {
            config = config.not_found_page(page);
        }
        if let Some(page) = self.fallback {
            config = config.fallback_page(page);
        }
        for rule in self.header {
            config = config.header_rule(rule);
        }
        config
    }
}

/// SIGUSR1: reopen the access log, and say so (a rotation script may wait for the line).
fn reopen_logs(trigger: &Trigger) {
    match trigger.reopen_logs() {
        Ok(Some(path)) => eprintln!("ringserve: access log reopened: {}", path.display()),
        Ok(None) => eprintln!("ringserve: SIGUSR1: no access log file to reopen"),
        Err(e) => eprintln!(
            "ringserve: error: cannot reopen the access log: {e}; still writing to the previous file"
        ),
    }
}

fn main() -> ExitCode {
    // Before any thread exists, so every thread inherits the blocked mask.
    let signals = match Signals::block() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ringserve: error: cannot set up signal handling: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    // A bug's panic is one log line (the worker closes the connection it was handling and
    // goes on; see the uring worker and the threaded mode's connection threads).
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        let name = thread.name().unwrap_or("a thread");
        let at = info
            .location()
            .map_or(String::new(), |l| format!(" at {}:{}", l.file(), l.line()));
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| info.payload().downcast_ref::<String>().map(String::as_str))
            .unwrap_or("a panic");
        eprintln!("ringserve: bug in {name}{at}: {what}");
    }));
    let cli = match Cli::parse_with_file() {
        Ok(cli) => cli,
        Err(e) => {
            eprintln!("ringserve: error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if let Some(file) = cli.check_config.clone() {
        return match Server::check(&cli.into_config()) {
            Ok(()) => {
                println!("ringserve: {}: ok", file.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("ringserve: error: {}: {e}", file.display());
                ExitCode::from(EXIT_USAGE)
            }
        };
    }
    let mut config = cli.into_config();
    // Socket activation: systemd's listening sockets, taken while this is the only thread.
    let passed = match ringserve::systemd_sockets() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("ringserve: error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    for socket in passed {
        config = config.listen_passed(socket);
    }
    // Soft descriptor limit up to the hard one, before the connection cap is derived from it.
    // A failure leaves the limit as it was, and the start-up line shows the cap it allows.
    let _ = ringserve::raise_fd_limit();
    let handle = match Server::bind(config) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("ringserve: error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let mut places: Vec<String> = handle
        .local_addrs()
        .iter()
        .map(|a| format!("http://{a}/"))
        .collect();
    places.extend(
        handle
            .unix_paths()
            .iter()
            .map(|p| format!("unix:{}", p.display())),
    );
    eprintln!(
        "ringserve: serving {} at {}{} (mode {}, {}, up to {} connections with {} descriptors)",
        handle.root_path().display(),
        places
            .first()
            .map_or("an unnamed Unix socket", String::as_str),
        if handle.on_passed_sockets() {
            ", socket from systemd"
        } else {
            ""
        },
        handle.mode(),
        handle.detail(),
        handle.max_conns(),
        handle.fd_limit()
    );
    for extra in places.iter().skip(1) {
        eprintln!("ringserve: also listening at {extra}");
    }
    let trigger = handle.trigger();
    let waiter = std::thread::Builder::new()
        .name("ringserve-signals".into())
        .spawn(move || {
            // The first SIGINT or SIGTERM starts a graceful shutdown, a second one means
            // "now". SIGUSR1 reopens the access log, also while shutting down.
            let mut stopping = false;
            while let Ok(signal) = signals.wait() {
                if !signal.is_termination() {
                    reopen_logs(&trigger);
                } else if stopping {
                    eprintln!("ringserve: second signal; exiting at once");
                    std::process::exit(1);
                } else {
                    eprintln!("ringserve: {signal:?} received; finishing responses in flight");
                    trigger.shutdown();
                    stopping = true;
                }
            }
        });
    if let Err(e) = waiter {
        eprintln!("ringserve: error: cannot start the signal thread: {e}");
        return ExitCode::from(EXIT_USAGE);
    }
    handle.join();
    eprintln!("ringserve: stopped");
    ExitCode::SUCCESS
}
