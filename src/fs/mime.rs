//! `Content-Type` by file extension, with `charset=utf-8` on textual types.

use std::path::Path;

/// A media type as written in `Content-Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContentType {
    /// `type/subtype`, e.g. `text/html`.
    pub essence: &'static str,
    /// Append `; charset=utf-8`.
    pub utf8: bool,
}

impl ContentType {
    pub const OCTET_STREAM: ContentType = ContentType {
        essence: "application/octet-stream",
        utf8: false,
    };
    pub const HTML: ContentType = ContentType {
        essence: "text/html",
        utf8: true,
    };
    pub const ICON: ContentType = ContentType {
        essence: "image/x-icon",
        utf8: false,
    };

    /// Guesses from the extension of `path`; unknown → `application/octet-stream`.
    pub fn for_path(path: &Path) -> ContentType {
        let Some(essence) = mime_guess::from_path(path).first_raw() else {
            return ContentType::OCTET_STREAM;
        };
        ContentType {
            essence,
            utf8: is_textual(essence),
        }
    }
}

/// Types that are text in practice even when not under `text/`: a browser decodes them with
/// the declared charset, so we declare UTF-8 rather than let it guess.
fn is_textual(essence: &str) -> bool {
    essence.starts_with("text/")
        || matches!(
            essence,
            "application/javascript"
                | "application/json"
                | "application/xml"
                | "application/xhtml+xml"
                | "application/manifest+json"
                | "image/svg+xml"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_by_extension() {
        let cases: &[(&str, &str, bool)] = &[
            ("index.html", "text/html", true),
            ("a/style.css", "text/css", true),
            ("app.js", "text/javascript", true),
            ("data.json", "application/json", true),
            ("logo.svg", "image/svg+xml", true),
            ("photo.png", "image/png", false),
            ("blob.bin", "application/octet-stream", false),
            ("no_extension", "application/octet-stream", false),
            ("notes.txt", "text/plain", true),
        ];
        for &(path, essence, utf8) in cases {
            let ct = ContentType::for_path(Path::new(path));
            assert_eq!((ct.essence, ct.utf8), (essence, utf8), "{path}");
        }
    }
}
