//! Hostile request targets and headers: path-traversal variants against
//! pages and files, and `Range: bytes=-0`.

use larder_testkit::{Wheel, http::send_raw, temp_dir};

use crate::Ctx;
use crate::pages::{file_url, target};
use crate::report::Row;

/// Sends every traversal variant and a zero-length suffix range.
pub fn run(ctx: &Ctx) -> Vec<Row> {
    let fx = temp_dir("probe-input-fx");
    let data = temp_dir("probe-input-data");
    let wheel = Wheel::new("input-lib", "1.0").build(fx.path());
    let other = Wheel::new("input-other", "1.0").build(fx.path());
    ctx.larder.add(data.path(), &[fx.path()]).assert_success();
    let server = ctx.larder.serve(data.path());
    let path = target(&file_url(&server, &wheel.project, &wheel.filename).expect("the wheel is listed"));
    let dir = path.strip_suffix(&wheel.filename).expect("a file URL ends with its filename");
    let sha = &wheel.sha256;
    let mut variants = vec![
        format!("{dir}..%2F..%2F..%2F..%2Fetc%2Fpasswd"),
        format!("{dir}..%2F{}", other.filename),
        format!("{dir}{}", other.filename),
        format!("{dir}..%2F..%2F..%2F..%2Fetc%2Fpasswd.metadata"),
        format!("{path}/../../../../etc/passwd"),
        path.replace(sha.as_str(), &"z".repeat(64)),
        path.replace(sha.as_str(), &"0".repeat(64)),
        path.replace(sha.as_str(), &sha[..32]),
        format!("{path}%00.txt"),
    ];
    for prefix in ["/files/", "/simple/", "/pypi/", "/"] {
        for escape in ["../../../../etc/passwd", "..%2F..%2F..%2F..%2Fetc%2Fpasswd", "%2e%2e/%2e%2e/%2e%2e/etc/passwd"]
        {
            variants.push(format!("{prefix}{escape}"));
        }
    }
    variants.extend(
        [
            "/files/%252e%252e/%252e%252e/etc/passwd",
            "/files/..%5C..%5C..%5Cetc%5Cpasswd",
            "/files/..;/..;/..;/etc/passwd",
            "/files/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd",
            "/files/%00",
            "//etc/passwd",
            "/files//etc/passwd",
            "/simple/input-lib/../../../etc/passwd",
        ]
        .map(str::to_owned),
    );
    let raw = |target: &str, headers: &str| {
        let request = format!("GET {target} HTTP/1.1\r\nHost: {}\r\n{headers}Connection: close\r\n\r\n", server.addr());
        send_raw(server.addr(), request.as_bytes())
    };
    let leaked: Vec<String> = variants
        .iter()
        .filter(|target| {
            let r = raw(target, "");
            !(400..500).contains(&r.status)
                || r.text().contains("root:")
                || r.body == wheel.bytes()
                || r.body == other.bytes()
        })
        .cloned()
        .collect();
    let sanity = raw(&path, "").status;
    let empty_range = raw(&path, "Range: bytes=-0\r\n");
    vec![
        Row::new(
            "path-traversal variants (pages, files)",
            "every one 4xx, nothing outside the store",
            format!(
                "{}/{} refused{}; the real URL {sanity}",
                variants.len() - leaked.len(),
                variants.len(),
                if leaked.is_empty() { String::new() } else { format!(" (not: {})", leaked.join(" ")) }
            ),
            leaked.is_empty() && sanity == 200,
        ),
        Row::new(
            "Range: bytes=-0",
            "416",
            format!("{} ({})", empty_range.status, empty_range.header("content-range").unwrap_or("no Content-Range")),
            empty_range.status == 416,
        ),
    ]
}
