//! Which representation of a file is served (the file itself or a precompressed sidecar,
//! by `Accept-Encoding`), through the worker's cache or looked up per request, and how it
//! differs from a plain file response (`Content-Encoding`, `Vary`).

use super::*;

/// A file served through the worker's cache: its sidecars are looked up once per file version
/// and kept with it, and the header fields of each representation's full 200 are built once.
pub(super) fn cached_response(
    site: &Site,
    root: &RootDir,
    cx: &Cx<'_>,
    req: &Request<'_>,
    cache: &mut FileCache,
    path: &fs::SafePath,
    hit: Hit,
) -> Response {
    let fh = FileHeaders::new(site, path);
    let sidecars = match hit.sidecars {
        None if negotiates(site, path) => {
            let found = look_up_sidecars(site, root, path, &hit.meta);
            Some(cache.attach_sidecars(root, path, found))
        }
        other => other,
    };
    let list = sidecars.as_deref().unwrap_or_default();
    let selected = select(
        site,
        req,
        list.iter().map(|s| (s.coding, Kind::of_cached(&s.state))),
    );
    if let Some(coding) = selected.coding {
        let usable = list.iter().enumerate().find_map(|(i, s)| match &s.state {
            SidecarState::Usable {
                content,
                meta,
                prebuilt,
            } if s.coding == coding => Some((i, content.clone(), *meta, prebuilt.clone())),
            _ => None,
        });
        if let Some((index, content, meta, prebuilt)) = usable {
            let neg = Negotiated {
                encoding: Some(coding),
                vary: true,
            };
            let fields = prebuilt.unwrap_or_else(|| {
                let fields: Rc<[u8]> = full_fields(&meta, fh, neg).into();
                cache.attach_sidecar_fields(path, index, Rc::clone(&fields));
                fields
            });
            let source = Source::from(content);
            return file_response(cx, req, source, &meta, fh, Some(&fields), neg);
        }
    }
    let neg = Negotiated {
        encoding: None,
        vary: selected.vary,
    };
    // The header fields of a full 200 are built once per cached file version.
    let fields = hit.prebuilt.unwrap_or_else(|| {
        let fields: Rc<[u8]> = full_fields(&hit.meta, fh, neg).into();
        cache.attach(path, Rc::clone(&fields));
        fields
    });
    let source = Source::from(hit.content);
    file_response(cx, req, source, &hit.meta, fh, Some(&fields), neg)
}

/// A file served without a cache (the threaded mode): its sidecars are looked up for this
/// request. The same decisions as [`cached_response`], so the same head.
pub(super) fn uncached_response(
    site: &Site,
    root: &RootDir,
    cx: &Cx<'_>,
    req: &Request<'_>,
    f: FileEntry,
    path: &fs::SafePath,
) -> Response {
    let fh = FileHeaders::new(site, path);
    let found = if negotiates(site, path) {
        look_up_sidecars(site, root, path, &f.meta)
    } else {
        Vec::new()
    };
    let selected = select(
        site,
        req,
        found.iter().map(|s| (s.coding, Kind::of_found(&s.found))),
    );
    let chosen = selected.coding.and_then(|coding| {
        found.into_iter().find_map(|s| match s.found {
            Found::Usable(entry) if s.coding == coding => Some((coding, entry)),
            _ => None,
        })
    });
    match chosen {
        Some((coding, entry)) => {
            let neg = Negotiated {
                encoding: Some(coding),
                vary: true,
            };
            let source = Source::File(Rc::new(entry.file));
            file_response(cx, req, source, &entry.meta, fh, None, neg)
        }
        None => {
            let neg = Negotiated {
                encoding: None,
                vary: selected.vary,
            };
            file_response(
                cx,
                req,
                Source::File(Rc::new(f.file)),
                &f.meta,
                fh,
                None,
                neg,
            )
        }
    }
}

/// Whether sidecars of `path` are looked for: precompressed serving is on, and `path` is not
/// itself a sidecar (`/app.js.gz` is served as what it is, `application/gzip`).
fn negotiates(site: &Site, path: &fs::SafePath) -> bool {
    !site.options.precompressed.is_off() && !Coding::is_sidecar_name(path)
}

/// Every configured sidecar of the file `path`, in the configured order.
fn look_up_sidecars(site: &Site, root: &RootDir, path: &fs::SafePath, meta: &Meta) -> Vec<Sidecar> {
    site.options
        .precompressed
        .codings()
        .map(|coding| root.open_sidecar(path, meta, coding))
        .collect()
}

/// What a sidecar is, for [`select`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Absent,
    Stale,
    Usable,
}

impl Kind {
    fn of_found(f: &Found) -> Kind {
        match f {
            Found::Absent => Kind::Absent,
            Found::Stale => Kind::Stale,
            Found::Usable(_) => Kind::Usable,
        }
    }

    fn of_cached(s: &SidecarState) -> Kind {
        match s {
            SidecarState::Absent => Kind::Absent,
            SidecarState::Stale => Kind::Stale,
            SidecarState::Usable { .. } => Kind::Usable,
        }
    }
}

/// The outcome of negotiation for one request.
struct Selected {
    /// `None`: the file itself.
    coding: Option<Coding>,
    /// The file has at least one usable sidecar, so the response depends on
    /// `Accept-Encoding`.
    vary: bool,
}

/// Picks the representation among `sidecars` (in the configured order) and counts the stale
/// sidecars passed over.
fn select(
    site: &Site,
    req: &Request<'_>,
    sidecars: impl Iterator<Item = (Coding, Kind)> + Clone,
) -> Selected {
    let mut vary = false;
    for (_, kind) in sidecars.clone() {
        match kind {
            Kind::Usable => vary = true,
            Kind::Stale => site.metrics().precompressed_stale(),
            Kind::Absent => {}
        }
    }
    let usable = sidecars.filter_map(|(c, kind)| (kind == Kind::Usable).then_some(c));
    Selected {
        coding: req.headers.accept_encoding.choose(usable),
        vary,
    }
}

/// How the representation served differs from a plain file response.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Negotiated {
    /// `Content-Encoding` of the representation (a sidecar), `None` for the file itself.
    pub(super) encoding: Option<Coding>,
    /// Send `Vary: Accept-Encoding`.
    pub(super) vary: bool,
}

impl Negotiated {
    pub(super) const VARY: (&str, &[u8]) = ("Vary", b"Accept-Encoding");

    /// The `Vary` field for the error responses of a negotiated file (412, 416).
    pub(super) fn extra(&self) -> &'static [(&'static str, &'static [u8])] {
        if self.vary { &[Negotiated::VARY] } else { &[] }
    }
}
