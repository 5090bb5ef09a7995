//! The web pages for people: search over the upstream's whole list and
//! hosted projects, a project's page (versions, files, yank reasons,
//! stored or not, summary and requirements from the core metadata), the
//! install commands with this server's own URL, and hostile values
//! escaped; uploads to `/<index>/` still work beside the page there.

mod common;

use common::*;

#[test]
fn search_and_project_pages_show_escaped_content_with_the_real_url() {
    let fixtures = temp_dir("web-fx");
    let data = temp_dir("web-data");
    let hostile = "<script>alert(1)</script> & \"quoted\"";
    let old = Wheel::new("fixture-web", "1.0").build(fixtures.path());
    let new = Wheel::new("fixture-web", "2.0")
        .summary(hostile)
        .requires_dist("fixture-dep<2; extra == '<b>'")
        .requires_python(">=3.8")
        .build(fixtures.path());
    let upstream = FixtureUpstream::start(UpstreamFormat::Json);
    upstream.add(&old);
    upstream.add_file(UpstreamFile::new(&new).yanked(hostile));
    upstream.add(&Wheel::new("fixture-other", "1.0").build(fixtures.path()));
    upstream.set_serve_metadata(true);
    let hosted = temp_dir("web-hosted");
    Wheel::new("Fixture_Hosted_Web", "1.0").build(hosted.path());
    larder().add(data.path(), &[hosted.path()]).assert_success();
    let url = upstream.simple_url();
    let server = larder().serve_with(data.path(), &["--upstream", url.as_str()]);
    let base = format!("http://{}/", server.addr());

    let home = server.get("/?q=.Web").send();
    home.assert_status(200);
    assert_eq!(home.media_type().as_deref(), Some("text/html"));
    let text = home.text();
    let links: Vec<String> = html::tags(&text, "a").iter().filter_map(|a| a.attr("href").map(str::to_owned)).collect();
    assert!(links.contains(&format!("{base}pypi/fixture-web/")), "{text}");
    assert!(links.contains(&format!("{base}pypi/fixture-hosted-web/")), "a hosted project is found too: {text}");
    assert!(!links.iter().any(|l| l.contains("fixture-other")), "{text}");
    assert!(text.contains("2 projects match"), "{text}");
    assert!(text.contains(&format!("pip install --index-url {base}simple/ PROJECT")), "{text}");
    assert!(text.contains("Projects upstream</dt><dd>2 (list"), "{text}");

    // The project page: the latest release (its yank reason escaped), the
    // summary and requirements from its core metadata, escaped.
    let page = server.get("/pypi/fixture-web/?version=2.0").send();
    page.assert_status(200);
    let text = page.text();
    assert!(!text.contains("<script>"), "unescaped: {text}");
    assert!(text.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quoted&quot;"), "{text}");
    assert!(text.contains("yanked: &lt;script&gt;"), "{text}");
    assert!(text.contains("fixture-dep&lt;2; extra == &#x27;&lt;b&gt;&#x27;"), "{text}");
    assert!(text.contains("Python &gt;=3.8"), "{text}");
    assert!(text.contains(&new.filename) && text.contains(&new.sha256), "{text}");
    assert!(text.contains(&format!("pip install --index-url {base}simple/ fixture-web==2.0")), "{text}");
    assert!(text.contains("?version=1.0"), "{text}");
    // A file fetched through larder shows as stored.
    let before = server.get("/pypi/fixture-web/?version=1.0").send().text();
    assert!(before.contains("<td>no</td>"), "{before}");
    let json = server.get("/simple/fixture-web/").header("Accept", JSON).send().json();
    let file_url =
        json["files"].as_array().unwrap().iter().find(|f| f["filename"] == old.filename.as_str()).unwrap()["url"]
            .as_str()
            .unwrap()
            .to_owned();
    let file = server.get_url(&resolve(&server.url("/simple/fixture-web/"), &file_url)).send();
    file.assert_status(200);
    // The blob is published (made durable, renamed into place) just after
    // the client has its last byte: the page says so within moments.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let after = loop {
        let page = server.get("/pypi/fixture-web/?version=1.0").send().text();
        if page.contains("<td>yes</td>") || std::time::Instant::now() > deadline {
            break page;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(after.contains("<td>yes</td>"), "{after}");

    // A non-normalized name redirects; an unknown one is a 404.
    let r = server.get("/pypi/Fixture_Web/").send();
    assert_eq!(r.status, 308, "{}", r.describe());
    assert_eq!(server.get("/pypi/no-such-project/").send().status, 404);
    let css = server.get("/static/larder.css").send();
    css.assert_status(200);
    assert_eq!(css.media_type().as_deref(), Some("text/css"));

    // A named index has its page at /<index>/, beside its upload URL.
    let named = server.get("/local/?q=hosted").send();
    named.assert_status(200);
    assert!(named.text().contains(&format!("{base}local/pypi/fixture-hosted-web/")), "{}", named.text());
    assert!(named.text().contains(&format!("{base}local/simple/")), "{}", named.text());
    let moved = server.get("/local?q=hosted").send();
    assert_eq!((moved.status, moved.header("location")), (308, Some("local/?q=hosted")), "{}", moved.describe());
    // What a browser asks every site for is not found (not "method not allowed").
    assert_eq!(server.get("/favicon.ico").send().status, 404);
    let upload = server.request("POST", "/local/").send();
    assert!(upload.status == 401 || upload.status == 400, "{}", upload.describe());
}

/// Behind a proxy that publishes larder under another URL, `--public-url`
/// is what the pages' install commands and links say, whatever `Host` the
/// request carried; a URL that is not http(s) is refused at start.
#[test]
fn a_configured_public_url_is_what_the_pages_show() {
    let data = temp_dir("web-public-data");
    let hosted = temp_dir("web-public-hosted");
    Wheel::new("fixture-public", "1.0").build(hosted.path());
    larder().add(data.path(), &[hosted.path()]).assert_success();
    let public = "https://packages.example.test/pypi/";
    let server = larder().serve_with(data.path(), &["--offline", "--public-url", "https://packages.example.test/pypi"]);

    let home = server.get("/?q=fixture").header("Host", "internal:8080").send().assert_status(200).text();
    assert!(home.contains(&format!("pip install --index-url {public}simple/ PROJECT")), "{home}");
    assert!(home.contains(&format!("href=\"{public}pypi/fixture-public/\"")), "{home}");
    assert!(!home.contains("internal:8080"), "{home}");
    let page = server.get("/pypi/fixture-public/").send().assert_status(200).text();
    assert!(page.contains(&format!("pip install --index-url {public}simple/ fixture-public==1.0")), "{page}");
    drop(server);

    let out = run(larder()
        .command()
        .args(["serve", "--offline", "--public-url", "ftp://host/"])
        .arg("--data-dir")
        .arg(data.path()));
    assert!(!out.status.success());
    assert!(describe_output(&out).contains("must start with http:// or https://"), "{}", describe_output(&out));
}
