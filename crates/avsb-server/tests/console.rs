//! The console over its routes, in process: sign-in and its cookie, the security headers, CSRF
//! on every form, roles (a viewer changes nothing, another project is not found), inert HTML in
//! names, descriptions, payloads and rules, sign-in throttling, and the change flows (edit →
//! review → save authored by the user, a stale edit shown, a kill needing the typed name).
//! The pages in a real browser are tested by tests/console (Playwright).

use std::collections::BTreeSet;
use std::sync::Arc;

use avsb_server::ops::accounts;
use avsb_server::store::ProjectRole;
use avsb_server::{app, demo, AppState, Options, SharedState};
use avsb_server::store::SqliteStore;
use axum::body::Body;
use axum::http::{header, Request};
use tower::ServiceExt;

const HOST: &str = "console.test";
const PASSWORD: &str = "a long enough password";

struct Instance {
    state: SharedState,
    _data: tempfile::TempDir,
}

struct Answer {
    status: u16,
    headers: axum::http::HeaderMap,
    body: String,
}

/// A signed-in browser: its session cookie and the CSRF token its pages carry.
struct Browser {
    cookie: String,
    csrf: String,
}

async fn start(options: Options) -> Instance {
    let data = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&data.path().join("avsb.sqlite3")).unwrap();
    let state = AppState::load(Arc::new(store), options).await.unwrap();
    demo::ensure(&state, data.path()).await.unwrap();
    Instance { state, _data: data }
}

fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf-token\" content=\"").expect("the page carries a CSRF token") + 27;
    html[at..].split('"').next().unwrap().to_string()
}

fn encode(fields: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish()
}

impl Instance {
    async fn send(&self, method: &str, path: &str, cookie: Option<&str>, form: Option<String>, origin: Option<&str>) -> Answer {
        let mut request = Request::builder().method(method).uri(path).header(header::HOST, HOST);
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, cookie);
        }
        if let Some(origin) = origin {
            request = request.header(header::ORIGIN, origin);
        }
        let body = match form {
            Some(form) => {
                request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
                Body::from(form)
            }
            None => Body::empty(),
        };
        let response = app(Arc::clone(&self.state)).oneshot(request.body(body).unwrap()).await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        Answer { status, headers, body: String::from_utf8_lossy(&bytes).into_owned() }
    }

    async fn get(&self, browser: &Browser, path: &str) -> Answer {
        self.send("GET", path, Some(&browser.cookie), None, None).await
    }

    async fn post(&self, browser: &Browser, path: &str, fields: &[(&str, &str)]) -> Answer {
        let mut all = vec![("csrf", browser.csrf.as_str())];
        all.extend_from_slice(fields);
        self.send("POST", path, Some(&browser.cookie), Some(encode(&all)), Some(&format!("http://{HOST}"))).await
    }

    /// Signs in through the login form, as a browser does.
    async fn sign_in(&self, username: &str, password: &str) -> Result<Browser, Answer> {
        let page = self.send("GET", "/login", None, None, None).await;
        let form_cookie = set_cookies(&page.headers).into_iter().find(|c| c.starts_with("avsb_form=")).expect("a form cookie");
        let form_cookie = form_cookie.split(';').next().unwrap().to_string();
        let token = csrf_of(&page.body);
        let fields = encode(&[("csrf", &token), ("username", username), ("password", password), ("next", "/projects")]);
        let answer = self.send("POST", "/login", Some(&form_cookie), Some(fields), Some(&format!("http://{HOST}"))).await;
        if answer.status != 303 {
            return Err(answer);
        }
        let session = set_cookies(&answer.headers).into_iter().find(|c| c.contains("avsb_session=")).expect("a session cookie");
        let cookie = session.split(';').next().unwrap().to_string();
        let home = self.send("GET", "/projects", Some(&cookie), None, None).await;
        assert_eq!(home.status, 200, "{}", home.body);
        Ok(Browser { csrf: csrf_of(&home.body), cookie })
    }

    async fn user(&self, username: &str, role: Option<ProjectRole>) -> Browser {
        let store = &*self.state.store;
        let user = accounts::create_user(store, username, "", PASSWORD, false, "test").await.unwrap();
        if let Some(role) = role {
            let project = store.project("demo").await.unwrap().unwrap();
            accounts::set_role(store, &project, &user, Some(role), "test").await.unwrap();
        }
        self.sign_in(username, PASSWORD).await.map_err(|a| a.body).unwrap()
    }

    async fn owner(&self) -> Browser {
        let store = &*self.state.store;
        accounts::create_user(store, "olga", "Olga", PASSWORD, true, "test").await.unwrap();
        self.sign_in("olga", PASSWORD).await.map_err(|a| a.body).unwrap()
    }

    fn revision(&self, env: &str) -> i64 {
        self.state.current("demo", env).unwrap().revision.id
    }
}

