use super::*;

#[test]
fn client_half_close_with_empty_buffer_shuts_upstream_at_once() {
    // `docker exec c echo hi`: the CLI half-closes before any output.
    let mut t = Tunnel::new(0, 0);
    assert_eq!(t.on_eof(Dir::ToUpstream), OnEof::Hide { shut_now: true });
    assert!(t.is_shut(Dir::ToUpstream));
    // Output keeps flowing; dockerd's final close is reported so nginx finalizes.
    t.received(Dir::ToClient, 3);
    assert_eq!(t.sent(Dir::ToClient, 3), OnSent::Nothing);
    assert_eq!(t.on_eof(Dir::ToClient), OnEof::Report);
}

#[test]
fn eof_with_bytes_pending_shuts_after_the_last_write() {
    // `echo x | docker exec -i c cat`: stdin bytes still buffered when the CLI half-closes.
    let mut t = Tunnel::new(0, 0);
    t.received(Dir::ToUpstream, 10);
    assert_eq!(t.sent(Dir::ToUpstream, 4), OnSent::Nothing);
    assert_eq!(t.on_eof(Dir::ToUpstream), OnEof::Hide { shut_now: false });
    assert!(!t.is_shut(Dir::ToUpstream));
    assert_eq!(t.sent(Dir::ToUpstream, 6), OnSent::Shut);
    assert!(t.is_shut(Dir::ToUpstream));
    // A later write report changes nothing.
    assert_eq!(t.sent(Dir::ToUpstream, 0), OnSent::Nothing);
}

#[test]
fn upstream_half_close_is_mirrored() {
    let mut t = Tunnel::new(0, 5);
    assert_eq!(t.on_eof(Dir::ToClient), OnEof::Hide { shut_now: false });
    assert_eq!(t.sent(Dir::ToClient, 5), OnSent::Shut);
    // The client may still write; its EOF then ends the stream.
    t.received(Dir::ToUpstream, 2);
    assert_eq!(t.sent(Dir::ToUpstream, 2), OnSent::Nothing);
    assert_eq!(t.on_eof(Dir::ToUpstream), OnEof::Report);
}

#[test]
fn both_eofs_pending_finish_when_the_second_drains() {
    let mut t = Tunnel::new(0, 0);
    t.received(Dir::ToClient, 8);
    assert_eq!(t.on_eof(Dir::ToClient), OnEof::Hide { shut_now: false });
    // Client EOF with its own buffer empty: shut toward dockerd now.
    assert_eq!(t.on_eof(Dir::ToUpstream), OnEof::Hide { shut_now: true });
    // The output drains: both directions are done, so nginx must finalize.
    assert_eq!(t.sent(Dir::ToClient, 8), OnSent::ShutAndFinish);
}

#[test]
fn repeated_eof_reports_are_harmless() {
    let mut t = Tunnel::new(0, 0);
    assert_eq!(t.on_eof(Dir::ToUpstream), OnEof::Hide { shut_now: true });
    assert_eq!(t.on_eof(Dir::ToUpstream), OnEof::Hide { shut_now: false });
}

#[test]
fn bytes_read_before_the_switch_count_as_pending() {
    let mut t = Tunnel::new(7, 0);
    assert_eq!(t.on_eof(Dir::ToUpstream), OnEof::Hide { shut_now: false });
    assert_eq!(t.sent(Dir::ToUpstream, 7), OnSent::Shut);
}

#[test]
fn a_repeated_client_eof_never_ends_the_relay_early() {
    // Regression: the client's EOF, hidden, was seen again while dockerd's last bytes were
    // still buffered; reporting it let nginx finalize and drop them.
    let mut t = Tunnel::new(0, 0);
    assert_eq!(t.on_eof(Dir::ToUpstream), OnEof::Hide { shut_now: true });
    t.received(Dir::ToClient, 20488);
    assert_eq!(t.on_eof(Dir::ToClient), OnEof::Report);
    assert_eq!(t.on_eof(Dir::ToUpstream), OnEof::Hide { shut_now: false });
    // Once reported, an EOF stays reported: nginx keeps its eof flag.
    assert_eq!(t.on_eof(Dir::ToClient), OnEof::Report);
}

#[test]
fn the_last_direction_to_drain_finishes_and_stays_reported() {
    let mut t = Tunnel::new(0, 4);
    assert_eq!(t.on_eof(Dir::ToClient), OnEof::Hide { shut_now: false });
    assert_eq!(t.on_eof(Dir::ToUpstream), OnEof::Hide { shut_now: true });
    assert_eq!(t.sent(Dir::ToClient, 4), OnSent::ShutAndFinish);
    assert_eq!(t.on_eof(Dir::ToClient), OnEof::Report);
    assert_eq!(t.on_eof(Dir::ToUpstream), OnEof::Hide { shut_now: false });
}
