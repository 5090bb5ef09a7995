//! `larder serve` tells systemd how it is doing when `NOTIFY_SOCKET` is
//! set (`Type=notify` units): `READY=1` once it accepts connections,
//! `RELOADING=1` then `READY=1` around a SIGHUP reload, `STOPPING=1` when
//! asked to stop. The test binds the datagram socket systemd would and
//! reads what arrives.

mod common;

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use common::*;

/// The next datagram on `socket`, as text.
fn next_message(socket: &UnixDatagram, server: &Server) -> String {
    let mut buf = [0u8; 4096];
    let n = socket
        .recv(&mut buf)
        .unwrap_or_else(|e| panic!("no notification within the timeout ({e}):\n{}", server.stderr_text()));
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn ready_reloading_and_stopping_reach_the_notify_socket() {
    let (data, sockets) = (temp_dir("notify-data"), temp_dir("notify-socket"));
    let config = sockets.path().join("larder.toml");
    std::fs::write(&config, "page-ttl = \"10m\"\n").unwrap();
    let path = sockets.path().join("notify");
    let socket = UnixDatagram::bind(&path).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let notify = path.to_str().unwrap();
    let server = larder().serve_with_env(
        data.path(),
        &["--offline", "--config", config.to_str().unwrap()],
        &[("NOTIFY_SOCKET", notify)],
    );

    let ready = next_message(&socket, &server);
    let lines: Vec<&str> = ready.lines().collect();
    assert_eq!(lines[0], "READY=1", "{ready}");
    assert_eq!(lines[1], format!("STATUS=serving on http://{}/", server.addr()), "{ready}");
    // Ready means it answers.
    server.get("/health").send().assert_status(200);

    run_ok(std::process::Command::new("kill").args(["-HUP", &server.pid().to_string()]));
    let reloading = next_message(&socket, &server);
    assert!(reloading.starts_with("RELOADING=1\nMONOTONIC_USEC="), "{reloading}");
    assert_eq!(next_message(&socket, &server), "READY=1\n");

    run_ok(std::process::Command::new("kill").args(["-TERM", &server.pid().to_string()]));
    let stopping = next_message(&socket, &server);
    assert!(stopping.starts_with("STOPPING=1\n"), "{stopping}");
}
