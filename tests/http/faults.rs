//! A bug that panics while one connection is handled costs that connection only: it closes
//! without an answer, and every other connection of the same worker is still served. The
//! fault is injected behind a test-only hook (`Config::inject_fault_on`).

use crate::common::*;

each_mode! {
    fn a_panic_closes_one_connection_and_the_worker_serves_on(ctx) {
        // One worker, so the victim and the bystanders share it in the uring mode.
        let srv = ctx.start_with(|c| c.inject_fault_on("/boom").workers(1));
        let mut bystander = srv.conn();
        bystander.send(b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(bystander.read_response(false).status, 200);
        // A slow head in progress on the same worker must survive too.
        let mut slow = srv.conn();
        slow.send(b"GET /style.css HTTP/1.1\r\n");
        for _ in 0..3 {
            let mut victim = srv.conn();
            victim.send(b"GET /boom HTTP/1.1\r\nHost: x\r\n\r\n");
            assert!(victim.wait_closed(IO_TIMEOUT), "the faulting connection stayed open");
            assert!(victim.unparsed().is_empty(), "a faulting request got bytes back");
        }
        bystander.send(b"GET /style.css HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(bystander.read_response(false).status, 200);
        slow.send(b"Host: x\r\n\r\n");
        assert_eq!(slow.read_response(false).status, 200);
        let r = srv.get("/index.html");
        assert_eq!(r.status, 200);
        assert_eq!(r.body_str(), INDEX_HTML);
    }
}
