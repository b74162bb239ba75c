//! Binding the HTTP listeners, with errors that name the setting to change.

use std::io;
use std::net::SocketAddr;

use tokio::net::TcpListener;

/// Listens on `addr`, which the setting `name` gave.
pub async fn bind(name: &str, addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|error| refused(name, addr, &error))
}

/// Why `addr` (from the setting `name`) cannot be listened on, in one line.
pub fn refused(name: &str, addr: SocketAddr, error: &io::Error) -> anyhow::Error {
    if error.kind() == io::ErrorKind::AddrInUse {
        anyhow::anyhow!("{name} {addr} is already in use")
    } else {
        anyhow::anyhow!("cannot listen on {name} {addr}: {error}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_taken_address_is_named_with_its_setting() {
        let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = taken.local_addr().unwrap();
        let error = bind("CANOPY_ADDR", addr).await.unwrap_err();
        assert_eq!(
            format!("{error:#}"),
            format!("CANOPY_ADDR {addr} is already in use")
        );
    }
}
