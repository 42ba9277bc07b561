//! The conformance suite every `Store` backend must pass. A new backend (PostgreSQL) adds one
//! test in `store_conformance.rs` that calls [`run`] on a fresh, empty store.

use anyhow::{ensure, Context};

use avsb_server::store::{
    BatchOutcome, EventFilter,
    LoginFailures, NewEvent, NewProject, NewUser, ProjectRole, Revision, RevisionMeta, Role, Store, StoreError, TokenOwner,
};

fn revision(id: i64, environment_id: i64, parent: Option<i64>, kind: &str, matrix: &str) -> Revision {
    Revision {
        meta: RevisionMeta {
            id,
            environment_id,
            parent,
            kind: kind.into(),
            test_count: 0,
            author: "conformance".into(),
            comment: format!("{kind} {id}"),
            created_at: 1_700_000_000_000 + id,
        },
        matrix_json: matrix.into(),
    }
}

/// Runs every check against an empty store; the error names the first that failed.
pub async fn run(store: &dyn Store) -> anyhow::Result<()> {
    projects(store).await.context("projects")?;
    revisions(store).await.context("revisions")?;
    keys_and_tokens(store).await.context("keys and tokens")?;
    events(store).await.context("events")?;
    metrics(store).await.context("metrics")?;
    accounts(store).await.context("accounts")?;
    Ok(())
}

