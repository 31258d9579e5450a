//! AFL++ entry point for `ringserve_fuzz::parse_resolve` (see fuzz/src/lib.rs for what it checks).

fn main() {
    afl::fuzz!(|data: &[u8]| ringserve_fuzz::parse_resolve(data));
}
