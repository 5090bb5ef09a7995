use std::collections::BTreeMap;

use super::*;
use crate::simple::{CoreMetadataLink, UploadTime, Yanked};
use crate::{PageFormat, render_project_page};

const SHA: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const SHA_UPPER: &str = "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF";

fn name() -> NormalizedName {
    NormalizedName::new("foo").unwrap()
}

fn page_url() -> Url {
    Url::parse("https://mirror.example/simple/foo/").unwrap()
}

fn html(body: &str) -> ProjectPage {
    parse_project_page(body.as_bytes(), Some("text/html"), &page_url(), &name()).unwrap()
}

fn json(body: &str) -> ProjectPage {
    parse_project_page(body.as_bytes(), Some("application/vnd.pypi.simple.v1+json"), &page_url(), &name()).unwrap()
}

fn sha256(digest: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("sha256".to_owned(), digest.to_owned())])
}

fn only_file(page: &ProjectPage) -> &FileEntry {
    assert_eq!(page.files.len(), 1, "{page:#?}");
    &page.files[0]
}

// ---- HTML project pages ----

#[test]
fn html_relative_link_is_resolved_and_its_hash_taken_from_the_fragment() {
    let page = html(&format!(
        r#"<!DOCTYPE html><html><body><a href="../../packages/ab/cd/foo-1.0.tar.gz#sha256={SHA_UPPER}">foo-1.0.tar.gz</a><br/></body></html>"#
    ));
    let file = only_file(&page);
    assert_eq!(file.url, "https://mirror.example/packages/ab/cd/foo-1.0.tar.gz");
    assert_eq!(file.filename, "foo-1.0.tar.gz");
    assert_eq!(file.hashes, sha256(SHA));
    assert_eq!(file.requires_python, None);
    assert_eq!(file.core_metadata, CoreMetadataLink::Absent);
    assert_eq!(file.yanked, Yanked::No);
    assert_eq!((file.size, &file.upload_time, file.gpg_sig, &file.provenance), (None, &None, None, &None));
    assert_eq!(page.name, name());
    assert_eq!(page.versions, ["1.0"]);
    assert_eq!(page.last_serial, None);
}

#[test]
fn html_absolute_link_is_kept() {
    let page = html(
        r#"<a href="https://files.example.invalid/x/foo-1.0-py3-none-any.whl#md5=ABCDEF12">foo-1.0-py3-none-any.whl</a>"#,
    );
    let file = only_file(&page);
    assert_eq!(file.url, "https://files.example.invalid/x/foo-1.0-py3-none-any.whl");
    assert_eq!(file.hashes, BTreeMap::from([("md5".to_owned(), "abcdef12".to_owned())]));
}