async fn accounts(store: &dyn Store) -> anyhow::Result<()> {
    ensure!(store.user_count().await? == 0, "a new store has no users");
    let new = |username: &str, owner: bool| NewUser {
        username: username.into(),
        display_name: format!("{username} (display)"),
        password_hash: format!("hash-of-{username}"),
        is_owner: owner,
    };
    let ana = store.create_user(new("ana", true)).await?;
    let bo = store.create_user(new("bo", false)).await?;
    ensure!(ana.is_owner && !bo.is_owner && ana.disabled_at.is_none(), "users: {ana:?} {bo:?}");
    ensure!(
        matches!(store.create_user(new("ANA", false)).await, Err(StoreError::Duplicate(_))),
        "usernames are unique without case"
    );
    let (found, hash) = store.user_by_username("Bo").await?.context("bo by name, without case")?;
    ensure!(found == bo && hash == "hash-of-bo", "{found:?} {hash}");
    ensure!(store.user(bo.id).await? == Some(bo.clone()), "a user by id");
    let names: Vec<String> = store.list_users().await?.into_iter().map(|u| u.username).collect();
    ensure!(names == ["ana", "bo"] && store.user_count().await? == 2, "users listed: {names:?}");

    // Roles per project.
    let project = store.project("shop").await?.context("project")?;
    store.set_membership(bo.id, project.id, Some(ProjectRole::Viewer)).await?;
    store.set_membership(bo.id, project.id, Some(ProjectRole::Editor)).await?;
    ensure!(store.memberships(bo.id).await? == [(project.id, ProjectRole::Editor)], "one role per project, replaced");
    let members = store.project_members(project.id).await?;
    ensure!(members.len() == 1 && members[0].0.id == bo.id && members[0].1 == ProjectRole::Editor, "{members:?}");
    ensure!(ProjectRole::Viewer < ProjectRole::Editor && ProjectRole::Editor < ProjectRole::Admin, "roles are ordered");

    // Sessions: found by digest until they expire or end; a password change ends them.
    // (Creating a session removes sessions expired by the clock, so the times are real ones.)
    let t = avsb_server::store::now_millis();
    store.create_session(&[1; 32], bo.id, "csrf-1", t + 2_000).await?;
    let session = store.session(&[1; 32], t + 1_000).await?.context("a live session")?;
    ensure!(session.user.id == bo.id && session.csrf == "csrf-1" && session.expires_at == t + 2_000, "{session:?}");
    ensure!(store.session(&[1; 32], t + 2_000).await?.is_none(), "an expired session is not found");
    store.touch_session(&[1; 32], t + 1_500, t + 3_000).await?;
    ensure!(store.session(&[1; 32], t + 2_500).await?.is_some(), "touching moves the end");
    store.create_session(&[2; 32], bo.id, "csrf-2", i64::MAX).await?;
    store.delete_session(&[2; 32]).await?;
    ensure!(store.session(&[2; 32], 0).await?.is_none(), "an ended session is not found");
    store.create_session(&[3; 32], bo.id, "csrf-3", i64::MAX).await?;
    store.set_password(bo.id, "new-hash").await?;
    ensure!(store.session(&[3; 32], 0).await?.is_none(), "a password change ends every session");
    ensure!(store.user_by_username("bo").await?.map(|(_, h)| h) == Some("new-hash".into()), "the new hash");
    store.create_session(&[4; 32], ana.id, "csrf-4", i64::MAX).await?;
    store.delete_user_sessions(ana.id).await?;
    ensure!(store.session(&[4; 32], 0).await?.is_none(), "a user's sessions end together");

    // Sign-in failures.
    ensure!(store.login_failures("user:bo").await?.is_none(), "no failures yet");
    let f = LoginFailures { failures: 3, window_start: 10, locked_until: 0 };
    store.set_login_failures("user:bo", f).await?;
    let g = LoginFailures { failures: 5, window_start: 10, locked_until: 99 };
    store.set_login_failures("user:bo", g).await?;
    ensure!(store.login_failures("user:bo").await? == Some(g), "failures replaced");
    store.clear_login_failures("user:bo").await?;
    ensure!(store.login_failures("user:bo").await?.is_none(), "failures cleared");

    // Tokens of users and projects; the audit log; settings; protected environments.
    let mine = store.create_admin_token("bo's", Role::Read, TokenOwner::User(bo.id), &[7; 32], "adm-bo").await?;
    let service = store.create_admin_token("deploy", Role::Write, TokenOwner::Project(project.id), &[6; 32], "adm-dep").await?;
    ensure!(mine.owner() == TokenOwner::User(bo.id) && service.owner() == TokenOwner::Project(project.id), "owners");
    ensure!(store.admin_token(&[6; 32]).await?.map(|t| t.project_id) == Some(Some(project.id)), "read back");
    store.append_audit("ana", "member.set_role", Some(project.id), "bo", r#"{"role":"editor"}"#).await?;
    store.append_audit("ana", "sign_in", None, "ana", "{}").await?;
    let all = store.list_audit(None, None, 10).await?;
    ensure!(all.len() == 2 && all[0].action == "sign_in" && all[1].action == "member.set_role", "newest first: {all:?}");
    let scoped = store.list_audit(Some(project.id), None, 10).await?;
    ensure!(scoped.len() == 1 && scoped[0].target == "bo", "by project: {scoped:?}");
    ensure!(store.list_audit(None, Some(all[0].id), 10).await?.len() == 1, "paging with before");
    ensure!(store.setting("x").await?.is_none(), "no setting");
    store.set_setting("x", Some("1")).await?;
    store.set_setting("x", Some("2")).await?;
    ensure!(store.setting("x").await? == Some("2".into()), "a setting replaced");
    store.set_setting("x", None).await?;
    ensure!(store.setting("x").await?.is_none(), "a setting removed");
    let env = store.list_environments(project.id).await?.into_iter().next().context("an environment")?;
    ensure!(!env.protected, "environments start unprotected");
    store.set_protected(env.id, true).await?;
    ensure!(store.list_environments(project.id).await?[0].protected, "protected");
    store.set_owner(bo.id, true).await?;
    ensure!(store.user(bo.id).await?.is_some_and(|u| u.is_owner), "made an owner");
    store.set_membership(bo.id, project.id, None).await?;
    ensure!(store.memberships(bo.id).await?.is_empty(), "membership removed");
    Ok(())
}

async fn projects(store: &dyn Store) -> anyhow::Result<()> {
    ensure!(store.list_projects().await?.is_empty(), "a new store has no projects");
    let new = NewProject {
        key: "shop".into(),
        name: "Shop".into(),
        schema_json: r#"{"context":{},"identifiers":{"USER":{"source":"QUERY"}}}"#.into(),
        default_identifier_type: "USER".into(),
    };
    let project = store.create_project(new.clone()).await?;
    ensure!(project.key == "shop" && project.schema_version == 1, "created project: {project:?}");
    ensure!(
        matches!(store.create_project(new).await, Err(StoreError::Duplicate(_))),
        "a second project with the same key is refused"
    );
    ensure!(store.project("shop").await? == Some(project.clone()), "a project reads back");
    ensure!(store.project("nope").await?.is_none(), "an unknown project is None");

    let changed = store.set_schema(project.id, r#"{"context":{}}"#, 1).await?;
    ensure!(changed.schema_version == 2 && changed.schema_json == r#"{"context":{}}"#, "schema set: {changed:?}");
    ensure!(
        matches!(store.set_schema(project.id, "{}", 1).await, Err(StoreError::Conflict { expected: 1, current: 2 })),
        "a schema write from a stale version conflicts"
    );
    let renamed = store.update_project(project.id, "Shop 2", "ACCOUNT").await?;
    ensure!(renamed.name == "Shop 2" && renamed.default_identifier_type == "ACCOUNT", "updated: {renamed:?}");
    ensure!(store.list_projects().await?.len() == 1, "one project listed");
    Ok(())
}

async fn revisions(store: &dyn Store) -> anyhow::Result<()> {
    let project = store.project("shop").await?.context("project from the previous step")?;
    let first = store.reserve_revision_id().await?;
    let dev = store.create_environment(project.id, "development", "Development", revision(first, 0, None, "create", "{}")).await?;
    ensure!(dev.current_revision == first && dev.position == 0, "development: {dev:?}");
    let second = store.reserve_revision_id().await?;
    ensure!(second > first, "revision ids increase");
    let prod = store.create_environment(project.id, "production", "Production", revision(second, 0, None, "create", "{}")).await?;
    ensure!(prod.position == 1, "environments are ordered by creation");
    ensure!(
        matches!(
            store.create_environment(project.id, "production", "P", revision(store.reserve_revision_id().await?, 0, None, "create", "{}")).await,
            Err(StoreError::Duplicate(_))
        ),
        "a second environment with the same key is refused"
    );
    let keys: Vec<String> = store.list_environments(project.id).await?.into_iter().map(|e| e.key).collect();
    ensure!(keys == ["development", "production"], "environments in order: {keys:?}");

    let third = store.reserve_revision_id().await?;
    store.commit_revision(first, revision(third, dev.id, Some(first), "edit", r#"{"tests":{}}"#)).await?;
    let stale = store.reserve_revision_id().await?;
    match store.commit_revision(first, revision(stale, dev.id, Some(first), "edit", "{}")).await {
        Err(StoreError::Conflict { expected, current }) => {
            ensure!(expected == first && current == third, "conflict names both revisions")
        }
        other => anyhow::bail!("a commit on a stale base must conflict, got {other:?}"),
    }
    ensure!(store.revision(stale).await?.is_none(), "a conflicting revision is not stored");
    let stored = store.revision(third).await?.context("the committed revision")?;
    ensure!(stored.matrix_json == r#"{"tests":{}}"# && stored.meta.parent == Some(first), "revision: {stored:?}");
    let envs = store.all_environments().await?;
    ensure!(
        envs.iter().any(|(p, e)| p.key == "shop" && e.key == "development" && e.current_revision == third),
        "the environment points at the new revision"
    );
    let listed: Vec<i64> = store.list_revisions(dev.id, None, 10).await?.iter().map(|r| r.id).collect();
    ensure!(listed == [third, first], "revisions newest first: {listed:?}");
    let older: Vec<i64> = store.list_revisions(dev.id, Some(third), 10).await?.iter().map(|r| r.id).collect();
    ensure!(older == [first], "paging with before: {older:?}");
    let mut metas: Vec<i64> = store.revision_metas(vec![third, first, 999_999]).await?.iter().map(|r| r.id).collect();
    metas.sort_unstable();
    ensure!(metas == [first, third], "audits by id, unknown ones left out: {metas:?}");
    let many: Vec<i64> = (1_000_000..1_001_200).chain([first]).collect();
    ensure!(store.revision_metas(many).await?.len() == 1, "more ids than one statement takes");
    Ok(())
}

async fn keys_and_tokens(store: &dyn Store) -> anyhow::Result<()> {
    let project = store.project("shop").await?.context("project")?;
    let dev = store.list_environments(project.id).await?.into_iter().next().context("development")?;
    let a = store.create_sdk_key(dev.id, "web", &[1; 32], "sdk-aaaa", false).await?;
    let b = store.create_sdk_key(dev.id, "rotation", &[2; 32], "sdk-bbbb", true).await?;
    ensure!(!a.record_exposures && b.record_exposures, "the recording flag is stored: {a:?} {b:?}");
    ensure!(
        matches!(store.create_sdk_key(dev.id, "dup", &[1; 32], "sdk-aaaa", false).await, Err(StoreError::Duplicate(_))),
        "digests are unique"
    );
    let active = store.active_sdk_keys().await?;
    ensure!(active.len() == 2 && active.iter().all(|k| k.environment_id == dev.id), "two active keys: {active:?}");
    ensure!(store.set_sdk_key_recording(dev.id, a.id, true).await?, "turning recording on");
    ensure!(!store.set_sdk_key_recording(dev.id + 1000, a.id, true).await?, "only through the key's environment");
    let active = store.active_sdk_keys().await?;
    ensure!(active.iter().all(|k| k.record_exposures), "both keys record now: {active:?}");
    ensure!(store.revoke_sdk_key(dev.id, a.id).await?, "revoking a key");
    ensure!(!store.revoke_sdk_key(dev.id, a.id).await?, "revoking twice reports false");
    ensure!(!store.revoke_sdk_key(dev.id + 1000, b.id).await?, "a key is revoked only through its environment");
    let active = store.active_sdk_keys().await?;
    ensure!(active.len() == 1 && active[0].id == b.id, "the revoked key is inactive");
    ensure!(!store.set_sdk_key_recording(dev.id, a.id, false).await?, "a revoked key cannot be changed");
    let listed = store.list_sdk_keys(dev.id).await?;
    ensure!(listed.len() == 2 && listed[0].revoked_at.is_some() && listed[1].revoked_at.is_none(), "{listed:?}");

    let token = store.create_admin_token("alice", Role::Write, TokenOwner::Instance, &[9; 32], "adm-xxxx").await?;
    ensure!(token.owner() == TokenOwner::Instance, "an instance token: {token:?}");
    ensure!(store.admin_token(&[9; 32]).await?.map(|t| t.role) == Some(Role::Write), "token by digest");
    ensure!(store.admin_token(&[8; 32]).await?.is_none(), "unknown digest");
    ensure!(store.revoke_admin_token(token.id).await?, "revoke token");
    ensure!(store.admin_token(&[9; 32]).await?.is_none(), "a revoked token no longer authenticates");
    ensure!(store.list_admin_tokens().await?.len() == 1, "revoked tokens stay listed");
    Ok(())
}

async fn events(store: &dyn Store) -> anyhow::Result<()> {
    let project = store.project("shop").await?.context("project")?;
    let dev = store.list_environments(project.id).await?.into_iter().next().context("development")?;
    let exposure = NewEvent {
        kind: "exposure".into(),
        time: 1_700_000_000_000,
        identifiers: r#"{"USER":"u1"}"#.into(),
        test: Some("checkout".into()),
        bucket: Some(1),
        bucket_name: Some("new".into()),
        version: Some("3".into()),
        key: None,
        value: None,
        properties: None,
        reason: Some("split".into()),
        allocation: Some(0),
        dimensions: Some(r#"{"device":"mobile"}"#.into()),
    };
    let track = NewEvent {
        kind: "track".into(),
        test: None,
        bucket: None,
        bucket_name: None,
        version: None,
        key: Some("purchase".into()),
        value: Some(149.99),
        properties: Some(r#"{"currency":"usd"}"#.into()),
        reason: None,
        allocation: None,
        dimensions: None,
        ..exposure.clone()
    };
    let batch = Some("6f1c2f9e-0d5b-4b8a-9a51-5d1e2c3b4a79".to_string());
    let first = store.insert_events(dev.id, Some(7), batch.clone(), vec![exposure.clone(), track.clone()]).await?;
    ensure!(first == BatchOutcome { accepted: 2, duplicate: false }, "{first:?}");
    let again = store.insert_events(dev.id, Some(7), batch.clone(), vec![exposure.clone()]).await?;
    ensure!(again == BatchOutcome { accepted: 2, duplicate: true }, "a repeated batch id stores nothing: {again:?}");
    let stored = store.list_events(dev.id, &EventFilter::default(), 0, 10).await?;
    ensure!(stored.len() == 2, "two events stored");
    ensure!(stored[0].event == exposure && stored[1].event == track, "events read back as written: {stored:?}");
    ensure!(stored[0].sdk_key_id == Some(7) && stored[0].id < stored[1].id, "ids increase in arrival order");
    let after = store.list_events(dev.id, &EventFilter::default(), stored[0].id, 10).await?;
    ensure!(after.len() == 1 && after[0].event == track, "paging after an id");
    let only = |f: EventFilter| async move { store.list_events(dev.id, &f, 0, 10).await.map(|e| e.len()) };
    ensure!(only(EventFilter { kind: Some("track".into()), ..EventFilter::default() }).await? == 1, "by kind");
    ensure!(only(EventFilter { test: Some("checkout".into()), ..EventFilter::default() }).await? == 1, "by test");
    ensure!(only(EventFilter { key: Some("purchase".into()), ..EventFilter::default() }).await? == 1, "by key");
    ensure!(only(EventFilter { key: Some("signup".into()), ..EventFilter::default() }).await? == 0, "by another key");
    let at = exposure.time;
    ensure!(only(EventFilter { from: Some(at), to: Some(at + 1), ..EventFilter::default() }).await? == 2, "in a time range");
    ensure!(only(EventFilter { to: Some(at), ..EventFilter::default() }).await? == 0, "the range's end is excluded");

    // What the results read.
    let last = store.last_event_id(dev.id).await?;
    ensure!(last == stored[1].id, "the newest event's id: {last}");
    ensure!(store.last_event_id(dev.id + 1000).await? == 0, "no events: 0");
    let exposures = store.exposures_page(dev.id, "checkout", 0, last, 10).await?;
    ensure!(exposures.len() == 1, "one exposure of the test: {exposures:?}");
    let e = &exposures[0];
    ensure!(
        (e.bucket, e.reason.as_deref(), e.allocation, e.dimensions.as_deref()) == (1, Some("split"), Some(0), Some(r#"{"device":"mobile"}"#)),
        "{e:?}"
    );
    ensure!(store.exposures_page(dev.id, "checkout", e.id, last, 10).await?.is_empty(), "after the last one: none");
    ensure!(store.exposures_page(dev.id, "other", 0, last, 10).await?.is_empty(), "another test: none");
    let tracks = store.track_page(dev.id, vec!["purchase".into(), "signup".into()], 0, last, 10).await?;
    ensure!(tracks.len() == 1 && tracks[0].value == Some(149.99) && tracks[0].key == "purchase", "{tracks:?}");
    ensure!(store.track_page(dev.id, vec!["signup".into()], 0, last, 10).await?.is_empty(), "by key");
    ensure!(store.track_page(dev.id, vec!["purchase".into()], 0, last - 1, 10).await?.is_empty(), "up to an id");
    Ok(())
}

async fn metrics(store: &dyn Store) -> anyhow::Result<()> {
    let project = store.project("shop").await?.context("project")?;
    let m = store.create_metric(project.id, "buy", r#"{"name":"Buy"}"#).await?;
    ensure!(m.key == "buy" && m.definition == r#"{"name":"Buy"}"#, "{m:?}");
    ensure!(
        matches!(store.create_metric(project.id, "buy", "{}").await, Err(StoreError::Duplicate(_))),
        "metric keys are unique per project"
    );
    let changed = store.update_metric(project.id, "buy", r#"{"name":"Purchase"}"#).await?.context("updated")?;
    ensure!(changed.definition == r#"{"name":"Purchase"}"#, "{changed:?}");
    ensure!(store.update_metric(project.id, "nope", "{}").await?.is_none(), "updating a missing metric");
    ensure!(store.list_metrics(project.id).await?.len() == 1, "listed");
    ensure!(store.delete_metric(project.id, "buy").await?, "deleted");
    ensure!(!store.delete_metric(project.id, "buy").await?, "deleted twice reports false");
    ensure!(store.list_metrics(project.id).await?.is_empty(), "gone");
    Ok(())
}
