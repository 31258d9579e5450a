//! The opt-in HTML directory listing (`--listing`).
//!
//! SKELETON STUB — to be implemented (owner: helper B). Signatures are the contract.

use super::{Directory, resolve::Dotfiles};
use std::io;

/// Renders the listing of `dir`, whose request path (raw, as the client sent it, without the
/// query) is `url_path`. Names are HTML-escaped and percent-encoded in links, sorted, with
/// size and mtime; dotfiles appear only when served.
pub fn render(_dir: &Directory, _url_path: &[u8], _dotfiles: Dotfiles) -> io::Result<Vec<u8>> {
    unimplemented!("helper B")
}