fn set_cookies(headers: &axum::http::HeaderMap) -> Vec<String> {
    headers.get_all(header::SET_COOKIE).iter().map(|v| v.to_str().unwrap().to_string()).collect()
}

/// Every POST route of the console, read from its router, with a path that fills its
/// parameters (the demo project, its first test and environment, key and token 1).
fn post_routes() -> Vec<String> {
    let source = include_str!("../src/console/mod.rs");
    let mut routes = BTreeSet::new();
    for line in source.lines().map(str::trim).filter(|l| l.starts_with(".route(\"")) {
        let path = line[8..].split('"').next().unwrap();
        if line.contains("post(") {
            let filled = path
                .replace("{project}", "demo")
                .replace("{test}", "buttoncolortst")
                .replace("{env}", "development")
                .replace("{id}", "1")
                .replace("{n}", "1")
                .replace("{revision}", "1")
                .replace("{metric}", "purchase-rate");
            routes.insert(filled);
        }
    }
    routes.into_iter().collect()
}

#[tokio::test]
async fn signing_in_sets_an_http_only_same_site_session_cookie() {
    let s = start(Options::default()).await;
    s.owner().await;
    let page = s.send("GET", "/login", None, None, None).await;
    let token = csrf_of(&page.body);
    let form_cookie = set_cookies(&page.headers).into_iter().find(|c| c.starts_with("avsb_form=")).unwrap();
    let fields = encode(&[("csrf", &token), ("username", "olga"), ("password", PASSWORD)]);
    let answer = s.send("POST", "/login", Some(form_cookie.split(';').next().unwrap()), Some(fields), Some("http://console.test")).await;
    assert_eq!(answer.status, 303);
    let cookie = set_cookies(&answer.headers).into_iter().find(|c| c.starts_with("avsb_session=")).unwrap();
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(flag), "{cookie} lacks {flag}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP without --secure-cookies: {cookie}");

    let secure = start(Options { secure_cookies: true, ..Options::default() }).await;
    secure.owner().await.cookie.starts_with("__Host-avsb_session=").then_some(()).expect("the __Host- prefix");
    let page = secure.send("GET", "/login", None, None, None).await;
    let token = csrf_of(&page.body);
    let form_cookie = set_cookies(&page.headers).into_iter().find(|c| c.contains("avsb_form=")).unwrap();
    let fields = encode(&[("csrf", &token), ("username", "olga"), ("password", PASSWORD)]);
    let answer = secure.send("POST", "/login", Some(form_cookie.split(';').next().unwrap()), Some(fields), Some("http://console.test")).await;
    let cookie = set_cookies(&answer.headers).into_iter().find(|c| c.contains("avsb_session=")).unwrap();
    assert!(cookie.starts_with("__Host-avsb_session=") && cookie.contains("; Secure"), "{cookie}");
}

#[tokio::test]
async fn every_console_answer_carries_the_security_headers() {
    let s = start(Options::default()).await;
    let browser = s.owner().await;
    for path in ["/login", "/projects", "/projects/demo", "/projects/demo/tests/buttoncolortst", "/projects/nope"] {
        let answer = s.get(&browser, path).await;
        let csp = answer.headers.get("content-security-policy").unwrap().to_str().unwrap();
        assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline") && csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(answer.headers.get("x-frame-options").unwrap(), "DENY", "{path}");
        assert_eq!(answer.headers.get("referrer-policy").unwrap(), "same-origin", "{path}");
        assert_eq!(answer.headers.get("x-content-type-options").unwrap(), "nosniff", "{path}");
        assert!(!answer.body.contains("<script>"), "{path}: no inline script");
    }
}

#[tokio::test]
async fn every_form_refuses_a_request_without_the_session_csrf_token_or_from_another_site() {
    let s = start(Options::default()).await;
    let browser = s.owner().await;
    let before = (s.revision("development"), s.revision("production"));
    let routes = post_routes();
    assert!(routes.len() >= 15, "the router's POST routes: {routes:?}");
    for path in &routes {
        if path == "/login" || path == "/setup" {
            continue; // anonymous forms: tested below with their double-submit cookie
        }
        let origin = Some("http://console.test");
        let none = s.send("POST", path, Some(&browser.cookie), Some(encode(&[("name", "x")])), origin).await;
        assert_eq!(none.status, 403, "{path} without a token: {}", none.body);
        let wrong = s.send("POST", path, Some(&browser.cookie), Some(encode(&[("csrf", "0000"), ("name", "x")])), origin).await;
        assert_eq!(wrong.status, 403, "{path} with a wrong token");
        let elsewhere = s.send("POST", path, Some(&browser.cookie), Some(encode(&[("csrf", &browser.csrf)])), Some("https://evil.example")).await;
        assert_eq!(elsewhere.status, 403, "{path} from another site");
        let no_origin = s.send("POST", path, Some(&browser.cookie), Some(encode(&[("csrf", &browser.csrf)])), None).await;
        assert_eq!(no_origin.status, 403, "{path} without Origin or Referer");
    }
    // The anonymous forms: a token that does not match the form cookie is refused.
    for path in ["/login", "/setup"] {
        let answer = s.send("POST", path, Some("avsb_form=abc"), Some(encode(&[("csrf", "abd"), ("username", "olga"), ("password", PASSWORD)])), Some("http://console.test")).await;
        assert_eq!(answer.status, 403, "{path}: {}", answer.body);
    }
    assert_eq!((s.revision("development"), s.revision("production")), before, "nothing was written");
    assert!(s.state.store.list_sdk_keys(1).await.unwrap().len() <= 1);
}