#[test]
fn html_base_href_is_honoured_wherever_it_appears() {
    let page = html(
        r#"<html><head><base href="/files/"></head><body>
           <a href="foo-1.0.tar.gz">foo-1.0.tar.gz</a>
           <base href="https://ignored.example.invalid/">
           </body></html>"#,
    );
    assert_eq!(only_file(&page).url, "https://mirror.example/files/foo-1.0.tar.gz");
    let page = html(r#"<a href="foo-1.0.tar.gz">foo-1.0.tar.gz</a><base href="https://cdn.example.invalid/p/">"#);
    assert_eq!(only_file(&page).url, "https://cdn.example.invalid/p/foo-1.0.tar.gz");
}

#[test]
fn html_entities_are_decoded_in_href_and_text() {
    let page =
        html(r#"<a href="/f/foo-1.0.tar.gz?a=1&amp;b=2&#38;c=3&#x26;d=4#sha256=abcd">foo&#45;1.0&period;tar.gz</a>"#);
    let file = only_file(&page);
    assert_eq!(file.url, "https://mirror.example/f/foo-1.0.tar.gz?a=1&b=2&c=3&d=4");
    assert_eq!(file.filename, "foo-1.0.tar.gz");
    assert_eq!(file.hashes, sha256("abcd"));
}

#[test]
fn html_yanked_with_and_without_reason() {
    let page = html(
        r#"<a href="a/foo-1.0.tar.gz" data-yanked>foo-1.0.tar.gz</a>
           <a href="a/foo-1.1.tar.gz" data-yanked="">foo-1.1.tar.gz</a>
           <a href="a/foo-1.2.tar.gz" data-yanked="broken &lt;build&gt;">foo-1.2.tar.gz</a>
           <a href="a/foo-1.3.tar.gz">foo-1.3.tar.gz</a>"#,
    );
    let yanked: Vec<_> = page.files.iter().map(|f| f.yanked.clone()).collect();
    assert_eq!(yanked, [Yanked::Yes(None), Yanked::Yes(None), Yanked::Yes(Some("broken <build>".into())), Yanked::No]);
}

#[test]
fn html_core_metadata_prefers_the_pep_714_attribute() {
    let other = "1111111111111111111111111111111111111111111111111111111111111111";
    let page = html(&format!(
        r#"<a href="a/foo-1.0.whl" data-dist-info-metadata="sha256={other}" data-core-metadata="sha256={SHA_UPPER}">foo-1.0.whl</a>
           <a href="a/foo-1.1.whl" data-dist-info-metadata="sha256={other}">foo-1.1.whl</a>
           <a href="a/foo-1.2.whl" data-core-metadata="true">foo-1.2.whl</a>
           <a href="a/foo-1.3.whl" data-core-metadata="false" data-dist-info-metadata="true">foo-1.3.whl</a>
           <a href="a/foo-1.4.whl" data-core-metadata="sha256=not-hex">foo-1.4.whl</a>
           <a href="a/foo-1.5.whl" data-core-metadata>foo-1.5.whl</a>
           <a href="a/foo-1.6.whl">foo-1.6.whl</a>"#
    ));
    let metadata: Vec<_> = page.files.iter().map(|f| f.core_metadata.clone()).collect();
    assert_eq!(
        metadata,
        [
            CoreMetadataLink::Present(sha256(SHA)),
            CoreMetadataLink::Present(sha256(other)),
            CoreMetadataLink::Present(BTreeMap::new()),
            CoreMetadataLink::Absent,
            CoreMetadataLink::Present(BTreeMap::new()),
            CoreMetadataLink::Present(BTreeMap::new()),
            CoreMetadataLink::Absent,
        ]
    );
}

#[test]
fn html_requires_python_is_unescaped() {
    let page = html(r#"<a href="f/foo-1.0.tar.gz" data-requires-python="&gt;=3.8,&lt;4">foo-1.0.tar.gz</a>"#);
    assert_eq!(only_file(&page).requires_python.as_deref(), Some(">=3.8,<4"));
    let page = html(r#"<a href="f/foo-1.0.tar.gz" data-requires-python="">foo-1.0.tar.gz</a>"#);
    assert_eq!(only_file(&page).requires_python, None);
}

#[test]
fn html_gpg_sig_and_provenance() {
    let page = html(
        r#"<a href="f/foo-1.0.tar.gz" data-gpg-sig="TRUE" data-provenance="../../integrity/foo/1.0/foo-1.0.tar.gz/provenance">foo-1.0.tar.gz</a>
           <a href="f/foo-1.1.tar.gz" data-gpg-sig="false">foo-1.1.tar.gz</a>
           <a href="f/foo-1.2.tar.gz" data-gpg-sig="maybe">foo-1.2.tar.gz</a>"#,
    );
    assert_eq!(page.files[0].gpg_sig, Some(true));
    assert_eq!(
        page.files[0].provenance.as_deref(),
        Some("https://mirror.example/integrity/foo/1.0/foo-1.0.tar.gz/provenance")
    );
    assert_eq!(page.files[1].gpg_sig, Some(false));
    assert_eq!(page.files[2].gpg_sig, None);
}

#[test]
fn html_pep_708_and_792_meta_tags() {
    let page = html(
        r#"<html><head>
           <meta name="pypi:repository-version" content="1.4">
           <META NAME="pypi:tracks" CONTENT="https://upstream.example.invalid/simple/foo/">
           <meta name="pypi:tracks" content="/simple/foo-fork/">
           <meta name="pypi:alternate-locations" content="https://other.example.invalid/simple/foo/">
           <meta name="pypi:project-status" content="Archived">
           <meta name="pypi:project-status-reason" content="moved to &quot;bar&quot;">
           <meta name="description" content="not ours">
           </head><body></body></html>"#,
    );
    assert_eq!(
        page.tracks,
        ["https://upstream.example.invalid/simple/foo/", "https://mirror.example/simple/foo-fork/"]
    );
    assert_eq!(page.alternate_locations, ["https://other.example.invalid/simple/foo/"]);
    assert_eq!(
        page.status,
        Some(ProjectStatus { status: "archived".into(), reason: Some(r#"moved to "bar""#.into()) })
    );
    assert!(page.files.is_empty());
    let page = html(r#"<meta name="pypi:project-status" content="quarantined">"#);
    assert_eq!(page.status, Some(ProjectStatus { status: "quarantined".into(), reason: None }));
}

#[test]
fn html_hostile_filenames_and_urls_are_skipped() {
    let page = html(
        r#"<a href="f/x">../../etc/passwd</a>
           <a href="f/x">a\b.tar.gz</a>
           <a href="f/x">..</a>
           <a href="f/x">.</a>
           <a href="f/x">foo&#10;1.0.tar.gz</a>
           <a href="f/x">foo&#x2F;1.0.tar.gz</a>
           <a href="f/..%2F..%2Fetc"></a>
           <a href="f/"></a>
           <a href="file:///etc/passwd">foo-1.0.tar.gz</a>
           <a href="javascript:alert(1)">foo-1.0.tar.gz</a>
           <a href="http://[::1">foo-1.0.tar.gz</a>
           <a href="f/foo-1.0.tar.gz">foo-1.0.tar.gz</a>"#,
    );
    assert_eq!(only_file(&page).url, "https://mirror.example/simple/foo/f/foo-1.0.tar.gz");
}

#[test]
fn html_filename_falls_back_to_the_decoded_url_segment() {
    let page = html(r#"<a href="../../f/foo-1.0%2Blocal.tar.gz#sha256=abcd">  </a>"#);
    let file = only_file(&page);
    assert_eq!(file.filename, "foo-1.0+local.tar.gz");
    assert_eq!(file.url, "https://mirror.example/f/foo-1.0%2Blocal.tar.gz");
}

#[test]
fn html_non_hex_digests_are_dropped_but_the_file_kept() {
    let page = html(&format!(
        r#"<a href="f/foo-1.0.tar.gz#sha256=xyz&md5=ABCD">foo-1.0.tar.gz</a><a href="f/foo-1.1.tar.gz#sha256=">foo-1.1.tar.gz</a><a href="f/foo-1.2.tar.gz#{SHA}">foo-1.2.tar.gz</a>"#
    ));
    assert_eq!(page.files[0].hashes, BTreeMap::from([("md5".to_owned(), "abcd".to_owned())]));
    assert!(page.files[1].hashes.is_empty());
    assert!(page.files[2].hashes.is_empty());
}

#[test]
fn html_tag_soup_is_tolerated() {
    let page = html(
        "<!-- <a href=\"commented/foo-0.1.tar.gz\">foo-0.1.tar.gz</a> -->\n\
         <!--> <a href=f/foo-0.2.tar.gz>foo-0.2.tar.gz</a>\n\
         <A   HREF = 'f/foo-0.3.tar.gz'\n  DATA-YANKED  >  foo-0.3.tar.gz  </A>\n\
         <a href=f/foo-0.4.tar.gz data-requires-python=&gt;=3.8 data-gpg-sig=true>foo-0.4.tar.gz</a>\n\
         <a href=f/foo-0.45.tar.gz data-requires-python=>=3.8>foo-0.45.tar.gz</a>\n\
         <a name=\"anchor-without-href\">foo-9.9.tar.gz</a>\n\
         <a href=\"f/foo-0.5.tar.gz\" href=\"f/ignored.tar.gz\"><span><b>foo</b>-0.5</span>.tar.gz</a>\n\
         <script>document.write('<a href=\"f/foo-6.6.tar.gz\">foo-6.6.tar.gz</a>')</script>\n\
         <style>a::before { content: '</a>' }</STYLE>\n\
         <?xml junk?><p>1 < 2 > 0</p>\n\
         <a href=\"f/foo-0.6.tar.gz\">foo-0.6.tar.gz<a href=\"f/foo-0.7.tar.gz\">foo-0.7.tar.gz",
    );
    let files: Vec<_> = page.files.iter().map(|f| (f.filename.as_str(), f.url.rsplit('/').next().unwrap())).collect();
    assert_eq!(
        files,
        [
            ("foo-0.2.tar.gz", "foo-0.2.tar.gz"),
            ("foo-0.3.tar.gz", "foo-0.3.tar.gz"),
            ("foo-0.4.tar.gz", "foo-0.4.tar.gz"),
            ("=3.8>foo-0.45.tar.gz", "foo-0.45.tar.gz"),
            ("foo-0.5.tar.gz", "foo-0.5.tar.gz"),
            ("foo-0.6.tar.gz", "foo-0.6.tar.gz"),
            ("foo-0.7.tar.gz", "foo-0.7.tar.gz"),
        ]
    );
    assert_eq!(page.files[1].yanked, Yanked::Yes(None));
    assert_eq!(page.files[2].requires_python.as_deref(), Some(">=3.8"));
    assert_eq!(page.files[2].gpg_sig, Some(true));
    // As in browsers, an unquoted value cannot start with `>`: it ends the tag.
    assert_eq!(page.files[3].requires_python.as_deref(), None);
}

#[test]
fn html_versions_come_from_this_projects_distributions() {
    let page = html(
        r#"<a href="f/foo-1.10.tar.gz">foo-1.10.tar.gz</a>
           <a href="f/foo-1.9-py3-none-any.whl">foo-1.9-py3-none-any.whl</a>
           <a href="f/foo-1.9.tar.gz">foo-1.9.tar.gz</a>
           <a href="f/bar-7.0.tar.gz">bar-7.0.tar.gz</a>
           <a href="f/README.txt">README.txt</a>"#,
    );
    assert_eq!(page.files.len(), 5, "non-distribution files are kept for the caller to filter");
    assert_eq!(page.versions, ["1.9", "1.10"]);
}

#[test]
fn html_that_is_not_a_page_is_an_error() {
    let err = parse_project_page(b"Internal Server Error", Some("text/html"), &page_url(), &name()).unwrap_err();
    assert!(matches!(err, ParseError::Malformed { .. }), "{err:?}");
    let err = parse_project_page(b"<html>\0\x01\x02", None, &page_url(), &name()).unwrap_err();
    assert!(matches!(err, ParseError::Malformed { .. }), "{err:?}");
    let err = parse_project_page(b"", None, &page_url(), &name()).unwrap_err();
    assert!(matches!(err, ParseError::Malformed { .. }), "{err:?}");
    let error_page = b"<html><head><title>Maintenance</title></head><body><h1>Back soon</h1></body></html>";
    let err = parse_project_page(error_page, Some("text/html"), &page_url(), &name()).unwrap_err();
    assert!(matches!(err, ParseError::Malformed { .. }), "an error page must not read as an empty project: {err:?}");
    let empty_but_declared = br#"<meta name="pypi:repository-version" content="1.0"><body></body>"#;
    assert!(parse_project_page(empty_but_declared, None, &page_url(), &name()).unwrap().files.is_empty());
    let body = br#"<meta name="pypi:repository-version" content="2.0"><a href="f/foo-1.0.tar.gz">foo-1.0.tar.gz</a>"#;
    let err = parse_project_page(body, None, &page_url(), &name()).unwrap_err();
    assert!(err.to_string().contains("version 2.0"), "{err}");
}

// ---- JSON project pages ----

#[test]
fn json_with_every_field() {
    let page = json(&format!(
        r#"{{
          "meta": {{"api-version": "1.4", "_last-serial": "4242", "tracks": ["https://upstream.example.invalid/simple/foo/", 7], "future": true}},
          "name": "not-foo",
          "versions": ["1.10", "1.9", "2.0rc1", 3],
          "alternate-locations": ["/simple/foo-alt/"],
          "project-status": {{"status": "deprecated", "reason": "use bar"}},
          "files": [
            {{
              "filename": "foo-1.9-py3-none-any.whl",
              "url": "../../packages/ab/foo-1.9-py3-none-any.whl#sha256=ignored",
              "hashes": {{"SHA256": "{SHA_UPPER}", "blake2b": "not hex", "md5": 5}},
              "requires-python": ">=3.8, <4",
              "core-metadata": {{"sha256": "{SHA}"}},
              "dist-info-metadata": false,
              "gpg-sig": false,
              "yanked": " bad build\t",
              "size": 1234,
              "upload-time": "2024-01-02T03:04:05.123Z",
              "provenance": "../../integrity/foo/1.9/provenance",
              "extra": {{"ignored": []}}
            }},
            {{
              "filename": "foo-1.10.tar.gz",
              "url": "https://files.example.invalid/foo-1.10.tar.gz",
              "hashes": {{}},
              "dist-info-metadata": true,
              "yanked": true
            }},
            {{"filename": "foo-2.0rc1.tar.gz", "url": "f/foo-2.0rc1.tar.gz", "hashes": {{}}, "yanked": ""}}
          ]
        }}"#
    ));
    assert_eq!(page.name, name());
    assert_eq!(page.last_serial, Some(4242), "the public index writes the serial as a string");
    assert_eq!(page.versions, ["1.10", "1.9", "2.0rc1"], "the page's own list, in its order");
    assert_eq!(page.tracks, ["https://upstream.example.invalid/simple/foo/"]);
    assert_eq!(page.alternate_locations, ["https://mirror.example/simple/foo-alt/"]);
    assert_eq!(page.status, Some(ProjectStatus { status: "deprecated".into(), reason: Some("use bar".into()) }));
    let wheel = &page.files[0];
    assert_eq!(wheel.filename, "foo-1.9-py3-none-any.whl");
    assert_eq!(wheel.url, "https://mirror.example/packages/ab/foo-1.9-py3-none-any.whl");
    assert_eq!(wheel.hashes, sha256(SHA));
    assert_eq!(wheel.requires_python.as_deref(), Some(">=3.8, <4"));
    assert_eq!(wheel.core_metadata, CoreMetadataLink::Present(sha256(SHA)));
    assert_eq!(wheel.gpg_sig, Some(false));
    assert_eq!(wheel.yanked, Yanked::Yes(Some(" bad build\t".into())), "the reason as written");
    assert_eq!(wheel.size, Some(1234));
    assert_eq!(wheel.upload_time.as_ref().map(UploadTime::as_str), Some("2024-01-02T03:04:05.123Z"));
    assert_eq!(wheel.provenance.as_deref(), Some("https://mirror.example/integrity/foo/1.9/provenance"));
    let sdist = &page.files[1];
    assert_eq!(sdist.url, "https://files.example.invalid/foo-1.10.tar.gz");
    assert!(sdist.hashes.is_empty());
    assert_eq!(sdist.core_metadata, CoreMetadataLink::Present(BTreeMap::new()));
    assert_eq!(sdist.yanked, Yanked::Yes(None));
    assert_eq!((sdist.size, &sdist.upload_time, sdist.gpg_sig, &sdist.provenance), (None, &None, None, &None));
    assert_eq!(page.files[2].yanked, Yanked::Yes(None));
}

#[test]
fn json_wrong_types_are_ignored_and_incomplete_files_skipped() {
    let page = json(
        r#"{"meta": {"api-version": 1, "_last-serial": -3, "tracks": "x"},
            "versions": "1.0", "alternate-locations": {}, "project-status": "archived",
            "files": [
              {"filename": "foo-1.0.tar.gz", "url": "f/foo-1.0.tar.gz", "hashes": [], "requires-python": 3,
               "core-metadata": "yes", "dist-info-metadata": {"sha256": "ABCD"}, "gpg-sig": "true",
               "yanked": 1, "size": -1, "upload-time": "yesterday", "provenance": false},
              {"filename": "foo-1.1.tar.gz", "url": "f/foo-1.1.tar.gz", "size": 1.5, "core-metadata": null},
              {"url": "f/foo-1.2.tar.gz"},
              {"filename": "foo-1.3.tar.gz"},
              {"filename": 13, "url": "f/foo-1.3.tar.gz"},
              {"filename": "../foo-1.4.tar.gz", "url": "f/foo-1.4.tar.gz"},
              {"filename": "foo-1.5.tar.gz", "url": "file:///etc/passwd"},
              "foo-1.6.tar.gz",
              null
            ]}"#,
    );
    assert_eq!((page.last_serial, page.status.as_ref()), (None, None));
    assert!(page.tracks.is_empty() && page.alternate_locations.is_empty());
    assert_eq!(page.versions, ["1.0", "1.1"], "derived from the files when `versions` is unusable");
    let [first, second] = page.files.as_slice() else { panic!("{page:#?}") };
    assert!(first.hashes.is_empty());
    assert_eq!(first.requires_python, None);
    assert_eq!(first.core_metadata, CoreMetadataLink::Present(sha256("abcd")), "falls back to the legacy key");
    assert_eq!((first.gpg_sig, &first.yanked, first.size, &first.upload_time), (None, &Yanked::No, None, &None));
    assert_eq!(first.provenance, None);
    assert_eq!((second.size, &second.core_metadata), (None, &CoreMetadataLink::Absent));
}

#[test]
fn json_status_reads_the_peps_prose_key_too() {
    let page = json(r#"{"files": [], "project-status": {"state": "quarantined"}}"#);
    assert_eq!(page.status, Some(ProjectStatus { status: "quarantined".into(), reason: None }));
    let page = json(r#"{"files": [], "project-status": {"reason": "no marker"}}"#);
    assert_eq!(page.status, None);
}

#[test]
fn json_that_is_not_a_page_is_an_error() {
    let parse = |body: &str| parse_project_page(body.as_bytes(), Some("application/json"), &page_url(), &name());
    for (body, what) in [
        ("{\"files\": [", "NotJson"),
        ("{'files': []}", "NotJson"),
        ("[1, 2]", "Malformed"),
        ("\"text\"", "Malformed"),
        ("{}", "Malformed"),
        ("{\"files\": {}}", "Malformed"),
        ("{\"meta\": {\"api-version\": \"2.0\"}, \"files\": []}", "Malformed"),
        ("\u{feff}{\"files\": 3}", "Malformed"),
    ] {
        let err = parse(body).unwrap_err();
        let kind = match err {
            ParseError::NotJson { .. } => "NotJson",
            ParseError::Malformed { .. } => "Malformed",
            ParseError::TooLarge { .. } => "TooLarge",
        };
        assert_eq!(kind, what, "{body}: {err}");
    }
}

#[test]
fn json_nested_to_any_depth_is_read_without_recursing() {
    let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let body = format!(
        r#"{{"files": [{nested}, {{"filename": "foo-1.0.tar.gz", "url": "f/foo-1.0.tar.gz", "extra": {nested}}}], "x": {nested}}}"#
    );
    let page = parse_project_page(body.as_bytes(), None, &page_url(), &name()).unwrap();
    assert_eq!(page.files.len(), 1, "the list item that is not an object is skipped");
    let unclosed = format!("{{\"files\": [{}]}}", "[".repeat(100_000));
    assert!(matches!(
        parse_project_page(unclosed.as_bytes(), None, &page_url(), &name()),
        Err(ParseError::NotJson { .. })
    ));
}

// ---- format sniffing, limits, messages ----

#[test]
fn the_body_decides_the_format_over_the_content_type() {
    let json_body = br#"  {"files": [{"filename": "foo-1.0.tar.gz", "url": "f/foo-1.0.tar.gz", "hashes": {}}]}"#;
    for content_type in [Some("text/html; charset=utf-8"), None, Some("application/octet-stream")] {
        let page = parse_project_page(json_body, content_type, &page_url(), &name()).unwrap();
        assert_eq!(page.files.len(), 1, "{content_type:?}");
    }
    let html_body = b"\xEF\xBB\xBF\n<a href=\"f/foo-1.0.tar.gz\">foo-1.0.tar.gz</a>";
    let page = parse_project_page(html_body, Some("application/vnd.pypi.simple.v1+json"), &page_url(), &name());
    assert_eq!(page.unwrap().files.len(), 1);
    let text_body = b"Links for foo <a href=\"f/foo-1.0.tar.gz\">foo-1.0.tar.gz</a>";
    assert_eq!(parse_project_page(text_body, None, &page_url(), &name()).unwrap().files.len(), 1);
    let err = parse_project_page(text_body, Some("Application/JSON"), &page_url(), &name()).unwrap_err();
    assert!(matches!(err, ParseError::NotJson { .. }), "{err:?}");
}

#[test]
fn bodies_over_the_limit_are_refused() {
    let body = vec![b' '; MAX_BODY_BYTES + 1];
    let err = parse_project_page(&body, None, &page_url(), &name()).unwrap_err();
    assert_eq!(err, ParseError::TooLarge { page: Page::Project(name()), size: MAX_BODY_BYTES + 1 });
    assert!(matches!(parse_project_list(&body, None), Err(ParseError::TooLarge { page: Page::ProjectList, .. })));
}

#[test]
fn errors_say_which_page_and_what_is_wrong() {
    let err = parse_project_page(b"{\"files\": nope}", None, &page_url(), &name()).unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with("upstream page for foo is not valid PEP 691 JSON: expected ident at line 1 column 12"),
        "{message}"
    );
    let err = parse_project_list(b"{\"projects\": 1}", None).unwrap_err();
    assert_eq!(err.to_string(), "upstream project list is not a Simple API page: `projects` is a number, not an array");
}

// ---- project lists ----

#[test]
fn html_project_list() {
    let list = parse_project_list(
        br#"<!DOCTYPE html><html><body>
            <a href="/simple/zope-interface/">zope.interface</a>
            <a href="foo-bar/"> Foo_Bar </a>
            <a href="foo-bar/">foo-bar</a>
            <a href="bad/">-bad-</a>
            <a href="x/"></a>
            <a>Nohref</a>
            <a href="a/">A</a>
            </body></html>"#,
        Some("text/html"),
    )
    .unwrap();
    let names: Vec<_> = list.projects.iter().map(|p| (p.display_name.as_str(), p.name.as_str())).collect();
    assert_eq!(names, [("A", "a"), ("Foo_Bar", "foo-bar"), ("zope.interface", "zope-interface")]);
    assert_eq!(list.last_serial, None);
}

#[test]
fn json_project_list() {
    let list = parse_project_list(
        br#"{"meta": {"api-version": "1.1", "_last-serial": 99},
             "projects": [{"name": "Zed"}, {"name": "foo.bar"}, {"name": "bad name"}, {"name": 3}, {}, "x", {"name": "Foo-Bar"}]}"#,
        Some("application/vnd.pypi.simple.v1+json"),
    )
    .unwrap();
    let names: Vec<_> = list.projects.iter().map(|p| (p.display_name.as_str(), p.name.as_str())).collect();
    assert_eq!(names, [("foo.bar", "foo-bar"), ("Zed", "zed")]);
    assert_eq!(list.last_serial, Some(99));
    assert!(matches!(parse_project_list(b"{\"meta\": {}}", None), Err(ParseError::Malformed { .. })));
    assert!(matches!(parse_project_list(b"plain text", None), Err(ParseError::Malformed { .. })));
}

// ---- round trips through our own renderers ----

fn sample_page() -> ProjectPage {
    let files = vec![
        FileEntry {
            filename: "foo-1.0-py3-none-any.whl".into(),
            url: "https://mirror.example/files/aa/foo-1.0-py3-none-any.whl".into(),
            hashes: sha256(SHA),
            requires_python: Some(">=3.8,<4".into()),
            core_metadata: CoreMetadataLink::Present(sha256("bb")),
            gpg_sig: Some(false),
            yanked: Yanked::No,
            size: Some(123),
            upload_time: UploadTime::parse("2024-01-02T03:04:05.5Z"),
            provenance: Some("https://mirror.example/integrity/foo/1.0/provenance".into()),
        },
        FileEntry {
            filename: "foo-0.9.tar.gz".into(),
            url: "https://mirror.example/files/cc/foo-0.9.tar.gz?x=1&y=2".into(),
            hashes: sha256("cc"),
            requires_python: None,
            core_metadata: CoreMetadataLink::Absent,
            gpg_sig: None,
            yanked: Yanked::Yes(Some("broken <build> & \"more\"".into())),
            size: Some(45),
            upload_time: None,
            provenance: None,
        },
    ];
    ProjectPage {
        name: name(),
        files,
        versions: vec!["0.9".into(), "1.0".into()],
        last_serial: Some(7),
        tracks: vec!["https://upstream.example.invalid/simple/foo/".into()],
        alternate_locations: vec!["https://other.example.invalid/simple/foo/".into()],
        status: Some(ProjectStatus { status: "archived".into(), reason: Some("done <here>".into()) }),
        namespaces: BTreeMap::new(),
    }
}

#[test]
fn rendered_json_parses_back_to_the_same_page() {
    let page = sample_page();
    let rendered = render_project_page(&page, PageFormat::Json);
    let parsed =
        parse_project_page(rendered.as_bytes(), Some("application/vnd.pypi.simple.v1+json"), &page_url(), &name());
    assert_eq!(parsed.unwrap(), page);
}

#[test]
fn rendered_html_parses_back_to_the_same_page_less_json_only_fields() {
    let mut page = sample_page();
    let rendered = render_project_page(&page, PageFormat::Html);
    let parsed = parse_project_page(rendered.as_bytes(), Some("text/html"), &page_url(), &name()).unwrap();
    page.last_serial = None;
    for file in &mut page.files {
        file.size = None;
        file.upload_time = None;
    }
    assert_eq!(parsed, page);
}

// ---- robustness: never panic, linear work ----

/// A small deterministic generator (xorshift64*), so no dev-dependency is
/// needed for random inputs.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Parses `body` every way there is; only a panic fails.
fn parse_every_way(body: &[u8]) {
    for content_type in [None, Some("text/html"), Some("application/vnd.pypi.simple.v1+json")] {
        let _ = parse_project_page(body, content_type, &page_url(), &name());
        let _ = parse_project_list(body, content_type);
    }
}

fn sample_bodies() -> [String; 3] {
    let page = sample_page();
    let tag_soup = r#"<!DOCTYPE html><!-- c --><A HREF='../x/foo-1.0.tar.gz#sha256=AB' data-yanked data-core-metadata=true>foo&amp;1</a><base href=/b/><meta name=pypi:tracks content="&#x2F;t"><script><a href=z></script>"#;
    [render_project_page(&page, PageFormat::Html), render_project_page(&page, PageFormat::Json), tag_soup.to_owned()]
}

#[test]
fn every_prefix_of_a_real_page_parses_without_panicking() {
    for body in sample_bodies() {
        let bytes = body.as_bytes();
        for end in 0..=bytes.len() {
            parse_every_way(&bytes[..end]);
            parse_every_way(&bytes[end..]);
        }
    }
}

#[test]
fn random_and_mutated_bytes_parse_without_panicking() {
    let mut random = Random(0x5EED_1234_ABCD_0001);
    let alphabet = b"<>/=\"'&#;!-?ax{}[]:,\\ \n\0\xC3\xA9\xFF";
    for _ in 0..3_000 {
        let len = random.below(200);
        let body: Vec<u8> = (0..len).map(|_| alphabet[random.below(alphabet.len())]).collect();
        parse_every_way(&body);
        let raw: Vec<u8> = (0..len).map(|_| random.next() as u8).collect();
        parse_every_way(&raw);
    }
    for body in sample_bodies() {
        for _ in 0..500 {
            let mut bytes = body.clone().into_bytes();
            for _ in 0..1 + random.below(4) {
                let at = random.below(bytes.len());
                bytes[at] = alphabet[random.below(alphabet.len())];
            }
            parse_every_way(&bytes);
        }
    }
}

#[test]
fn pathological_markup_takes_linear_time() {
    // Each of these would take hours if any construct were rescanned from
    // every `<` or `&`; linear scanning does them in well under a second.
    let n = 200_000;
    let bodies = [
        "<a href=\"".repeat(n),
        "<a href='x' ".repeat(n),
        "<!--".repeat(n),
        "<a ".repeat(n) + ">",
        format!("<a href=x>{}</a>", "&amp".repeat(n)),
        format!("<a href=x {}>x</a>", "b ".repeat(n)),
        format!("<script>{}", "</scrip".repeat(n)),
        "<a href=x>".repeat(n / 4),
        "</".repeat(n),
        "<".repeat(n),
    ];
    let started = std::time::Instant::now();
    for body in &bodies {
        let _ = parse_project_page(body.as_bytes(), Some("text/html"), &page_url(), &name());
        let _ = parse_project_list(body.as_bytes(), Some("text/html"));
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(60), "{:?}", started.elapsed());
}
