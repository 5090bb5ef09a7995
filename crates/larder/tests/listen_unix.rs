//! `larder serve --listen unix:PATH`: HTTP on a Unix socket, for a web
//! server such as nginx in front on the same machine. A real HTTP client
//! (reqwest) talks to it over the socket; the links in the pages follow
//! the Host the client sent, as they do over TCP; a socket file left by a
//! larder that is gone is replaced, a live one is refused, and the file is
//! removed at exit.

mod common;

use std::time::Duration;

use common::*;

/// The host name the client puts in its requests (what nginx passes on).
const HOST: &str = "larder.test";

#[tokio::test]
async fn serves_pages_and_files_on_a_unix_socket() {
    let (fixtures, data) = (temp_dir("unix-fx"), temp_dir("unix-data"));
    // Large enough for the file to go out with sendfile.
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let wheel = Wheel::new("fixture-unix", "1.0").extra_file("fixture_unix/data.bin", &payload).build(fixtures.path());
    larder().add(data.path(), &[fixtures.path()]).assert_success();
    let socket = data.path().join("larder.sock");
    // A socket file that a larder which is gone left behind.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());

    let mut server = larder().serve_unix(data.path(), &socket, &[]);
    assert_eq!(server.first_line(), format!("larder listening on unix:{}\n", socket.display()));
    let client = reqwest::Client::builder().unix_socket(socket.clone()).build().unwrap();
    let base = format!("http://{HOST}/");
    let health = client.get(format!("{base}health")).send().await.unwrap();
    assert_eq!(health.status(), 200);

    let page = client.get(format!("{base}simple/fixture-unix/")).header("Accept", JSON).send().await.unwrap();
    let page: Value = serde_json::from_slice(&page.bytes().await.unwrap()).unwrap();
    let url = page["files"][0]["url"].as_str().unwrap();
    let file_url = resolve(&Url::parse(&format!("{base}simple/fixture-unix/")).unwrap(), url);
    assert_eq!(file_url.host_str(), Some(HOST), "links follow the Host sent: {url}");
    let file = client.get(file_url.as_str()).send().await.unwrap();
    assert_eq!(file.status(), 200);
    let body = file.bytes().await.unwrap();
    assert_eq!(sha256_hex(&body), wheel.sha256, "the whole file, intact");

    // A second larder on the same socket is refused while the first runs.
    let second = larder().serve_command_on(data.path(), &format!("unix:{}", socket.display()), &[]).output().unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success() && stderr.contains("in use"), "{stderr}");

    // SIGTERM: a graceful stop, and the socket file goes with it.
    run_ok(std::process::Command::new("kill").args(["-TERM", &server.pid().to_string()]));
    let status = server.wait_exit(Duration::from_secs(30)).expect("larder stops on SIGTERM");
    assert!(status.success(), "{status}: {}", server.stderr_text());
    assert!(!socket.exists(), "the socket file is removed at exit");
}
