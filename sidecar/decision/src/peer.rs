//! Unix credentials carried in a PROXY protocol source address: the sidecar's relay writes
//! them ([`peer_address`]), nginx passes them on as `$proxy_protocol_addr`, and identity
//! reads them back ([`parse_peer_address`]).

use std::net::Ipv6Addr;

/// The unique-local /64 whose low 64 bits carry `uid << 32 | gid`.
const PEER_PREFIX: [u16; 4] = [0xfd00, 0, 0, 0];

/// Unix credentials of a caller, as nginx passes them back to the sidecar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerAddress {
    pub uid: u32,
    pub gid: u32,
}

/// The IPv6 address that carries `uid` and `gid` in a PROXY header.
pub fn peer_address(uid: u32, gid: u32) -> Ipv6Addr {
    let [p0, p1, p2, p3] = PEER_PREFIX;
    Ipv6Addr::new(
        p0,
        p1,
        p2,
        p3,
        (uid >> 16) as u16,
        uid as u16,
        (gid >> 16) as u16,
        gid as u16,
    )
}

/// Reads back what [`peer_address`] wrote (in any textual form of the address).
pub fn parse_peer_address(text: &str) -> Option<PeerAddress> {
    let addr: Ipv6Addr = text.trim().parse().ok()?;
    let s = addr.segments();
    if s[..4] != PEER_PREFIX {
        return None;
    }
    Some(PeerAddress {
        uid: (s[4] as u32) << 16 | s[5] as u32,
        gid: (s[6] as u32) << 16 | s[7] as u32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_addresses_carry_no_credentials() {
        for text in [
            "",
            "127.0.0.1",
            "::1",
            "fd01::1",
            "fd00:0:0:1::",
            "unix:",
            "garbage",
        ] {
            assert_eq!(parse_peer_address(text), None, "{text}");
        }
        // Any spelling of the same address reads the same.
        assert_eq!(
            parse_peer_address("FD00:0000:0000:0000:0000:03E8:0000:0064"),
            Some(PeerAddress {
                uid: 1000,
                gid: 100
            })
        );
    }
}
