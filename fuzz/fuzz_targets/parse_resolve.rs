//! Arbitrary bytes as a request head: parsing must never panic, and any path it yields must
//! either be refused by the resolver or come out as a path that cannot leave the root.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ringserve::fs::{Dotfiles, resolve};
use ringserve::http::request::{Parsed, Target, parse};
use std::os::unix::ffi::OsStrExt;
use std::path::Component;

fn check_path(raw: &[u8], dotfiles: Dotfiles) {
    let Ok(safe) = resolve(raw, dotfiles) else { return };
    let rel = safe.rel();
    assert!(rel.is_relative(), "absolute result for {raw:?}");
    assert!(!rel.as_os_str().as_bytes().contains(&0), "NUL in result for {raw:?}");
    for component in rel.components() {
        let Component::Normal(name) = component else {
            panic!("non-normal component {component:?} for {raw:?}");
        };
        if dotfiles == Dotfiles::Hidden {
            assert!(!name.as_bytes().starts_with(b"."), "dotfile served for {raw:?}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(Parsed::Complete { request, len }) = parse(data, 8 * 1024) {
        assert!(len <= data.len());
        if let Target::Path { path, .. } = request.target {
            check_path(path, Dotfiles::Hidden);
            check_path(path, Dotfiles::Served);
        }
    }
    check_path(data, Dotfiles::Hidden);
});
