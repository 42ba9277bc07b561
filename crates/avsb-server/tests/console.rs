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
                .replace("{revision}", "1");
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
    for path in ["/projects/demo", "/projects/demo/tests/buttoncolortst", "/projects/demo/settings/environments", "/projects/demo/settings/members"] {
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
