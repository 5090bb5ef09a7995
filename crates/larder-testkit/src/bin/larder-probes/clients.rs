//! Clients that hold connections: 100 slowloris connections against the
//! default settings, and 1,100 idle connections against a larder whose
//! open-file limit is 1,024 (soft and hard).

use std::io::{ErrorKind, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use larder_testkit::{Server, Wheel, get_lenient, temp_dir};

use crate::Ctx;
use crate::report::{Row, secs};

/// The default `--header-timeout`.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// pip's default socket timeout: a client waiting longer gives up.
const PIP_TIMEOUT: Duration = Duration::from_secs(15);
/// How long the slowloris probe waits at most.
const GIVE_UP: Duration = Duration::from_secs(60);

/// Runs both probes.
pub fn run(ctx: &Ctx) -> Vec<Row> {
    let fx = temp_dir("probe-clients-fx");
    let data = temp_dir("probe-clients-data");
    Wheel::new("clients-lib", "1.0").build(fx.path());
    ctx.larder.add(data.path(), &[fx.path()]).assert_success();
    let server = ctx.larder.serve(data.path());
    let slowloris = slowloris(&server);
    drop(server);
    let server = ctx.larder.serve_with_open_files(data.path(), &[], 1024, 1024);
    vec![slowloris, idle_over_the_limit(&server)]
}

/// Opens 100 connections that send a request head a byte a second; how
/// long larder holds them, while a normal client is served.
fn slowloris(server: &Server) -> Row {
    let started = Instant::now();
    let mut open: Vec<TcpStream> = (0..100)
        .filter_map(|_| {
            let mut s = TcpStream::connect(server.addr()).ok()?;
            s.write_all(b"GET /simple/ HTTP/1.1\r\nHost: larder\r\nX-Slow: ").ok()?;
            s.set_nonblocking(true).ok()?;
            Some(s)
        })
        .collect();
    let opened = open.len();
    let mut held = Vec::new();
    let mut served_meanwhile = true;
    while !open.is_empty() && started.elapsed() < GIVE_UP {
        std::thread::sleep(Duration::from_secs(1));
        open.retain_mut(|s| {
            let still_open = s.write_all(b"a").is_ok() && !closed(s);
            if !still_open {
                held.push(started.elapsed());
            }
            still_open
        });
        served_meanwhile &= get_lenient(server.addr(), "/health", &[]).is_ok_and(|r| r.status == 200);
    }
    let longest = held.iter().max().copied().unwrap_or_default();
    Row::new(
        "100 slowloris conns (a header byte/s), defaults",
        "closed by the 30 s header timeout; others served",
        format!(
            "{} of {opened} closed, the last after {}; {} still open at {}; /health {}",
            held.len(),
            secs(longest),
            open.len(),
            secs(started.elapsed()),
            if served_meanwhile { "200 throughout" } else { "FAILED meanwhile" }
        ),
        open.is_empty()
            && held.len() == opened
            && longest <= HEADER_TIMEOUT + Duration::from_secs(3)
            && served_meanwhile,
    )
}

/// Whether the server has closed `stream` (EOF or reset; an answer such as
/// a 408 counts too: the server is done with it).
fn closed(mut stream: &TcpStream) -> bool {
    let mut buf = [0u8; 512];
    !matches!(stream.read(&mut buf), Err(e) if e.kind() == ErrorKind::WouldBlock)
}

/// 1,100 idle connections against a 1,024-descriptor limit: does a normal
/// client get an answer, how fast, and does the log say the cap was hit.
fn idle_over_the_limit(server: &Server) -> Row {
    let addr: SocketAddr = server.addr();
    let idle: Vec<TcpStream> =
        (0..1100).filter_map(|_| TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()).collect();
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let answer = get_lenient(addr, "/simple/clients-lib/", &[]);
    let took = started.elapsed();
    let status = answer.as_ref().map_or_else(|e| format!("no answer ({e})"), |r| r.status.to_string());
    let logged = server.stderr_text().contains("connection limit reached");
    let served = answer.is_ok_and(|r| r.status == 200);
    let connected = idle.len();
    drop(idle);
    Row::new(
        "1,100 idle conns, ulimit -n 1024, defaults",
        "a client answered within pip's 15 s timeout; cap logged",
        format!(
            "{connected} idle connected; a page: {status} after {}; cap logged: {}",
            secs(took),
            if logged { "yes" } else { "no" }
        ),
        served && took <= PIP_TIMEOUT && logged,
    )
}
