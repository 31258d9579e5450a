//! Request path → [`SafePath`]: the only way to name a file under the root.
//!
//! SKELETON STUB — to be implemented (owner: helper B). Signatures are the contract.

use std::path::{Path, PathBuf};

/// Whether names starting with `.` may be served.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Dotfiles {
    #[default]
    Hidden,
    Served,
}

/// Why a request path cannot name a file under the root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathError {
    /// Does not start with `/`.
    NotAbsolute,
    /// A `%` not followed by two hex digits.
    BadPercentEncoding,
    /// A NUL byte, raw or `%00`.
    Nul,
    /// A `..` that would climb above the root.
    AboveRoot,
    /// A segment starting with `.` while dotfiles are hidden.
    Hidden,
}

/// A normalized path relative to the root: no leading `/`, no empty, `.` or `..` segments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SafePath {
    rel: PathBuf,
    dir_form: bool,
}

impl SafePath {
    /// The relative path (`""` for the root itself).
    pub fn rel(&self) -> &Path {
        &self.rel
    }
    /// True when the request path ended with `/` (after normalization).
    pub fn is_dir_form(&self) -> bool {
        self.dir_form
    }
    /// `self` + `index.html`.
    pub fn index(&self) -> SafePath {
        unimplemented!("helper B")
    }
}

/// Percent-decodes `raw_path` once and normalizes it (see module docs).
pub fn resolve(_raw_path: &[u8], _dotfiles: Dotfiles) -> Result<SafePath, PathError> {
    unimplemented!("helper B")
}