#[tokio::test]
async fn a_viewer_can_read_but_every_mutating_route_refuses_them() {
    let s = start(Options::default()).await;
    let viewer = s.user("vic", Some(ProjectRole::Viewer)).await;
    for path in [
        "/projects/demo",
        "/projects/demo/tests/buttoncolortst",
        "/projects/demo/settings/environments",
        "/projects/demo/settings/members",
        "/projects/demo/metrics",
        "/projects/demo/tests/checkout-v2/results",
    ] {
        let page = s.get(&viewer, path).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(!page.body.contains(">Edit<") && !page.body.contains("Create SDK key"), "{path} offers no change to a viewer");
    }
    let before: Vec<i64> = ["development", "staging", "production"].iter().map(|e| s.revision(e)).collect();
    let fields: &[(&str, &str)] = &[
        ("env", "development"), ("base", "1"), ("kind", "kill"), ("test", "buttoncolortst"), ("bucket", "0"),
        ("confirm", "buttoncolortst"), ("comment", "x"), ("name", "x"), ("template", "boolean"), ("username", "vic"),
        ("role", "admin"), ("protected", "1"), ("revision", "1"), ("from", "development"), ("to", "staging"),
        ("tests", "buttoncolortst"), ("schema", "{}"), ("version", "1"),
    ];
    for path in post_routes() {
        if matches!(path.as_str(), "/login" | "/setup" | "/logout" | "/account/password" | "/projects") {
            continue; // their own account, or not a project's
        }
        let answer = s.post(&viewer, &path, fields).await;
        assert_eq!(answer.status, 403, "{path} must refuse a viewer: {}", answer.status);
    }
    let create = s.post(&viewer, "/projects", &[("key", "mine"), ("name", "Mine")]).await;
    assert_eq!(create.status, 403, "only owners create projects");
    let after: Vec<i64> = ["development", "staging", "production"].iter().map(|e| s.revision(e)).collect();
    assert_eq!(before, after);
    let members = s.state.store.project_members(1).await.unwrap();
    assert!(members.iter().all(|(u, r)| u.username != "vic" || *r == ProjectRole::Viewer), "the viewer did not promote themselves");
}

#[tokio::test]
async fn a_member_of_one_project_does_not_see_another() {
    let s = start(Options::default()).await;
    let owner = s.owner().await;
    let made = s.post(&owner, "/projects", &[("key", "secret-project"), ("name", "Secret")]).await;
    assert!(made.status == 303 || made.status == 200, "{}", made.body);
    let editor = s.user("eve", Some(ProjectRole::Editor)).await;
    let list = s.get(&editor, "/projects").await;
    assert!(list.body.contains("demo") && !list.body.contains("secret-project"));
    for path in [
        "/projects/secret-project",
        "/projects/secret-project/settings/environments",
        "/projects/secret-project/new",
        "/projects/secret-project/promote",
    ] {
        assert_eq!(s.get(&editor, path).await.status, 404, "{path}");
    }
    let post = s.post(&editor, "/projects/secret-project/settings/environments/development/keys", &[("name", "x")]).await;
    assert_eq!(post.status, 404);
}

