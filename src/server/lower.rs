//! Lowering a response onto a driver's output: the head and each piece of the body, in order,
//! as calls on an [`Output`]. One copy of the rule for both drivers: which bodies are copied
//! into memory (cached bytes, files up to [`COPY_BELOW`]) and which go out as file ranges.

use super::policy::COPY_BELOW;
use crate::http::Response;
use crate::http::response::Body;
use std::fs::File;
use std::io;
use std::ops::Range;
use std::rc::Rc;

/// Where a driver puts the bytes of a response.
pub trait Output {
    /// In-memory bytes, copied.
    fn bytes(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// `range` of a cached body (the range is within the bytes, checked by the core).
    fn shared(&mut self, bytes: Rc<[u8]>, range: Range<u64>) -> io::Result<()> {
        self.bytes(crate::http::serve::clamped_slice(&bytes, &range))
    }
    /// A small file range, read into memory now. A file that shrank since its length was
    /// promised is an error: the connection must close rather than send less.
    fn small_file(&mut self, file: &File, range: Range<u64>) -> io::Result<()>;
    /// A larger file range, sent without a user-space copy.
    fn file(&mut self, file: Rc<File>, range: Range<u64>) -> io::Result<()>;
}

/// Puts `response`'s head and body on `out`, in order.
pub fn lower(response_head: &[u8], body: Body, out: &mut impl Output) -> io::Result<()> {
    out.bytes(response_head)?;
    match body {
        Body::Empty => Ok(()),
        Body::Static(bytes) => out.bytes(bytes),
        Body::Bytes(bytes) => out.bytes(&bytes),
        Body::Shared { bytes, range } => out.shared(bytes, range),
        Body::File { file, range } if range.end - range.start <= COPY_BELOW => {
            out.small_file(&file, range)
        }
        Body::File { file, range } => out.file(file, range),
        Body::Multipart {
            file,
            parts,
            trailer,
        } => {
            for part in parts {
                out.bytes(&part.header)?;
                out.file(Rc::clone(&file), part.range)?;
            }
            out.bytes(&trailer)
        }
    }
}

/// Head and body bytes a response puts on the wire (for the counters).
pub fn wire_len(response: &Response) -> u64 {
    response.head.len() as u64 + response.body_len()
}

/// Appends `range` of `file` to `out` (small bodies go out with the heads before them). A file
/// that shrank since its length was promised is an error and leaves `out` as it was: the
/// connection must close rather than send a short body.
pub fn append_file_range(
    file: &std::fs::File,
    range: std::ops::Range<u64>,
    out: &mut Vec<u8>,
) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let len = usize::try_from(range.end - range.start).map_err(|_| io::ErrorKind::InvalidInput)?;
    let start = out.len();
    out.resize(start + len, 0);
    let read = file.read_exact_at(&mut out[start..], range.start);
    if read.is_err() {
        out.truncate(start);
    }
    read
}
