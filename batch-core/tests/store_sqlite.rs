//! The durable state store on real files: round trips, atomic updates, and damaged files
//! (which must be errors naming the file, never panics, and must be left untouched).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use batch_core::job::JobMemory;
use batch_core::model::{CronJob, Job};
use batch_core::store::{Durability, JobRecord, JobUpdate, SqliteStore, StateStore, StoreError};

fn job(name: &str, uid: &str) -> Job {
    let mut job = Job::default();
    job.metadata.name = Some(name.to_owned());
    job.metadata.uid = Some(uid.to_owned());
    job
}

fn cron(name: &str, uid: &str) -> CronJob {
    let mut c = CronJob::default();
    c.metadata.name = Some(name.to_owned());
    c.metadata.uid = Some(uid.to_owned());
    c.spec.schedule = "* * * * *".to_owned();
    c
}

/// A store with two Jobs (one with counted pods) and a CronJob.
fn populated(path: &Path, durability: Durability) {
    let store = SqliteStore::open_with(path, durability).unwrap();
    store.create_job(&JobRecord::new(job("a", "ua"))).unwrap();
    store.create_job(&JobRecord::new(job("b", "ub"))).unwrap();
    let mut a = job("a", "ua");
    a.status.succeeded = 2;
    let memory = JobMemory {
        pods_created: 3,
        ..JobMemory::default()
    };
    let starting = ["a-2".to_owned()];
    store
        .update_job(JobUpdate::new(&a, &memory).starting(&starting))
        .unwrap();
    let counted = ["a-0".to_owned(), "a-1".to_owned()];
    store
        .update_job(JobUpdate::new(&a, &memory).counting(&counted))
        .unwrap();
    store.create_cron_job(&cron("c", "uc")).unwrap();
}

#[test]
fn records_round_trip_through_a_reopened_file_in_both_durabilities() {
    for durability in [Durability::Full, Durability::Process] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        populated(&path, durability);
        let state = SqliteStore::open(&path).unwrap().load().unwrap();
        let a = &state.jobs["a"];
        assert_eq!(a.job.status.succeeded, 2);
        assert_eq!(a.memory.pods_created, 3);
        assert_eq!(
            a.counted.iter().cloned().collect::<Vec<_>>(),
            ["a-0", "a-1"]
        );
        // The last update replaced the intent.
        assert!(a.starting.is_empty());
        assert!(state.jobs["b"].counted.is_empty());
        assert_eq!(state.cron_jobs["c"].spec.schedule, "* * * * *");
        // Read-only opening sees the same, and refuses writes.
        let ro = SqliteStore::open_read_only(&path).unwrap();
        assert_eq!(ro.load().unwrap(), state);
        assert!(matches!(
            ro.create_job(&JobRecord::new(job("x", "ux"))),
            Err(StoreError::Storage { .. })
        ));
    }
}

#[test]
fn names_are_unique_and_updates_need_the_same_uid() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("state.db")).unwrap();
    store.create_job(&JobRecord::new(job("a", "u1"))).unwrap();
    assert!(matches!(
        store.create_job(&JobRecord::new(job("a", "u2"))),
        Err(StoreError::AlreadyExists { kind: "Job", .. })
    ));
    let other = job("a", "u2");
    let err = store
        .update_job(JobUpdate::new(&other, &JobMemory::default()))
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    // Deleting with another UID leaves the record; with its own, removes it and its
    // counted pods.
    let counted = ["a-0".to_owned()];
    store
        .update_job(JobUpdate::new(&job("a", "u1"), &JobMemory::default()).counting(&counted))
        .unwrap();
    store.delete_job("a", "u2").unwrap();
    assert!(store.load().unwrap().jobs.contains_key("a"));
    store.delete_job("a", "u1").unwrap();
    assert!(store.load().unwrap().jobs.is_empty());
    store.create_job(&JobRecord::new(job("a", "u1"))).unwrap();
    assert!(store.load().unwrap().jobs["a"].counted.is_empty());
    // CronJobs likewise.
    store.create_cron_job(&cron("c", "uc")).unwrap();
    assert!(store.create_cron_job(&cron("c", "uc")).is_err());
    assert!(matches!(
        store.update_cron_job(&cron("c", "other")),
        Err(StoreError::NotFound { .. })
    ));
    store.delete_cron_job("c", "uc").unwrap();
    assert!(store.load().unwrap().cron_jobs.is_empty());
}

