//! The server starts from the README's command, serves the demo, and stops on SIGTERM.

mod common;

use common::Server;

#[test]
fn demo_server_prints_where_to_point_an_app_and_answers_pipet() {
    let mut server = Server::start_demo();
    for name in ["AVSB_BASE_URL", "AVSB_SDK_KEY", "AVSB_SDK_KEY_STAGING", "AVSB_SDK_KEY_PRODUCTION", "PROCTOR_API_ROOT", "OFREP_URL"] {
        assert!(!server.var(name).is_empty(), "{name}");
    }
    let root = server.var("PROCTOR_API_ROOT").to_string();
    let reply = server.call("GET", &format!("{root}/groups/identify?id.USER=pa5xq0lz4n80&ctx.loggedIn=true&test=buttoncolortst,newfeaturerollout&prforceGroups=buttoncolortst2"), None, None);
    assert_eq!(reply.status, 200, "{}", reply.body);
    let groups = &reply.json()["data"]["groups"];
    assert_eq!(groups["buttoncolortst"]["value"], 2);
    assert_eq!(groups["newfeaturerollout"]["name"], "active");
    assert_eq!(server.stop(), Some(0));
}
