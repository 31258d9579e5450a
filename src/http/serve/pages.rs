//! What a GET or HEAD gets when its path has nothing to serve (a 404 of `serve::get`):
//! the app fallback page (`--fallback`), the site's 404 page (`--not-found`), or the built-in
//! 404. Both pages are URL paths beneath the root, checked at start-up (an existing regular
//! file), and looked up per request like any path (same resolver, same cache, so a deploy
//! that replaces them is seen at once).
//!
//! **The app fallback** (single-page apps) answers with the page, status 200, when all hold:
//! 1. The path is missing: nothing of that name, a file named in directory form
//!    (`/app.js/`), or a hidden dotfile path (hidden paths are answered as absent). An
//!    existing directory without `index.html` is not missing: it keeps its 404.
//! 2. Its last segment (after decoding and normalizing; `/users/` → `users`) has no `.`:
//!    `/users/42` and `/v1.2/users` are routes, `/app.js` and `/img/x.png` are missing
//!    assets and get the 404. Only the last segment decides.
//! 3. `Accept` allows `text/html` ([`crate::http::accept`]; no `Accept` allows it):
//!    `fetch` with `Accept: application/json` gets the 404, not HTML.
//!
//! The answer is the one a request for the page itself gets (its `ETag`, conditionals,
//! ranges, precompressed sidecars, `Cache-Control`), plus `Vary: Accept`. A path that passes
//! rules 1 and 2 gets `Vary: Accept` on its 404 too, since `Accept` decided it: a cache in
//! front must not give a browser the 404 that a JSON client got, nor the reverse. If the
//! page cannot be served now (deleted, a directory, unreadable), the path gets the 404.
//!
//! **The 404 page** is the body of every 404 of a missing path (and of the fallback's
//! refusals), with status 404 and the page's `Content-Type`. It carries no `ETag`,
//! `Last-Modified` or `Cache-Control`, and conditionals and `Range` are not evaluated: a
//! 404 is never turned into a 304, 412 or 206. If the page is gone, the built-in 404 is
//! sent (never a 500 or a redirect). Other statuses (400, 403, 405, …) keep the built-in
//! bodies.

use super::*;

/// Why [`get`] found nothing to serve (its answer is a 404).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Missing {
    /// Nothing of that name, a hidden one, or a file named in directory form.
    Absent,
    /// An existing directory with no index (and listings off): not an app route.
    NoIndex,
}

/// `Vary` on the answers [`missing`] chose by `Accept`.
const VARY_ACCEPT: (&str, &[u8]) = ("Vary", b"Accept");

/// The answer to a GET or HEAD of `path`, which has nothing to serve.
pub(super) fn missing(
    site: &Site,
    mut cache: Option<&mut FileCache>,
    cx: &Cx<'_>,
    req: &Request<'_>,
    path: &[u8],
    why: Missing,
) -> Response {
    let routed = why == Missing::Absent && site.options.fallback.is_some() && is_route(path);
    if routed
        && req.headers.accept.allows_html()
        && let Some(page) = &site.options.fallback
        && let Ok(mut response) = get(site, cache.as_deref_mut(), cx, req, page.as_bytes(), None)
        && serves_page(response.status)
    {
        response.add_field(VARY_ACCEPT.0, VARY_ACCEPT.1);
        return response;
    }
    let mut response = not_found(site, cache, cx);
    if routed {
        response.add_field(VARY_ACCEPT.0, VARY_ACCEPT.1);
    }
    response
}

/// Rule 2: the last segment of `path` has no `.` (the root has none and counts as a route,
/// though it is never missing while the root exists).
fn is_route(path: &[u8]) -> bool {
    // Dotfiles counted as served: a hidden path is answered as an absent one.
    match fs::resolve(path, Dotfiles::Served) {
        Ok(safe) => safe
            .rel()
            .file_name()
            .is_none_or(|name| !name.as_encoded_bytes().contains(&b'.')),
        Err(_) => false,
    }
}

/// Whether the fallback page's own answer is the page (or a conditional outcome for it),
/// rather than a sign that it cannot be served.
fn serves_page(status: Status) -> bool {
    matches!(
        status,
        Status::Ok
            | Status::PartialContent
            | Status::NotModified
            | Status::PreconditionFailed
            | Status::RangeNotSatisfiable
    )
}

/// The 404: the site's page when configured and present, else the built-in one.
fn not_found(site: &Site, cache: Option<&mut FileCache>, cx: &Cx<'_>) -> Response {
    let page = site.options.not_found.as_deref();
    match page.and_then(|page| page_content(site, cache, page)) {
        Some((source, meta)) => {
            let mut head = HeadBuilder::new(Status::NotFound, cx.date);
            head.content_type(meta.content_type)
                .content_length(meta.size);
            cx.finish(Status::NotFound, head, source.body(0..meta.size))
        }
        None => cx.message(Status::NotFound),
    }
}

/// The bytes and metadata of the regular file `page` names now (through the worker's cache
/// when there is one); `None` when it is not one.
fn page_content(
    site: &Site,
    mut cache: Option<&mut FileCache>,
    page: &str,
) -> Option<(Source, Meta)> {
    let safe = fs::resolve(page.as_bytes(), site.options.dotfiles).ok()?;
    if safe.is_dir_form() {
        return None;
    }
    let root = match cache.as_deref_mut() {
        Some(cache) => cache.root(&site.root),
        None => site.shared_root.current(&site.root),
    };
    let mut root = root.ok()?;
    if let Some(cache) = cache.as_deref_mut()
        && let Some(hit) = cache.get(&root, &safe)
    {
        return Some((Source::from(hit.content), hit.meta));
    }
    match open_fresh(site, cache.as_deref_mut(), &mut root, &safe).ok()? {
        Entry::File(f) => {
            let meta = f.meta;
            let source = match cache {
                Some(cache) => Source::from(cache.insert(&root, &safe, f)),
                None => Source::File(Rc::new(f.file)),
            };
            Some((source, meta))
        }
        Entry::Dir(_) => None,
    }
}

/// Checks a page flag's value at start-up against the root: it must name an existing
/// regular file beneath it, reachable under the dotfile rule in force.
pub fn check_page(root: &Root, page: &str, dotfiles: Dotfiles) -> Result<(), String> {
    let safe = match fs::resolve(page.as_bytes(), dotfiles) {
        Ok(safe) if !safe.is_dir_form() => safe,
        Ok(_) => return Err("names a directory; give a file such as /index.html".into()),
        Err(PathError::Hidden) => {
            return Err("is a hidden dotfile path (see --dotfiles)".into());
        }
        Err(_) => return Err("is not a path beneath the root starting with '/'".into()),
    };
    match root.open_entry(&safe) {
        Ok(Entry::File(_)) => Ok(()),
        Ok(Entry::Dir(_)) => Err("is a directory, not a file".into()),
        Err(OpenError::NotFound) => Err(format!(
            "no regular file {} beneath the root",
            root.path().join(safe.rel()).display()
        )),
        Err(OpenError::Forbidden) => Err("cannot be read (permission denied)".into()),
        Err(OpenError::Io(e)) => Err(format!("cannot be opened: {e}")),
    }
}
