//! Clients that hold connections open: slowloris (a request head a byte at
//! a time), idle connections, more connections than descriptors. larder
//! closes what stalls, caps what it accepts (and logs it), closes silent
//! connections at the cap, raises its open-file limit, and keeps answering.

mod common;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::*;

fn served(label: &str, extra: &[&str]) -> (Server, TempDir, TempDir) {
    let fixtures = temp_dir(&format!("{label}-fx"));
    let data = temp_dir(&format!("{label}-data"));
    Wheel::new("fixture-lib", "1.0").build(fixtures.path());
    larder().add(data.path(), &[fixtures.path()]).assert_success();
    let server = larder().serve_with(data.path(), extra);
    (server, fixtures, data)
}

/// Whether the server has closed `stream` (EOF or reset) within `within`.
fn closed_by_server(mut stream: &TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    stream.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let mut buf = [0u8; 1024];
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return true,
        }
    }
    false
}

fn idle_connections(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n).map(|_| TcpStream::connect(addr).expect("connect")).collect()
}

#[test]
fn slowloris_and_idle_connections_are_closed_after_the_header_timeout() {
    let (server, _fx, _data) = served("slowloris", &["--header-timeout", "2s"]);
    let mut slow: Vec<TcpStream> = idle_connections(server.addr(), 50);
    for stream in &mut slow {
        stream.write_all(b"GET /simple/ HTTP/1.1\r\nHost: larder\r\nX-Slow: ").unwrap();
    }
    let idle = idle_connections(server.addr(), 50);
    let mut kept_alive = TcpStream::connect(server.addr()).unwrap();
    kept_alive.write_all(b"GET /health HTTP/1.1\r\nHost: larder\r\n\r\n").unwrap();
    let started = Instant::now();
    // Keep trickling one header byte per slow connection every 300 ms.
    let mut closed_slow = vec![false; slow.len()];
    while started.elapsed() < Duration::from_secs(4) {
        for (stream, closed) in slow.iter_mut().zip(closed_slow.iter_mut()) {
            if !*closed && stream.write_all(b"a").is_err() {
                *closed = true;
            }
        }
        server.get("/simple/fixture-lib/").send().assert_status(200);
        std::thread::sleep(Duration::from_millis(300));
    }
    let open_slow = slow.iter().zip(&closed_slow).filter(|(s, c)| !**c && !closed_by_server(s, Duration::from_secs(3)));
    assert_eq!(open_slow.count(), 0, "slowloris connections left open past the header timeout");
    let open_idle = idle.iter().filter(|s| !closed_by_server(s, Duration::from_secs(1)));
    assert_eq!(open_idle.count(), 0, "idle connections left open past the header timeout");
    let mut first_answer = [0u8; 12];
    kept_alive.read_exact(&mut first_answer).unwrap();
    assert_eq!(&first_answer, b"HTTP/1.1 200");
    assert!(closed_by_server(&kept_alive, Duration::from_secs(3)), "an idle keep-alive connection stays open");
    server.get("/health").send().assert_status(200);
}

/// `n` connections that each sent the start of a request head and then
/// stopped: busy, as far as larder can tell.
fn started_requests(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut streams = idle_connections(addr, n);
    for stream in &mut streams {
        stream.write_all(b"GET /health HTTP/1.1\r\nHost: larder\r\n").unwrap();
    }
    streams
}

#[test]
fn at_the_connection_cap_new_connections_wait_and_the_log_says_so() {
    let (server, _fx, _data) = served("cap", &["--max-connections", "20", "--header-timeout", "60s"]);
    let mut idle = started_requests(server.addr(), 20);
    std::thread::sleep(Duration::from_millis(300));
    let addr = server.addr();
    let waiting = std::thread::spawn(move || {
        let started = Instant::now();
        let r = larder_testkit::http::Request::new(addr, "GET", "/health").send();
        (r.status, started.elapsed())
    });
    std::thread::sleep(Duration::from_secs(1));
    assert!(!waiting.is_finished(), "a 21st connection was served while 20 were open");
    let log = server.stderr_text();
    assert!(log.contains("connection limit reached"), "no log line at the cap: {log}");
    idle.truncate(10);
    let (status, _) = waiting.join().unwrap();
    assert_eq!(status, 200);
}

