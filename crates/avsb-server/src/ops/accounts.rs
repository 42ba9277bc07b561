//! People and what they may do: users with argon2id-hashed passwords, per-project roles,
//! console sessions, sign-in throttling, the one-time setup of the first owner, and the audit
//! log of every change of keys, tokens, members and roles and of every sign-in.
//!
//! Everything lives in the `Store`, so every replica sees the same users and sessions.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use serde_json::json;

use super::{WriteError, WriteResult};
use crate::error::ErrorCode;
use crate::keys;
use crate::store::{now_millis, LoginFailures, NewUser, ProjectRole, SessionRecord, Store, User};

/// The shortest password accepted, in characters.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// The longest password accepted, in bytes (hashing cost grows with it).
pub const MAX_PASSWORD_BYTES: usize = 256;
/// How long a session lives without use.
pub const SESSION_IDLE_MILLIS: i64 = 12 * 3600 * 1000;
/// How long a session lives at most, used or not.
pub const SESSION_MAX_MILLIS: i64 = 7 * 24 * 3600 * 1000;
/// A session's last use is written at most this often (a page view is not a write).
const SESSION_TOUCH_MILLIS: i64 = 60 * 1000;
/// Failed sign-ins within [`FAILURE_WINDOW_MILLIS`] before a key is locked.
pub const MAX_FAILURES: i64 = 5;
/// The window failures are counted in.
pub const FAILURE_WINDOW_MILLIS: i64 = 15 * 60 * 1000;
/// The first lock; each further failure while counting doubles it, up to [`MAX_LOCK_MILLIS`].
const FIRST_LOCK_MILLIS: i64 = 60 * 1000;
const MAX_LOCK_MILLIS: i64 = 15 * 60 * 1000;
/// The setting that holds the one-time setup token's digest.
const SETUP_TOKEN: &str = "setup_token";

fn invalid(field: &str, message: impl Into<String>) -> WriteError {
    WriteError::field(ErrorCode::InvalidField, field, message)
}

/// Checks a username: 1 to 64 letters, digits, `.`, `_`, `-` or `@`.
pub fn check_username(username: &str) -> WriteResult<()> {
    let ok = !username.is_empty()
        && username.len() <= 64
        && username.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(invalid("username", "a username is 1 to 64 letters, digits, '.', '_', '-' or '@'"))
    }
}

/// Checks a new password's length.
pub fn check_password(password: &str) -> WriteResult<()> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(invalid("password", format!("a password has at least {MIN_PASSWORD_CHARS} characters")));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(invalid("password", format!("a password has at most {MAX_PASSWORD_BYTES} bytes")));
    }
    Ok(())
}

/// An argon2id PHC string for `password` (OWASP's parameters, the crate's defaults), computed off
/// the async workers.
pub async fn hash_password(password: &str) -> WriteResult<String> {
    let password = password.to_string();
    tokio::task::spawn_blocking(move || {
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).map_err(WriteError::internal)?;
        let salt = SaltString::encode_b64(&salt).map_err(WriteError::internal)?;
        Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(WriteError::internal)
    })
    .await
    .map_err(WriteError::internal)?
}

/// Whether `password` matches the PHC string, off the async workers.
async fn verify_password(password: &str, hash: &str) -> bool {
    let (password, hash) = (password.to_string(), hash.to_string());
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash).is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
    })
    .await
    .unwrap_or(false)
}

/// A random password of 24 URL-safe characters (for the demo and resets).
pub fn random_password() -> WriteResult<String> {
    let mut bytes = [0u8; 18];
    getrandom::fill(&mut bytes).map_err(WriteError::internal)?;
    Ok(base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes))
}

/// Creates a user with a password.
pub async fn create_user(
    store: &dyn Store,
    username: &str,
    display_name: &str,
    password: &str,
    is_owner: bool,
    actor: &str,
) -> WriteResult<User> {
    check_username(username)?;
    check_password(password)?;
    let display_name = if display_name.trim().is_empty() { username } else { display_name.trim() };
    if display_name.len() > 100 {
        return Err(invalid("displayName", "a display name has at most 100 bytes"));
    }
    let password_hash = hash_password(password).await?;
    let user = store
        .create_user(NewUser {
            username: username.to_string(),
            display_name: display_name.to_string(),
            password_hash,
            is_owner,
        })
        .await?;
    audit(store, actor, "user.create", None, &user.username, json!({"owner": is_owner})).await;
    Ok(user)
}

