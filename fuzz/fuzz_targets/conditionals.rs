//! AFL++ entry point for `ringserve_fuzz::conditionals` (see fuzz/src/lib.rs for what it checks).

fn main() {
    afl::fuzz!(|data: &[u8]| ringserve_fuzz::conditionals(data));
}
