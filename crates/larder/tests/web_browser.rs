//! The web pages in a real browser: headless Chromium (Debian's
//! `chromium` and `chromium-driver`, which `scripts/test` installs; the
//! test fails, saying so, when they are missing) loads `/`, searches a
//! project through the form, follows a result to the project's page and
//! reads what is on it (versions, files, the install command with this
//! server's real URL), then checks the pages at a phone's width (390 px:
//! nothing wider than the screen).
//!
//! A PNG screenshot of each page is kept as a test artifact in
//! `target/test-artifacts/browse/` (`home.png`, `search.png`,
//! `project.png`, `project-1.0.png`, `phone-search.png`,
//! `phone-project.png`), replaced on every run.

mod common;

use common::*;

/// The viewport of a phone in portrait (CSS pixels).
const PHONE: (u32, u32) = (390, 844);

/// The text of the first element matching `css`.
async fn text_of(browser: &Browser, css: &str) -> String {
    let element = browser.client().find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("no `{css}`: {e}"));
    element.text().await.expect("element text")
}

/// The texts of every element matching `css`.
async fn texts_of(browser: &Browser, css: &str) -> Vec<String> {
    let mut texts = Vec::new();
    for element in browser.client().find_all(Locator::Css(css)).await.expect("find elements") {
        texts.push(element.text().await.expect("element text"));
    }
    texts
}

/// Waits until the browser shows `url` (after a click or a form).
async fn wait_for_url(browser: &Browser, url: &str) {
    let url = Url::parse(url).expect("a URL");
    browser.client().wait().for_url(&url).await.unwrap_or_else(|e| panic!("never reached {url}: {e}"));
}

/// Asserts that the page is no wider than the window (no sideways
/// scrolling) and that the window is the phone's width.
async fn assert_fits_phone(browser: &Browser, page: &str) {
    let widths = browser.eval("return [document.documentElement.scrollWidth, window.innerWidth];").await;
    let (scroll, inner) = (widths[0].as_u64().unwrap(), widths[1].as_u64().unwrap());
    assert_eq!(inner, u64::from(PHONE.0), "the window is not a phone's width on {page}");
    assert!(scroll <= inner, "{page} is {scroll} px wide on a {inner} px screen");
}

#[tokio::test]
async fn search_follow_a_result_and_read_the_project_page_in_chromium() {
    let fixtures = temp_dir("browser-fx");
    let data = temp_dir("browser-data");
    let old = Wheel::new("fixture-browse", "1.0").build(fixtures.path());
    let new = Wheel::new("fixture-browse", "2.0")
        .summary("A project to browse in a real browser")
        .requires_dist("fixture-dep>=1")
        .build(fixtures.path());
    // A long name and long file names: they must wrap on a phone.
    let long =
        Wheel::new("fixture-browse-with-a-rather-long-name-for-narrow-phone-screens", "1.0").build(fixtures.path());
    let upstream = FixtureUpstream::start(UpstreamFormat::Json);
    for built in [&old, &new, &long, &Wheel::new("fixture-unrelated", "1.0").build(fixtures.path())] {
        upstream.add(built);
    }
    upstream.set_serve_metadata(true);
    let url = upstream.simple_url();
    let server = larder().serve_with(data.path(), &["--upstream", url.as_str()]);
    let base = format!("http://{}/", server.addr());
    let shots = artifacts_dir("browse");
    let browser = Browser::start().await;

    // The home page: a search form and how to use this index.
    browser.client().goto(&base).await.expect("load /");
    assert!(browser.client().title().await.unwrap().contains("larder"));
    assert_eq!(text_of(&browser, "h1").await, "Package index");
    let install = text_of(&browser, "main pre code").await;
    assert!(install.contains(&format!("pip install --index-url {base}simple/ PROJECT")), "{install}");
    browser.screenshot(&shots.join("home.png")).await;

    // Search through the form, as a person would.
    let field = browser.client().find(Locator::Css("form.search input[name=q]")).await.expect("search field");
    field.send_keys("browse").await.expect("type");
    browser.client().find(Locator::Css("form.search button[type=submit]")).await.unwrap().click().await.unwrap();
    wait_for_url(&browser, &format!("{base}?q=browse")).await;
    assert_eq!(text_of(&browser, "p.summary").await, "2 projects match browse.");
    let results = texts_of(&browser, "ul.results li a").await;
    assert_eq!(results.len(), 2, "{results:?}");
    assert!(results.contains(&"fixture-browse".to_owned()), "{results:?}");
    browser.screenshot(&shots.join("search.png")).await;

    // Follow the result to the project's page: its latest version.
    browser.client().find(Locator::LinkText("fixture-browse")).await.expect("result link").click().await.unwrap();
    wait_for_url(&browser, &format!("{base}pypi/fixture-browse/")).await;
    assert_eq!(text_of(&browser, "h1").await, "fixture-browse 2.0");
    assert_eq!(text_of(&browser, "p.project-summary").await, "A project to browse in a real browser");
    let install = text_of(&browser, "main pre code").await;
    assert!(install.contains(&format!("pip install --index-url {base}simple/ fixture-browse==2.0")), "{install}");
    assert!(install.contains(&format!("uv pip install --index-url {base}simple/ fixture-browse==2.0")), "{install}");
    assert_eq!(texts_of(&browser, "ul.requires li").await, ["fixture-dep>=1"]);
    assert_eq!(texts_of(&browser, "ul.versions li").await, ["2.0", "1.0"]);
    let cells = texts_of(&browser, "table.files tbody tr td").await;
    assert_eq!(cells[0], new.filename, "{cells:?}");
    assert_eq!(cells[3], "no", "not fetched through larder yet: {cells:?}");
    assert_eq!(cells[4], new.sha256, "{cells:?}");
    browser.screenshot(&shots.join("project.png")).await;

    // Another version from the list.
    browser.client().find(Locator::LinkText("1.0")).await.expect("version link").click().await.unwrap();
    wait_for_url(&browser, &format!("{base}pypi/fixture-browse/?version=1.0")).await;
    assert_eq!(text_of(&browser, "h1").await, "fixture-browse 1.0");
    assert_eq!(text_of(&browser, "table.files td.file a").await, old.filename);
    browser.screenshot(&shots.join("project-1.0.png")).await;

    // At a phone's width nothing is wider than the screen, and the search
    // button is on it.
    browser.viewport(PHONE.0, PHONE.1, true).await;
    browser.client().goto(&format!("{base}?q=browse")).await.unwrap();
    assert_fits_phone(&browser, "the search page").await;
    let button = browser.client().find(Locator::Css("form.search button")).await.unwrap();
    let (x, _, width, _) = button.rectangle().await.unwrap();
    assert!(x + width <= f64::from(PHONE.0), "the search button is off the screen at x {x} + {width}");
    browser.screenshot(&shots.join("phone-search.png")).await;
    let long_page = format!("{base}pypi/fixture-browse-with-a-rather-long-name-for-narrow-phone-screens/");
    browser.client().goto(&long_page).await.unwrap();
    assert_eq!(text_of(&browser, "table.files td.file a").await, long.filename);
    assert_fits_phone(&browser, "a project page with long names").await;
    browser.screenshot(&shots.join("phone-project.png")).await;

    for shot in ["home", "search", "project", "project-1.0", "phone-search", "phone-project"] {
        let path = shots.join(format!("{shot}.png"));
        assert!(std::fs::metadata(&path).map(|m| m.len() > 1000).unwrap_or(false), "no screenshot {}", path.display());
    }
    browser.close().await;
}