/// Why a sign-in failed. The two are told apart only in the log, never to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignInError {
    /// Unknown user, wrong password, or a disabled account.
    Refused,
    /// Too many failures: retry after this many seconds.
    Throttled(i64),
    /// The store failed.
    Store(String),
}

/// Checks a username and password, with throttling per username and per client address.
/// A refused attempt costs as much as an accepted one (a made-up hash is checked for an
/// unknown user), so the timing does not tell which usernames exist.
pub async fn sign_in(store: &dyn Store, username: &str, password: &str, client: &str) -> Result<User, SignInError> {
    let store_error = |e: crate::store::StoreError| SignInError::Store(e.to_string());
    let now = now_millis();
    let keys = [format!("user:{}", username.to_lowercase()), format!("client:{client}")];
    for key in &keys {
        if let Some(f) = store.login_failures(key).await.map_err(store_error)? {
            if f.locked_until > now {
                return Err(SignInError::Throttled((f.locked_until - now + 999) / 1000));
            }
        }
    }
    let found = store.user_by_username(username).await.map_err(store_error)?;
    // A valid PHC string for no password anyone has, so an unknown user costs a verification too.
    const DECOY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$Xj6fDTXWv3g2DqTkj2hXQOCD+dL4TIO7mBUUE7X2xOQ";
    let (user, hash) = match &found {
        Some((user, hash)) => (Some(user), hash.as_str()),
        None => (None, DECOY),
    };
    let matches = verify_password(password, hash).await;
    match user {
        Some(user) if matches && user.disabled_at.is_none() => {
            for key in &keys {
                store.clear_login_failures(key).await.map_err(store_error)?;
            }
            audit(store, &user.username, "sign_in", None, &user.username, json!({"client": client})).await;
            Ok(user.clone())
        }
        _ => {
            for key in &keys {
                let previous = store.login_failures(key).await.map_err(store_error)?;
                store.set_login_failures(key, next_failures(previous, now)).await.map_err(store_error)?;
            }
            audit(store, username, "sign_in.failed", None, username, json!({"client": client})).await;
            Err(SignInError::Refused)
        }
    }
}

/// The failures after one more: counted in a window; at [`MAX_FAILURES`] the key is locked for a
/// minute, and each further failure doubles the lock, up to fifteen minutes.
fn next_failures(previous: Option<LoginFailures>, now: i64) -> LoginFailures {
    let current = previous.filter(|f| now - f.window_start < FAILURE_WINDOW_MILLIS);
    let failures = current.map_or(1, |f| f.failures + 1);
    let window_start = current.map_or(now, |f| f.window_start);
    let locked_until = if failures >= MAX_FAILURES {
        let doublings = u32::try_from(failures - MAX_FAILURES).unwrap_or(u32::MAX).min(10);
        now + (FIRST_LOCK_MILLIS.saturating_mul(1 << doublings)).min(MAX_LOCK_MILLIS)
    } else {
        0
    };
    LoginFailures { failures, window_start, locked_until }
}

/// A new session: the id for the cookie (only its digest is stored) and its CSRF token.
pub async fn start_session(store: &dyn Store, user: &User) -> WriteResult<(String, String)> {
    let id = random_token()?;
    let csrf = random_token()?;
    let expires = now_millis() + SESSION_IDLE_MILLIS;
    store.create_session(&keys::digest(&id), user.id, &csrf, expires).await?;
    Ok((id, csrf))
}

/// The live session with this cookie id; its end moves with use, up to its maximum age.
pub async fn session(store: &dyn Store, id: &str) -> WriteResult<Option<SessionRecord>> {
    let now = now_millis();
    let digest = keys::digest(id);
    let Some(record) = store.session(&digest, now).await? else { return Ok(None) };
    if now - record.last_seen_at > SESSION_TOUCH_MILLIS {
        let expires = (now + SESSION_IDLE_MILLIS).min(record.created_at + SESSION_MAX_MILLIS);
        store.touch_session(&digest, now, expires).await?;
    }
    Ok(Some(record))
}

/// Ends a session.
pub async fn end_session(store: &dyn Store, id: &str) -> WriteResult<()> {
    store.delete_session(&keys::digest(id)).await?;
    Ok(())
}

/// 256 random bits, URL-safe.
fn random_token() -> WriteResult<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(WriteError::internal)?;
    Ok(base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes))
}

