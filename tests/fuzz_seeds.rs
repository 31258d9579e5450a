//! The fuzz targets' checks (`fuzz/src/lib.rs`, run under AFL++ by `scripts/fuzz.sh`) on their
//! seeds and on every input a fuzzing run found (kept beside the seeds in `fuzz/seeds/TARGET`).
//! Compiling the checks here keeps them building against the library's API in every
//! `cargo test`, without the fuzz toolchain.

#[path = "../fuzz/src/lib.rs"]
mod checks;

use std::fs;
use std::path::Path;

#[test]
fn every_seed_and_finding_passes_its_target_check() {
    for &(name, check) in checks::TARGETS {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/seeds")
            .join(name);
        let mut inputs = 0;
        for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("read_dir entry").path();
            let data = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            check(&data);
            inputs += 1;
        }
        assert!(inputs > 0, "no seeds for {name}");
    }
}
