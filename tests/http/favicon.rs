//! `/favicon.ico`: the root's own icon when present, else the one built into the binary.

use crate::common::*;

each_mode! {
    fn builtin_favicon_when_root_has_none(ctx) {
        let srv = ctx.start();
        let r = srv.get("/favicon.ico");
        assert_eq!(r.status, 200);
        r.assert_common_headers();
        assert_eq!(r.must("content-type"), "image/x-icon");
        assert_eq!(r.must("cache-control"), "public, max-age=86400");
        let magic = &r.body[..r.body.len().min(4)];
        assert_eq!(magic, [0, 0, 1, 0], "not an ICO");
        assert_eq!(r.must("content-length"), r.body.len().to_string());
        let head = srv.head_with("/favicon.ico", &[]);
        assert_eq!(head.status, 200);
        assert_eq!(head.must("content-length"), r.body.len().to_string());
    }

    fn favicon_from_root_wins(ctx) {
        let fixture = Fixture::new();
        let mut icon = vec![0, 0, 1, 0, 1, 0];
        icon.extend_from_slice(b"not really an icon, but these exact bytes");
        fixture.write("favicon.ico", &icon);
        let srv = ctx.serve(fixture.root(), |c| c);
        let r = srv.get("/favicon.ico");
        assert_eq!(r.status, 200);
        assert_eq!(r.must("content-type"), "image/x-icon");
        assert_eq!(r.body, icon);
    }
}
