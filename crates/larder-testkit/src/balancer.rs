//! [`Balancer`]: a round-robin TCP balancer on 127.0.0.1 in front of
//! several larder nodes, as a load balancer in front of a real cluster
//! would be (by connection, not by request).

use std::net::{SocketAddr, TcpListener, TcpStream};

use crate::relay::pipe;

/// Hands each new connection to the next node in turn.
pub struct Balancer {
    addr: SocketAddr,
}

impl Balancer {
    /// Starts balancing over `nodes` (at least one).
    pub fn start(nodes: Vec<SocketAddr>) -> Balancer {
        assert!(!nodes.is_empty(), "a balancer needs a node");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the balancer");
        let addr = listener.local_addr().expect("the balancer's address");
        std::thread::spawn(move || {
            for (client, node) in listener.incoming().flatten().zip(nodes.iter().cycle()) {
                // A node that is gone refuses: the client sees its
                // connection closed, as behind a real balancer.
                if let Ok(server) = TcpStream::connect(node) {
                    pipe(&client, &server);
                }
            }
        });
        Balancer { addr }
    }

    /// The balancer's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};

    use super::*;

    /// A server on 127.0.0.1 that answers every connection with `reply`.
    fn replying(reply: &'static [u8]) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let _ = stream.write_all(reply);
            }
        });
        addr
    }

    #[test]
    fn connections_go_to_each_node_in_turn() {
        let balancer = Balancer::start(vec![replying(b"a"), replying(b"b")]);
        let replies: Vec<String> = (0..4)
            .map(|_| {
                let mut reply = String::new();
                TcpStream::connect(balancer.addr()).unwrap().read_to_string(&mut reply).unwrap();
                reply
            })
            .collect();
        assert_eq!(replies, ["a", "b", "a", "b"]);
    }
}