#[tokio::test]
async fn html_in_names_descriptions_payloads_and_rules_renders_as_text() {
    let s = start(Options::default()).await;
    let owner = s.owner().await;
    let evil = "<img src=x onerror=alert(1)></script><script>alert(2)</script>";
    let definition = serde_json::json!({
        "testType": "USER", "salt": "x", "description": evil, "rule": "${'<b>' == '</script>'}",
        "buckets": [{"name": "off", "value": 0, "description": evil, "payload": {"stringValue": evil}}, {"name": "on", "value": 1, "payload": {"stringValue": "</textarea>"}}],
        "allocations": [{"ranges": [{"bucketValue": 0, "length": 0.5}, {"bucketValue": 1, "length": 0.5}]}]
    });
    let edit = avsb_server::ops::edit::MatrixEdit::PutTest {
        test: "xss".into(),
        definition: Box::new(avsb_server::ops::input::read_definition("xss", &definition, None).unwrap()),
    };
    let meta = avsb_server::ops::WriteMeta { base: None, author: "<b>mallory</b>".into(), comment: Some(evil.into()), role: ProjectRole::Admin };
    s.state.write("demo", "development", &edit, meta).await.unwrap();
    for path in ["/projects/demo", "/projects/demo/tests/xss", "/projects/demo/tests/xss/edit?env=development", "/projects/demo/tests/xss/rollback?env=development"] {
        let page = s.get(&owner, path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        for raw in ["<img src=x", "<script>alert", "<b>mallory", "'<b>'"] {
            assert!(!page.body.contains(raw), "{path} renders {raw} raw");
        }
    }
    let page = s.get(&owner, "/projects/demo/tests/xss").await;
    assert!(page.body.contains("&#60;img src=x onerror=alert(1)&#62;") || page.body.contains("&lt;img src=x onerror=alert(1)&gt;"), "escaped, shown as text: {}", page.body);
}

#[tokio::test]
async fn sign_in_is_throttled_after_five_failures() {
    let s = start(Options::default()).await;
    s.owner().await;
    for _ in 0..5 {
        let answer = s.sign_in("olga", "wrong password").await.err().unwrap();
        assert_eq!(answer.status, 422);
        assert!(answer.body.contains("not right"));
    }
    let answer = s.sign_in("olga", PASSWORD).await.err().expect("throttled even with the right password");
    assert_eq!(answer.status, 429);
    assert!(answer.body.contains("Too many failed sign-ins"));
}

fn field_value(html: &str, id: &str) -> String {
    let at = html.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no #{id}"));
    let rest = &html[at..];
    let v = rest.find("value=\"").unwrap() + 7;
    rest[v..].split('"').next().unwrap().to_string()
}

/// The editor's fields as a browser would post them.
fn editor_fields(html: &str) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    let form = &html[html.find("id=\"editor\"").unwrap()..];
    let form = &form[..form.find("</form>").unwrap()];
    for tag in form.split('<').skip(1) {
        let name = |attr: &str| tag.find(&format!("{attr}=\"")).map(|i| tag[i + attr.len() + 2..].split('"').next().unwrap().to_string());
        if tag.starts_with("input") && !tag.contains("type=\"checkbox\"") {
            if let (Some(n), Some(v)) = (name("name"), name("value")) {
                fields.push((n, v));
            }
        } else if tag.starts_with("select") {
            fields.push((name("name").unwrap(), String::new()));
        } else if tag.starts_with("option") && tag.contains(" selected") {
            let v = name("value").unwrap();
            fields.last_mut().unwrap().1 = v;
        } else if tag.starts_with("textarea") {
            let text = tag.split_once('>').map(|(_, t)| t.to_string()).unwrap_or_default();
            fields.push((name("name").unwrap(), text));
        }
    }
    fields.retain(|(k, _)| k != "csrf");
    fields
}

fn set(fields: &mut [(String, String)], name: &str, value: &str) {
    fields.iter_mut().find(|(k, _)| k == name).unwrap_or_else(|| panic!("no field {name}")).1 = value.to_string();
}

async fn post_owned(s: &Instance, browser: &Browser, path: &str, fields: &[(String, String)]) -> Answer {
    let borrowed: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    s.post(browser, path, &borrowed).await
}

