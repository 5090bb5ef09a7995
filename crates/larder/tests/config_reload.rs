//! SIGHUP reloads the `--config` file while `larder serve` runs: a new
//! upstream and new TTLs apply to the next requests, on a connection
//! opened before the reload; the log says what changed; a broken file is
//! refused, logged, and the running settings stay.

mod common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;

/// Sends a GET on an open keep-alive connection and reads the answer
/// (whose length the `Content-Length` header gives): status and body.
fn get_on(stream: &mut TcpStream, target: &str) -> (u16, String) {
    write!(stream, "GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: {JSON}\r\n\r\n").unwrap();
    let mut received = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&received[..end]).to_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .unwrap_or_else(|| panic!("no content-length: {head}"))
                .trim()
                .parse()
                .unwrap();
            if received.len() >= end + 4 + length {
                let status = head[9..12].parse().unwrap();
                return (status, String::from_utf8_lossy(&received[end + 4..end + 4 + length]).into_owned());
            }
        }
        let n = stream.read(&mut chunk).expect("read on the kept connection");
        assert!(n > 0, "the connection was closed");
        received.extend_from_slice(&chunk[..n]);
    }
}

fn sighup(server: &Server) {
    run_ok(std::process::Command::new("kill").args(["-HUP", &server.pid().to_string()]));
}

/// Waits for the `count`th log line with this message; returns its fields.
fn wait_for_message(server: &Server, message: &str, count: usize) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let found: Vec<Value> = server
            .log_lines()
            .into_iter()
            .filter_map(Result::ok)
            .filter(|l| l["fields"]["message"].as_str().is_some_and(|m| m.contains(message)))
            .collect();
        if found.len() >= count {
            return found[count - 1]["fields"].clone();
        }
        assert!(Instant::now() < deadline, "no log line {message:?}:\n{}", server.stderr_text());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sighup_switches_the_upstream_without_dropping_a_connection() {
    let fixtures = temp_dir("reload-fx");
    let data = temp_dir("reload-data");
    let first = FixtureUpstream::start(UpstreamFormat::Json);
    first.add(&Wheel::new("fixture-first", "1.0").build(fixtures.path()));
    let second = FixtureUpstream::start(UpstreamFormat::Json);
    second.add(&Wheel::new("fixture-second", "1.0").build(fixtures.path()));
    let config = fixtures.path().join("larder.toml");
    let write_config = |upstream: &FixtureUpstream, page_ttl: &str| {
        let text = format!("page-ttl = \"{page_ttl}\"\n\n[[upstream]]\nurl = \"{}\"\n", upstream.simple_url());
        std::fs::write(&config, text).unwrap();
    };
    write_config(&first, "10m");
    let server = larder().serve_with(data.path(), &["--config", config.to_str().unwrap()]);
    let mut kept = TcpStream::connect(server.addr()).unwrap();
    kept.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    assert_eq!(get_on(&mut kept, "/simple/fixture-first/").0, 200);

    write_config(&second, "5m");
    sighup(&server);
    let reloaded = wait_for_message(&server, "reloaded the configuration", 1);
    let changed = reloaded["changed"].as_str().unwrap();
    assert!(changed.contains(&format!("upstreams: {}", first.simple_url())), "{changed}");
    assert!(changed.contains(&format!("-> {}", second.simple_url())), "{changed}");
    assert!(changed.contains("page-ttl: 10m -> 5m"), "{changed}");
    // The connection opened before the reload goes on, with the new upstream.
    let (status, body) = get_on(&mut kept, "/simple/fixture-second/");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("fixture_second-1.0"), "{body}");

    // A broken file: refused, said so, and the running settings stay.
    std::fs::write(&config, "page-ttl = [not toml").unwrap();
    sighup(&server);
    let refused = wait_for_message(&server, "was not reloaded", 1);
    assert!(refused["config"].as_str().unwrap().ends_with("larder.toml"), "{refused}");
    assert_eq!(get_on(&mut kept, "/health").0, 200);
    assert!(server.get("/simple/fixture-second/").header("Accept", JSON).send().status == 200);
}
