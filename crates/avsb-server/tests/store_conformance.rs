//! Every storage backend passes the same conformance suite. SQLite runs it twice: in memory and
//! in a real database file (WAL, reopened afterwards to check that the data survived).

mod store;

use avsb_server::store::{SqliteStore, Store};
use store::conformance;

#[tokio::test]
async fn sqlite_in_memory_conforms() {
    let store = SqliteStore::in_memory().unwrap();
    conformance::run(&store).await.unwrap();
}

#[tokio::test]
async fn sqlite_file_conforms_and_persists() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("avsb.sqlite3");
    {
        let store = SqliteStore::open(&path).unwrap();
        conformance::run(&store).await.unwrap();
    }
    let reopened = SqliteStore::open(&path).unwrap();
    let project = reopened.project("shop").await.unwrap().expect("the project survives a reopen");
    assert_eq!(reopened.list_environments(project.id).await.unwrap().len(), 2);
    let env = &reopened.list_environments(project.id).await.unwrap()[0];
    assert_eq!(reopened.list_events(env.id, &avsb_server::store::EventFilter::default(), 0, 10).await.unwrap().len(), 2, "events survive a reopen");
}