#[tokio::test]
async fn an_edit_is_reviewed_with_the_exact_moving_share_then_saved_as_the_users_revision() {
    let s = start(Options::default()).await;
    let editor = s.user("ana", Some(ProjectRole::Editor)).await;
    let page = s.get(&editor, "/projects/demo/tests/buttoncolortst/edit?env=development").await;
    assert_eq!(page.status, 200);
    assert_eq!(field_value(&page.body, "alloc-0-range-1-percent"), "30");
    let mut fields = editor_fields(&page.body);
    set(&mut fields, "alloc.0.range.1.percent", "20");
    set(&mut fields, "alloc.0.range.2.percent", "50");
    fields.push(("action".into(), "review".into()));
    let review = post_owned(&s, &editor, "/projects/demo/tests/buttoncolortst/edit", &fields).await;
    assert_eq!(review.status, 200, "{}", review.body);
    assert!(review.body.contains("10% of allocation 1 change bucket (exact)"), "{}", review.body);
    assert!(review.body.contains("allocation 1, range 2, share"));
    // The review carries the change to the save.
    let save_form = &review.body[review.body.find("/save\"").unwrap()..];
    let mut carried: Vec<(String, String)> = Vec::new();
    for tag in save_form.split("<input type=\"hidden\" ").skip(1) {
        let n = tag.split("name=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
        let v = tag.split("value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
        carried.push((n, html_unescape(&v)));
    }
    carried.retain(|(k, _)| k != "csrf");
    carried.push(("comment".into(), "blue down to 20%".into()));
    let saved = post_owned(&s, &editor, "/projects/demo/save", &carried).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let revision = s.state.current("demo", "development").unwrap().revision.clone();
    assert_eq!((revision.author.as_str(), revision.comment.as_str()), ("ana", "blue down to 20%"));
    let shares: Vec<f64> = s.state.current("demo", "development").unwrap().matrix.definition("buttoncolortst").unwrap().allocations[0].ranges.iter().map(|r| r.length).collect();
    assert_eq!(shares, vec![0.0, 0.2, 0.5, 0.3]);

    // The same review again is now stale, and the test changed since: refused, theirs shown.
    let stale = post_owned(&s, &editor, "/projects/demo/save", &carried).await;
    assert_eq!(stale.status, 409, "{}", stale.body);
    assert!(stale.body.contains("This changed since you began") && stale.body.contains("by ana"), "{}", stale.body);
    assert_eq!(s.state.current("demo", "development").unwrap().revision.id, revision.id, "nothing overwritten");
}

fn html_unescape(s: &str) -> String {
    s.replace("&#34;", "\"").replace("&quot;", "\"").replace("&#39;", "'").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

#[tokio::test]
async fn a_kill_in_production_needs_a_comment_and_the_tests_name_typed() {
    let s = start(Options::default()).await;
    let owner = s.owner().await;
    let base = s.revision("production").to_string();
    let review = s.post(&owner, "/projects/demo/tests/buttoncolortst/kill", &[("env", "production"), ("base", &base), ("bucket", "0")]).await;
    assert_eq!(review.status, 200, "{}", review.body);
    assert!(review.body.contains("Type <code>buttoncolortst</code> to confirm"));
    let common = [("kind", "kill"), ("env", "production"), ("test", "buttoncolortst"), ("bucket", "0"), ("base", base.as_str()), ("title", "Kill")];
    let mut without = common.to_vec();
    without.push(("confirm", "buttoncolor"));
    let refused = s.post(&owner, "/projects/demo/save", &without).await;
    assert_eq!(refused.status, 422);
    assert!(refused.body.contains("There is a problem") && refused.body.contains("a comment is required in production") && refused.body.contains("Type &#39;buttoncolortst&#39; to confirm") || refused.body.contains("Type 'buttoncolortst' to confirm"), "{}", refused.body);
    assert_eq!(s.revision("production").to_string(), base, "refused: nothing written");
    let mut with = common.to_vec();
    with.extend([("confirm", "buttoncolortst"), ("comment", "incident 42")]);
    let done = s.post(&owner, "/projects/demo/save", &with).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let page = s.get(&owner, "/projects/demo/tests/buttoncolortst").await;
    assert!(page.body.contains("Killed in production: everyone gets &#39;control&#39;") || page.body.contains("Killed in production: everyone gets 'control'"), "{}", page.body);
}

#[tokio::test]
async fn a_whole_environment_rolls_back_to_a_revision_after_review_and_the_typed_name() {
    let s = start(Options::default()).await;
    let owner = s.owner().await;
    let first = s.revision("staging");
    let base = first.to_string();
    let killed = s
        .post(&owner, "/projects/demo/save", &[("kind", "kill"), ("env", "staging"), ("test", "buttoncolortst"), ("bucket", "0"), ("base", &base), ("confirm", "buttoncolortst")])
        .await;
    assert_eq!(killed.status, 303, "{}", killed.body);
    let page = s.get(&owner, &format!("/projects/demo/revisions/{first}")).await;
    assert!(page.body.contains("Roll back all of staging to here"), "{}", page.body);
    let current = s.revision("staging").to_string();
    let review = s.post(&owner, &format!("/projects/demo/revisions/{first}/rollback"), &[("env", "staging"), ("base", &current)]).await;
    assert_eq!(review.status, 200, "{}", review.body);
    assert!(review.body.contains("Type <code>staging</code> to confirm") && review.body.contains("buttoncolortst"), "{}", review.body);
    let saved = s
        .post(&owner, "/projects/demo/save", &[("kind", "rollback-env"), ("env", "staging"), ("revision", &first.to_string()), ("base", &current), ("confirm", "staging"), ("comment", "back")])
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let now = s.state.current("demo", "staging").unwrap();
    assert_eq!(now.revision.author, "olga");
    let then = s.state.current("demo", "development").unwrap();
    let shares = |m: &avsb_server::registry::EnvSnapshot| m.matrix.definition("buttoncolortst").unwrap().allocations[0].ranges.iter().map(|r| r.length).collect::<Vec<_>>();
    assert_eq!(shares(&now), shares(&then), "staging is as it was (the demo's environments start alike)");
}

/// A 50/50 test of USER units in development, written as the demo's editor would.
async fn put_split_test(s: &Instance, name: &str) {
    let definition = serde_json::json!({
        "testType": "USER", "salt": name,
        "buckets": [{"name": "control", "value": 0}, {"name": "treatment", "value": 1}],
        "allocations": [{"ranges": [{"bucketValue": 0, "length": 0.5}, {"bucketValue": 1, "length": 0.5}]}]
    });
    let edit = avsb_server::ops::edit::MatrixEdit::PutTest {
        test: name.into(),
        definition: Box::new(avsb_server::ops::input::read_definition(name, &definition, None).unwrap()),
    };
    let meta = avsb_server::ops::WriteMeta { base: None, author: "test".into(), comment: None, role: ProjectRole::Admin };
    s.state.write("demo", "development", &edit, meta).await.unwrap();
}

/// Split exposures of `units` users per bucket (after the test's revision), and a purchase by
/// the first `buyers` of each bucket.
async fn expose(s: &Instance, test: &str, units: [usize; 2], buyers: [usize; 2]) {
    let environment_id = s.state.current("demo", "development").unwrap().environment_id;
    let now = avsb_server::store::now_millis() + 1000;
    let mut events = Vec::new();
    for (bucket, (&n, &bought)) in units.iter().zip(&buyers).enumerate() {
        for i in 0..n {
            let identifiers = serde_json::json!({"USER": format!("{test}-{bucket}-{i}")}).to_string();
            let event = |kind: &str, time: i64| avsb_server::store::NewEvent {
                kind: kind.into(), time, identifiers: identifiers.clone(), test: None, bucket: None, bucket_name: None, version: None,
                key: None, value: None, properties: None, reason: None, allocation: None, dimensions: None,
            };
            let mut exposure = event("exposure", now);
            exposure.test = Some(test.into());
            exposure.bucket = Some(bucket as i32);
            exposure.reason = Some("split".into());
            exposure.allocation = Some(0);
            events.push(exposure);
            if i < bought {
                let mut track = event("track", now + 1000);
                track.key = Some("purchase".into());
                track.value = Some(10.0);
                events.push(track);
            }
        }
    }
    for batch in events.chunks(1000) {
        s.state.store.insert_events(environment_id, None, None, batch.to_vec()).await.unwrap();
    }
}

#[tokio::test]
async fn a_test_without_exposures_shows_no_exposures_yet_and_what_to_check() {
    let s = start(Options::default()).await;
    let owner = s.owner().await;
    put_split_test(&s, "quiet").await;
    let page = s.get(&owner, "/projects/demo/tests/quiet/results").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("No exposures yet"), "{}", page.body);
    assert!(page.body.contains("recordExposures") && page.body.contains("The test splits units in development: control 50%, treatment 50%."), "{}", page.body);
    assert!(page.body.contains("<code>quiet</code> · development"), "the test's only environment is the default: {}", page.body);
    assert!(!page.body.contains("class=\"results-table\""), "no tables without units");
    let elsewhere = s.get(&owner, "/projects/demo/tests/quiet/results?env=production").await;
    assert_eq!(elsewhere.status, 200);
    assert!(elsewhere.body.contains("is not in production") && elsewhere.body.contains("results?env=development"), "{}", elsewhere.body);
}

#[tokio::test]
async fn results_show_each_buckets_value_lift_and_interval_bar_coloured_by_its_verdict() {
    let s = start(Options::default()).await;
    let owner = s.owner().await;
    put_split_test(&s, "checkout-ab").await;
    expose(&s, "checkout-ab", [500, 500], [50, 100]).await;
    let page = s.get(&owner, "/projects/demo/tests/checkout-ab/results?env=development&metrics=purchase-rate").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let body = &page.body;
    for expected in ["1,000 USER units", "10.00%", "20.00%", "+100.0%", "class=\"ci ci-better\"", "verdict-better", "The split matches the ranges"] {
        assert!(body.contains(expected), "{expected} missing: {body}");
    }
    assert!(!body.contains("Revenue per visitor</span>"), "only the chosen metric has a table");
    let bayesian = s.get(&owner, "/projects/demo/tests/checkout-ab/results?env=development&metrics=purchase-rate&engine=bayesian").await;
    assert!(bayesian.body.contains("Chance to beat control") && bayesian.body.contains("expected loss if you pick it"), "{}", bayesian.body);
}

#[tokio::test]
async fn a_skewed_split_raises_the_sample_ratio_mismatch_banner() {
    let s = start(Options::default()).await;
    let owner = s.owner().await;
    put_split_test(&s, "skewed").await;
    expose(&s, "skewed", [600, 400], [0, 0]).await;
    let page = s.get(&owner, "/projects/demo/tests/skewed/results?env=development").await;
    assert!(
        page.body.contains("Sample ratio mismatch (p&lt;0.001): expected 50/50, got 60/40 (control/treatment). Don&#39;t trust these numbers until the cause is found.")
            || page.body.contains("Sample ratio mismatch (p&#60;0.001): expected 50/50, got 60/40 (control/treatment). Don&#39;t trust these numbers until the cause is found."),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn a_bad_results_setting_is_named_beside_its_field() {
    let s = start(Options::default()).await;
    let owner = s.owner().await;
    let page = s.get(&owner, "/projects/demo/tests/checkout-v2/results?engine=magic&metrics=nope").await;
    assert_eq!(page.status, 422, "{}", page.body);
    assert!(page.body.contains("<title>Error: ") && page.body.contains("href=\"#engine\""), "{}", page.body);
    let unknown_metric = s.get(&owner, "/projects/demo/tests/checkout-v2/results?metrics=nope").await;
    assert_eq!(unknown_metric.status, 422);
    assert!(unknown_metric.body.contains("href=\"#metrics\">There is no metric &#39;nope&#39;"), "{}", unknown_metric.body);
}

#[tokio::test]
async fn a_metric_form_error_names_the_field_beside_it_and_in_the_summary() {
    let s = start(Options::default()).await;
    let editor = s.user("ed", Some(ProjectRole::Editor)).await;
    let fields = [("key", "orders"), ("name", " "), ("event", "order"), ("type", "conversion"), ("direction", "higher"), ("capping_type", "none")];
    let answer = s.post(&editor, "/projects/demo/metrics", &fields).await;
    assert_eq!(answer.status, 422, "{}", answer.body);
    assert!(answer.body.contains("<title>Error: New metric") && answer.body.contains("There is a problem"), "{}", answer.body);
    assert!(answer.body.contains("<a href=\"#name\">Enter a name, such as Purchase rate</a>"), "{}", answer.body);
    assert!(answer.body.contains("field-error\">\n    <label for=\"name\">"), "the field itself is marked: {}", answer.body);
    // The definition's own rules (MetricDefinition::check) name their field the same way.
    let window = s.post(&editor, "/projects/demo/metrics", &[("key", "orders"), ("name", "Orders"), ("event", "order"), ("type", "count"), ("window_hours", "0")]).await;
    assert_eq!(window.status, 422);
    assert!(window.body.contains("<a href=\"#window-hours\">Window: must be more than 0 and at most 8784</a>"), "{}", window.body);
    let ratio = s.post(&editor, "/projects/demo/metrics", &[("key", "aov"), ("name", ""), ("event", "purchase"), ("type", "ratio"), ("denominator_event", "")]).await;
    assert_eq!(ratio.status, 422);
    let name_at = ratio.body.find("href=\"#name\"").expect("the name named");
    let denominator_at = ratio.body.find("href=\"#denominator-event\">Enter the event to divide by").expect("the denominator named too");
    assert!(name_at < denominator_at, "in the form's order");
    let taken = s.post(&editor, "/projects/demo/metrics", &[("key", "revenue"), ("name", "Again"), ("event", "purchase"), ("type", "mean")]).await;
    assert!(taken.status == 422 && taken.body.contains("href=\"#key\""), "{}", taken.body);
    assert!(s.state.metrics("demo").await.unwrap().iter().all(|m| m.key != "orders" && m.key != "aov"), "nothing was created");

    let made = s.post(&editor, "/projects/demo/metrics", &[("key", "orders"), ("name", "Orders"), ("event", "order"), ("type", "count"), ("window_hours", "48"), ("guardrail", "1"), ("capping_type", "absolute"), ("capping_value", "20")]).await;
    assert_eq!(made.status, 303, "{}", made.body);
    let metric = s.state.metric("demo", "orders").await.unwrap();
    assert_eq!((metric.definition.window_hours, metric.definition.guardrail), (Some(48.0), true));
    let list = s.get(&editor, "/projects/demo/metrics?saved=orders").await;
    assert!(list.body.contains("Saved the metric") && list.body.contains("at 20.00") && list.body.contains("48 h"), "{}", list.body);
}

#[tokio::test]
async fn a_metric_is_changed_and_deleted_by_an_editor_with_its_key_typed_and_never_by_a_viewer() {
    let s = start(Options::default()).await;
    let editor = s.user("ed", Some(ProjectRole::Editor)).await;
    let viewer = s.user("vic", Some(ProjectRole::Viewer)).await;
    let list = s.get(&viewer, "/projects/demo/metrics").await;
    assert!(list.body.contains("Purchase rate") && !list.body.contains("New metric") && !list.body.contains("/delete"), "{}", list.body);
    assert_eq!(s.get(&viewer, "/projects/demo/metrics/new").await.status, 403);
    assert_eq!(s.get(&viewer, "/projects/demo/metrics/revenue/edit").await.status, 403);

    let form = s.get(&editor, "/projects/demo/metrics/revenue/edit").await;
    assert!(form.status == 200 && form.body.contains("value=\"0.99\""), "{}", form.body);
    let changed = s.post(&editor, "/projects/demo/metrics/revenue/edit", &[("name", "Revenue"), ("event", "purchase"), ("type", "mean"), ("direction", "higher"), ("capping_type", "percentile"), ("capping_value", "0.95")]).await;
    assert_eq!(changed.status, 303, "{}", changed.body);
    assert_eq!(s.state.metric("demo", "revenue").await.unwrap().definition.name, "Revenue");

    let wrong = s.post(&editor, "/projects/demo/metrics/revenue/delete", &[("confirm", "revenu")]).await;
    assert_eq!(wrong.status, 422);
    assert!(wrong.body.contains("Type &#39;revenue&#39; to confirm") || wrong.body.contains("Type 'revenue' to confirm"), "{}", wrong.body);
    assert!(s.state.metric("demo", "revenue").await.is_ok(), "not deleted");
    let deleted = s.post(&editor, "/projects/demo/metrics/revenue/delete", &[("confirm", "revenue")]).await;
    assert_eq!(deleted.status, 303);
    assert!(s.state.metric("demo", "revenue").await.is_err());
}

#[tokio::test]
async fn without_metrics_the_results_page_still_counts_units_and_points_to_the_metrics_page() {
    let s = start(Options::default()).await;
    let owner = s.owner().await;
    for key in ["purchase-rate", "revenue"] {
        s.state.delete_metric("demo", key, "test").await.unwrap();
    }
    let page = s.get(&owner, "/projects/demo/tests/checkout-v2/results").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("No metrics yet") && page.body.contains("href=\"/projects/demo/metrics\""), "{}", page.body);
    assert!(page.body.contains("4,000 USER units") && page.body.contains("The split matches the ranges"), "{}", page.body);
    assert!(!page.body.contains("class=\"results-table\""));
}

#[tokio::test]
async fn a_first_computation_under_way_says_so_and_later_results_say_they_are_catching_up() {
    // No waiting for a computation: every request that starts one answers at once.
    let s = start(Options { results_wait: std::time::Duration::ZERO, ..Options::default() }).await;
    let owner = s.owner().await;
    put_split_test(&s, "slow").await;
    expose(&s, "slow", [50, 50], [5, 10]).await;
    let path = "/projects/demo/tests/slow/results?env=development&metrics=purchase-rate";
    let first = s.get(&owner, path).await;
    assert_eq!(first.status, 202, "{}", first.body);
    assert!(first.body.contains("These results are being computed") && first.body.contains("data-reload=\"3\""), "{}", first.body);
    assert!(!first.body.contains("class=\"results-table\""));
    let mut ready = None;
    for _ in 0..200 {
        let answer = s.get(&owner, path).await;
        if answer.status == 200 {
            ready = Some(answer);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let ready = ready.expect("the computation ends");
    assert!(ready.body.contains("100 USER units") && !ready.body.contains("Newer events arrived"), "{}", ready.body);
    expose(&s, "slow", [1, 0], [0, 0]).await;
    let stale = s.get(&owner, path).await;
    assert_eq!(stale.status, 200, "{}", stale.body);
    assert!(stale.body.contains("Newer events arrived: these are the results as of") && stale.body.contains("100 USER units"), "{}", stale.body);
}

#[tokio::test]
async fn html_in_metric_and_bucket_names_renders_as_text_in_results_and_metrics() {
    let s = start(Options::default()).await;
    let owner = s.owner().await;
    let evil = "<img src=x onerror=alert(1)>";
    let definition = avsb_server::results::metric::MetricDefinition {
        name: evil.into(),
        description: evil.into(),
        event: "purchase".into(),
        metric_type: avsb_server::results::metric::MetricType::Conversion,
        denominator: None,
        direction: avsb_server::results::metric::Direction::Higher,
        window_hours: None,
        guardrail: true,
        capping: None,
    };
    s.state.create_metric("demo", "evil", &definition, "test").await.unwrap();
    put_split_test(&s, "named").await;
    expose(&s, "named", [100, 100], [10, 30]).await;
    for path in ["/projects/demo/metrics", "/projects/demo/tests/named/results?env=development&metrics=evil", "/projects/demo/metrics/evil/edit"] {
        let page = s.get(&owner, path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        assert!(!page.body.contains("<img src=x"), "{path} renders the name raw");
        assert!(page.body.contains("&#60;img src=x") || page.body.contains("&lt;img src=x"), "{path} shows it as text");
    }
}