/// Opening must fail with `Corrupt` naming the file, and leave the bytes as they were.
fn refused_untouched(path: &Path) {
    let before = std::fs::read(path).unwrap();
    let result = SqliteStore::open(path).and_then(|s| s.load());
    let err = result.expect_err("a damaged store is refused");
    assert!(
        matches!(err, StoreError::Corrupt { .. }),
        "a damaged file is Corrupt, got: {err}"
    );
    assert!(err.to_string().contains("state.db"), "{err}");
    assert_eq!(
        std::fs::read(path).unwrap(),
        before,
        "the file is untouched"
    );
    // Read-only opening (batch status) says the same.
    assert!(
        SqliteStore::open_read_only(path)
            .and_then(|s| s.load())
            .is_err()
    );
}

#[test]
fn a_file_of_garbage_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let garbage: Vec<u8> = (0..16_384u32).map(|i| (i * 7919 % 251) as u8).collect();
    std::fs::write(&path, garbage).unwrap();
    refused_untouched(&path);
}

#[test]
fn a_truncated_store_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    populated(&path, Durability::Full);
    // Make it large enough to have several pages, then cut it in half.
    {
        let store = SqliteStore::open(&path).unwrap();
        for i in 0..200 {
            let mut j = job(&format!("job-{i}"), &format!("u{i}"));
            j.metadata
                .annotations
                .insert("pad".to_owned(), "x".repeat(500));
            store.create_job(&JobRecord::new(j)).unwrap();
        }
    }
    // The last connection closed: the log was checkpointed into the file.
    let len = std::fs::metadata(&path).unwrap().len();
    assert!(len > 8 * 4096, "several pages: {len}");
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(len / 2).unwrap();
    drop(f);
    refused_untouched(&path);
}

#[test]
fn overwritten_pages_are_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    populated(&path, Durability::Full);
    let mut bytes = std::fs::read(&path).unwrap();
    // Page 2 onwards (the tables' b-tree pages): overwrite their headers.
    for page in 1..bytes.len() / 4096 {
        for b in &mut bytes[page * 4096..page * 4096 + 64] {
            *b = 0xFF;
        }
    }
    std::fs::write(&path, &bytes).unwrap();
    refused_untouched(&path);
}

#[test]
fn an_sqlite_file_that_is_not_a_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    // A valid SQLite database of something else.
    assert!(edit_with_python(&path, "CREATE TABLE other (x INTEGER)"));
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(err.to_string().contains("not a batch state store"), "{err}");
}

#[test]
fn a_record_that_does_not_decode_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    populated(&path, Durability::Full);
    assert!(edit_with_python(
        &path,
        "UPDATE jobs SET job = '{\"metadata\": 5' WHERE name = 'b'"
    ));
    let err = SqliteStore::open(&path).unwrap().load().unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("job \"b\""), "{err}");
}

/// Runs one SQL statement on a store file with Python's sqlite3 module (the store exposes
/// no raw SQL; scripts/test.sh installs python3). Returns whether it ran.
fn edit_with_python(path: &Path, sql: &str) -> bool {
    let script = "import sqlite3, sys\nc = sqlite3.connect(sys.argv[1])\nc.execute(sys.argv[2])\nc.commit()\nc.close()\n";
    std::process::Command::new("python3")
        .args(["-c", script])
        .arg(path)
        .arg(sql)
        .status()
        .is_ok_and(|s| s.success())
}
