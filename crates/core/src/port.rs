//! A free loopback port for a process that binds it a moment later.
//!
//! Binding port 0 and letting go is not enough: Linux may hand the same port to the next
//! `bind(0)` anywhere on the machine (a Temporal dev server picks its internal ports that way),
//! and whoever binds it first wins. So the port is left in TIME_WAIT, as Temporal's own
//! `freeport` does: while it is (60 s on Linux), `bind(0)` skips it, and a listener that names
//! it with SO_REUSEADDR (Rust's std and tokio, Go, chromedriver, Python's servers) still binds
//! it. That holds only because the listener here sets SO_REUSEADDR too (std does on Unix):
//! Linux lets a new listener past a TIME_WAIT socket only when both of them set it.

use std::io;
use std::net::{Ipv4Addr, TcpListener, TcpStream};

/// A loopback port nobody listens on, kept from other `bind(0)` callers for about a minute.
pub fn free_loopback_port() -> io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let addr = listener.local_addr()?;
    let client = TcpStream::connect(addr)?;
    let (accepted, _) = listener.accept()?;
    // The side that closes first is the one left in TIME_WAIT: it must be the listener's.
    drop(accepted);
    drop(client);
    Ok(addr.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How many `bind(0)` calls a picked port must survive. Linux hands `bind(0)` one of about
    /// 14 000 ports at random, so a port released with no reservation comes back about 7 times.
    const BINDS: usize = 100_000;

    #[test]
    fn a_picked_port_is_not_handed_out_again_yet_can_be_bound_by_name() {
        let port = free_loopback_port().unwrap();

        let handed_out_again = (0..BINDS)
            .filter_map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).ok())
            .filter_map(|listener| listener.local_addr().ok())
            .filter(|addr| addr.port() == port)
            .count();

        assert_eq!(
            handed_out_again, 0,
            "port {port} was handed to {handed_out_again} of {BINDS} other bind(0) calls"
        );
        TcpListener::bind((Ipv4Addr::LOCALHOST, port)).expect("the picked port can be bound");
    }
}