/// Changes a user's own password after checking the current one; ends all their sessions.
pub async fn change_password(store: &dyn Store, user: &User, current: &str, new: &str) -> WriteResult<()> {
    let (_, hash) = store
        .user_by_username(&user.username)
        .await?
        .ok_or_else(|| WriteError::NotFound(format!("user '{}' not found", user.username)))?;
    if !verify_password(current, &hash).await {
        return Err(invalid("currentPassword", "the current password is not right"));
    }
    set_password(store, user, new, &user.username).await
}

/// Sets a user's password (an owner's reset, or the command line's); ends all their sessions.
pub async fn set_password(store: &dyn Store, user: &User, new: &str, actor: &str) -> WriteResult<()> {
    check_password(new)?;
    let hash = hash_password(new).await?;
    store.set_password(user.id, &hash).await?;
    audit(store, actor, "user.password", None, &user.username, json!({})).await;
    Ok(())
}

/// Sets (or removes) a user's role in a project.
pub async fn set_role(
    store: &dyn Store,
    project: &crate::store::Project,
    user: &User,
    role: Option<ProjectRole>,
    actor: &str,
) -> WriteResult<()> {
    store.set_membership(user.id, project.id, role).await?;
    let action = if role.is_some() { "member.set_role" } else { "member.remove" };
    audit(store, actor, action, Some(project.id), &user.username, json!({"role": role.map(ProjectRole::as_str)})).await;
    Ok(())
}

/// A new one-time setup token when the instance has no user yet (each start makes a new one and
/// forgets the last); `None` once someone has set it up.
pub async fn setup_token(store: &dyn Store) -> WriteResult<Option<String>> {
    if store.user_count().await? > 0 {
        store.set_setting(SETUP_TOKEN, None).await?;
        return Ok(None);
    }
    let token = random_token()?;
    let digest = hex(&keys::digest(&token));
    store.set_setting(SETUP_TOKEN, Some(&digest)).await?;
    Ok(Some(token))
}

/// Creates the first owner with the one-time setup token; the token is spent.
pub async fn set_up(store: &dyn Store, token: &str, username: &str, display_name: &str, password: &str) -> WriteResult<User> {
    let expected = store.setting(SETUP_TOKEN).await?;
    let given = hex(&keys::digest(token));
    if expected.as_deref() != Some(given.as_str()) || store.user_count().await? > 0 {
        return Err(WriteError::refused(ErrorCode::Forbidden, "this setup link is not valid (any more)"));
    }
    let user = create_user(store, username, display_name, password, true, "setup").await?;
    store.set_setting(SETUP_TOKEN, None).await?;
    Ok(user)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Appends to the audit log. A failure to write it is logged, never the cause of a refused
/// change (the change has happened).
pub async fn audit(
    store: &dyn Store,
    actor: &str,
    action: &str,
    project_id: Option<i64>,
    target: &str,
    details: serde_json::Value,
) {
    if let Err(e) = store.append_audit(actor, action, project_id, target, &details.to_string()).await {
        tracing::error!(action, target, "the audit log could not be written: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_lock_after_five_and_double_up_to_fifteen_minutes() {
        let mut f = None;
        let now = 1_000_000;
        for _ in 0..4 {
            f = Some(next_failures(f, now));
            assert_eq!(f.unwrap().locked_until, 0);
        }
        f = Some(next_failures(f, now));
        assert_eq!(f.unwrap().locked_until, now + 60_000);
        f = Some(next_failures(f, now));
        assert_eq!(f.unwrap().locked_until, now + 120_000);
        for _ in 0..10 {
            f = Some(next_failures(f, now));
        }
        assert_eq!(f.unwrap().locked_until, now + MAX_LOCK_MILLIS);
        // A failure after the window starts counting anew.
        let later = next_failures(f, now + FAILURE_WINDOW_MILLIS + 1);
        assert_eq!((later.failures, later.locked_until), (1, 0));
    }

    #[test]
    fn the_decoy_hash_is_a_valid_phc_string() {
        // sign_in verifies it for unknown users; a malformed one would answer faster.
        assert!(PasswordHash::new(
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$Xj6fDTXWv3g2DqTkj2hXQOCD+dL4TIO7mBUUE7X2xOQ"
        )
        .is_ok());
    }

    #[tokio::test]
    async fn a_hashed_password_verifies_and_another_does_not() {
        let hash = hash_password("correct horse battery").await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &hash).await);
        assert!(!verify_password("correct horse batterz", &hash).await);
        assert!(check_password("short").is_err() && check_password(&"x".repeat(300)).is_err());
    }
}
