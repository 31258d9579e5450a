//! Runs one fuzz target's check on files, without AFL: `replay TARGET FILE…`. A crash found
//! by `scripts/fuzz.sh` is reproduced (and its panic message shown) with this.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((target, files)) = args.split_first() else {
        eprintln!("usage: replay TARGET FILE...");
        return ExitCode::from(2);
    };
    let Some(&(_, check)) = ringserve_fuzz::TARGETS.iter().find(|(name, _)| name == target) else {
        eprintln!("replay: unknown target {target}");
        return ExitCode::from(2);
    };
    for file in files {
        match std::fs::read(file) {
            Ok(data) => {
                check(&data);
                println!("replay: {target} {file}: ok");
            }
            Err(e) => {
                eprintln!("replay: {file}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
