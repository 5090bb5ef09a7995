//! [`TcpRelay`]: a TCP relay on 127.0.0.1 in front of a server, that a
//! test can switch off and on, to make a backend (the S3 server) go away
//! in the middle of a run and come back.

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Relays connections to a target while on; while off, refuses new ones
/// (accepts and closes them) and has cut the ones it was relaying.
pub struct TcpRelay {
    addr: SocketAddr,
    on: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl TcpRelay {
    /// Starts relaying to `target`, switched on.
    pub fn start(target: SocketAddr) -> TcpRelay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the relay");
        let addr = listener.local_addr().expect("the relay's address");
        let on = Arc::new(AtomicBool::new(true));
        let open = Arc::new(Mutex::new(Vec::new()));
        let (relay_on, relay_open) = (on.clone(), open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if !relay_on.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(target) else { continue };
                let streams = [&client, &server].map(|s| s.try_clone());
                if let [Ok(client_copy), Ok(server_copy)] = streams {
                    relay_open.lock().unwrap().extend([client_copy, server_copy]);
                }
                pipe(&client, &server);
            }
        });
        TcpRelay { addr, on, open }
    }

    /// The relay's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<relay address>`.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Switches off: open connections are cut, new ones refused.
    pub fn switch_off(&self) {
        self.on.store(false, Ordering::SeqCst);
        for stream in self.open.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// Switches back on.
    pub fn switch_on(&self) {
        self.on.store(true, Ordering::SeqCst);
    }
}

/// Copies bytes both ways between two streams on two threads.
pub(crate) fn pipe(a: &TcpStream, b: &TcpStream) {
    for (from, to) in [(a, b), (b, a)] {
        let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else { return };
        std::thread::spawn(move || {
            let _: io::Result<u64> = io::copy(&mut from, &mut to);
            let _ = to.shutdown(Shutdown::Write);
        });
    }
}
