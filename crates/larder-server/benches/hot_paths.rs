//! Micro-benchmarks of the hot paths of serving an index (`cargo bench -p
//! larder-server`): rendering a 5,000-file project page (HTML and PEP 691
//! JSON), parsing an upstream page of the same size (both formats), name
//! normalization, and content negotiation with pip's and uv's `Accept`
//! headers. The end-to-end comparison with other servers is `bench/run`.

use std::fmt::Write as _;
use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use larder_index::parse::{Url, parse_project_page};
use larder_index::{NormalizedName, PageFormat, ProjectPage, render_project_page};
use larder_server::negotiate::negotiate;

/// Files on the generated project page.
const FILES: usize = 5_000;

/// The `Accept` header pip sends for index pages.
const PIP_ACCEPT: &str =
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01";
/// The `Accept` header uv sends for index pages.
const UV_ACCEPT: &str =
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01";

fn hex(seed: usize) -> String {
    // 64 hex digits that differ per file; not a real digest, which the
    // parser does not check.
    let mut out = String::with_capacity(64);
    let mut x = (seed as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    while out.len() < 64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        write!(out, "{x:016x}").unwrap();
    }
    out.truncate(64);
    out
}

fn filename(i: usize) -> String {
    let version = format!("{}.{}.{}", i / 1000, (i / 50) % 20, i % 50);
    if i % 5 == 4 {
        format!("big_project-{version}.tar.gz")
    } else {
        format!("big_project-{version}-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl")
    }
}

/// An upstream PEP 691 JSON page with `FILES` files, as an index serves it.
fn upstream_json() -> String {
    let mut files = Vec::with_capacity(FILES);
    for i in 0..FILES {
        let name = filename(i);
        let wheel = name.ends_with(".whl");
        files.push(format!(
            r#"{{"filename":"{name}","url":"https://files.example.invalid/packages/{h}/{name}","hashes":{{"sha256":"{h}"}},"requires-python":">=3.9","core-metadata":{m},"dist-info-metadata":{m},"size":{size},"upload-time":"2025-01-02T03:04:05.123456Z","yanked":{y}}}"#,
            h = hex(i),
            m = if wheel { format!(r#"{{"sha256":"{}"}}"#, hex(i + FILES)) } else { "false".into() },
            size = 10_000 + i,
            y = if i % 97 == 0 { r#""broken build""# } else { "false" },
        ));
    }
    format!(
        r#"{{"meta":{{"api-version":"1.1","_last-serial":42}},"name":"big-project","files":[{}],"versions":[]}}"#,
        files.join(",")
    )
}

/// The same page as PEP 503 HTML.
fn upstream_html() -> String {
    let mut html = String::from(
        "<!DOCTYPE html>\n<html>\n<head><meta name=\"pypi:repository-version\" content=\"1.1\"><title>Links for big-project</title></head>\n<body>\n<h1>Links for big-project</h1>\n",
    );
    for i in 0..FILES {
        let name = filename(i);
        let metadata = if name.ends_with(".whl") {
            format!(r#" data-dist-info-metadata="sha256={m}" data-core-metadata="sha256={m}""#, m = hex(i + FILES))
        } else {
            String::new()
        };
        let yanked = if i % 97 == 0 { r#" data-yanked="broken build""# } else { "" };
        writeln!(
            html,
            r#"<a href="../../packages/{h}/{name}#sha256={h}" data-requires-python="&gt;=3.9"{metadata}{yanked}>{name}</a><br />"#,
            h = hex(i)
        )
        .unwrap();
    }
    html.push_str("</body>\n</html>\n");
    html
}

fn page_url() -> Url {
    Url::parse("https://index.example.invalid/simple/big-project/").unwrap()
}

fn project() -> NormalizedName {
    NormalizedName::new("big-project").unwrap()
}

fn parsed_page() -> ProjectPage {
    let body = upstream_json();
    let page =
        parse_project_page(body.as_bytes(), Some("application/vnd.pypi.simple.v1+json"), &page_url(), &project())
            .expect("the generated page parses");
    assert_eq!(page.files.len(), FILES);
    page
}

fn render(c: &mut Criterion) {
    let page = parsed_page();
    let mut group = c.benchmark_group("render_project_page_5000_files");
    for (label, format) in [("html", PageFormat::Html), ("json", PageFormat::Json)] {
        group.throughput(Throughput::Bytes(render_project_page(&page, format).len() as u64));
        group.bench_function(label, |b| b.iter(|| render_project_page(black_box(&page), format)));
    }
    group.finish();
}

fn parse(c: &mut Criterion) {
    let url = page_url();
    let name = project();
    let mut group = c.benchmark_group("parse_project_page_5000_files");
    for (label, body, content_type) in
        [("html", upstream_html(), "text/html"), ("json", upstream_json(), "application/vnd.pypi.simple.v1+json")]
    {
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(label, |b| {
            b.iter(|| parse_project_page(black_box(body.as_bytes()), Some(content_type), &url, &name).unwrap())
        });
    }
    group.finish();
}

fn names(c: &mut Criterion) {
    let mut group = c.benchmark_group("normalized_name");
    for raw in ["requests", "Typing_Extensions", "zope.interface", "A.B_C-D.E_F-G.H_I-J"] {
        group.bench_function(raw, |b| b.iter(|| NormalizedName::new(black_box(raw)).unwrap()));
    }
    group.finish();
}

fn negotiation(c: &mut Criterion) {
    let mut group = c.benchmark_group("negotiate");
    for (label, accept) in
        [("pip", Some(PIP_ACCEPT)), ("uv", Some(UV_ACCEPT)), ("none", None), ("text_html", Some("text/html"))]
    {
        group.bench_function(label, |b| b.iter(|| negotiate(black_box(accept))));
    }
    group.finish();
}

fn clone_page(c: &mut Criterion) {
    // What a render on a page-cache miss starts from: the page model; its
    // clone cost bounds any copy-on-read design.
    let page = parsed_page();
    c.bench_function("clone_project_page_5000_files", |b| {
        b.iter_batched(|| (), |()| black_box(&page).clone(), BatchSize::SmallInput)
    });
}

criterion_group!(benches, render, parse, names, negotiation, clone_page);
criterion_main!(benches);