/// At the cap, connections that have sent nothing for a second are closed
/// to make room: a client with a request is answered long before the
/// header timeout frees a slot.
#[test]
fn at_the_connection_cap_silent_connections_make_room_for_a_request() {
    let (server, _fx, _data) = served("shed", &["--max-connections", "20", "--header-timeout", "60s"]);
    let silent = idle_connections(server.addr(), 19);
    let busy = started_requests(server.addr(), 1);
    std::thread::sleep(Duration::from_millis(1500));
    let started = Instant::now();
    let addr = server.addr();
    let answered = std::thread::spawn(move || larder_testkit::http::Request::new(addr, "GET", "/health").send().status);
    let within = Duration::from_secs(10);
    assert!(
        larder_testkit::proxy::eventually(within, || answered.is_finished()),
        "a request waited over {within:?} behind silent connections"
    );
    assert_eq!(answered.join().unwrap(), 200, "answered after {:?}", started.elapsed());
    let shed = silent.iter().filter(|s| closed_by_server(s, Duration::from_millis(500))).count();
    assert!(shed > 0, "no silent connection was closed");
    assert!(
        !closed_by_server(&busy[0], Duration::from_millis(500)),
        "a connection that sent a request head was closed"
    );
}

#[test]
fn the_open_file_soft_limit_is_raised_to_the_hard_limit() {
    let fixtures = temp_dir("nofile-fx");
    let data = temp_dir("nofile-data");
    let server = larder().serve_with_open_files(data.path(), &[], 256, 2048);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.pid())).unwrap();
    let line = limits.lines().find(|l| l.starts_with("Max open files")).unwrap();
    let numbers: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    assert_eq!(numbers, ["2048", "2048"], "{line}");
    drop(fixtures);
}

#[test]
fn with_few_descriptors_and_many_idle_connections_larder_still_answers() {
    let fixtures = temp_dir("fdlow-fx");
    let data = temp_dir("fdlow-data");
    Wheel::new("fixture-lib", "1.0").build(fixtures.path());
    larder().add(data.path(), &[fixtures.path()]).assert_success();
    let server = larder().serve_with_open_files(data.path(), &["--header-timeout", "3s"], 256, 256);
    let _idle = idle_connections(server.addr(), 400);
    let started = Instant::now();
    let page = server.get("/simple/fixture-lib/").header("Accept", JSON).send();
    page.assert_status(200);
    assert!(started.elapsed() < Duration::from_secs(20), "answered only after {:?}", started.elapsed());
    let url = file_url(&server, "fixture-lib", &json_filenames(&page.json())[0]);
    server.get_url(&url).send().assert_status(200);
    assert!(server.stderr_text().contains("connection limit reached"), "the cap was hit and logged");
}

/// Runs `larder serve` under `systemd-socket-activate -l LISTEN`, which
/// listens and, at the first connection (`request`, returning the status
/// it got), starts larder with that socket as fd 3 (LISTEN_FDS=1,
/// LISTEN_PID=its pid), then stops it with SIGTERM. Returns the status,
/// larder's stdout and stderr.
fn socket_activated(listen: &str, request: impl FnOnce() -> u16) -> (u16, String, String) {
    let data = temp_dir("socket-activation-data");
    let serve = larder().serve_command(data.path(), &[]);
    let mut cmd = std::process::Command::new("systemd-socket-activate");
    cmd.arg("-l").arg(listen).arg(serve.get_program()).args(serve.get_args());
    for (name, value) in serve.get_envs() {
        match value {
            Some(value) => cmd.env(name, value),
            None => cmd.env_remove(name),
        };
    }
    cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let child = cmd.spawn().expect("systemd-socket-activate (systemd's package) runs");
    std::thread::sleep(Duration::from_millis(300));
    let status = request();
    // systemd-socket-activate has become larder (exec): a graceful stop.
    run_ok(std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]));
    let out = child.wait_with_output().unwrap();
    (status, String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn a_socket_passed_by_systemd_is_served_and_listen_is_not_used() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let (status, stdout, stderr) = socket_activated(&addr.to_string(), || {
        larder_testkit::http::Request::new(addr, "GET", "/health").send().status
    });
    assert_eq!(status, 200, "{stdout}\n{stderr}");
    assert!(stdout.contains(&format!("larder listening on http://127.0.0.1:{port}/")), "{stdout}");
    assert!(stderr.contains("socket activation"), "{stderr}");
}

#[test]
fn a_unix_socket_passed_by_systemd_is_served_too() {
    let dir = temp_dir("socket-activation-unix");
    let path = dir.path().join("larder.sock");
    let (status, stdout, stderr) = socket_activated(path.to_str().unwrap(), || {
        let mut stream = std::os::unix::net::UnixStream::connect(&path).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        stream.write_all(b"GET /health HTTP/1.1\r\nHost: larder.test\r\nConnection: close\r\n\r\n").unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).unwrap();
        larder_testkit::http::parse_response(&answer, false, "/health over the passed Unix socket").status
    });
    assert_eq!(status, 200, "{stdout}\n{stderr}");
    assert!(stdout.contains(&format!("larder listening on unix:{}", path.display())), "{stdout}");
    assert!(stderr.contains("socket activation"), "{stderr}");
    assert!(stderr.contains("\"stopped\""), "a graceful stop: {stderr}");
    assert!(path.exists(), "the socket file is systemd's: larder leaves it");
}
