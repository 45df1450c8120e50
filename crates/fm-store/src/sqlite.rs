//! The embedded store: one SQLite file in WAL mode (readers never wait for the writer), write
//! transactions begun `IMMEDIATE` (one writer at a time; the others wait up to the busy
//! timeout instead of failing), `synchronous = FULL` by default (a commit survives power loss;
//! `?synchronous=normal` trades that for speed and still survives a process crash).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::LazyLock;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::Sqlite;

use crate::writer::Writer;

/// How often opening tries again while another process switches a new file to WAL (about
/// 1.3 s in all).
const WAL_SWITCH_TRIES: u64 = 22;

/// How long a writer waits for another to finish before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The SQLite store. Cheap to share behind an `Arc`; several processes may open the same file
/// (writes are serialized), but for several servers PostgreSQL is the better fit.
pub struct SqliteStore {
    pool: SqlitePool,
    path: PathBuf,
    /// Every write of this process goes through it (group commit, see `writer.rs`).
    writer: Writer,
    /// Cancel requests made through this store, for this process's workers.
    cancels: tokio::sync::broadcast::Sender<String>,
}

static CLAIM_SQL: LazyLock<String> = LazyLock::new(|| {
    CLAIM_TEMPLATE
        .replace("{queue}", "fm_runs INDEXED BY fm_runs_queue")
        .replace("{lock}", "")
});

impl SqliteStore {
    pub(crate) const BACKEND: &'static str = "sqlite";
    /// SQLite has no row locks: `BEGIN IMMEDIATE` already excludes other writers.
    pub(crate) const ROW_LOCK: &'static str = "";
    /// No notifications between processes: cancels reach other processes by their poll.
    pub(crate) const NOTIFY_CANCEL: Option<&'static str> = None;

    /// Opens `sqlite://path` (relative to the working directory; `sqlite:///abs/path` for an
    /// absolute one), creating the file and its parent directories, and migrates it. Query
    /// parameter: `synchronous=normal|full`.
    pub async fn open(url: &str) -> Result<SqliteStore, StoreError> {
        let rest = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .ok_or_else(|| StoreError::BadUrl {
                url: url.to_owned(),
            })?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        if path.is_empty() || path == ":memory:" {
            return Err(StoreError::open(
                url,
                "no database file named",
                Some("give a file path, e.g. sqlite://.fm/fm.db (an in-memory database would lose every run)"),
            ));
        }
        let mut synchronous = SqliteSynchronous::Full;
        for kv in query.split('&').filter(|kv| !kv.is_empty()) {
            match kv.split_once('=') {
                Some(("synchronous", v)) => {
                    synchronous = SqliteSynchronous::from_str(v).map_err(|_| {
                        StoreError::open(
                            url,
                            format!("synchronous={v}"),
                            Some("use synchronous=normal or synchronous=full"),
                        )
                    })?;
                }
                _ => {
                    return Err(StoreError::open(
                        url,
                        format!("unknown parameter '{kv}'"),
                        Some("the only parameter is synchronous=normal|full"),
                    ))
                }
            }
        }
        Self::open_path_with(Path::new(path), synchronous, url).await
    }

    /// Opens (creating it and its parent directories) the database file at `path`.
    pub async fn open_path(path: &Path) -> Result<SqliteStore, StoreError> {
        let url = format!("sqlite://{}", path.display());
        Self::open_path_with(path, SqliteSynchronous::Full, &url).await
    }

    async fn open_path_with(
        path: &Path,
        synchronous: SqliteSynchronous,
        url: &str,
    ) -> Result<SqliteStore, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(dir).await.map_err(|e| {
                StoreError::open(
                    url,
                    format!("cannot create directory {}: {e}", dir.display()),
                    None,
                )
            })?;
        }
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(synchronous)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = Self::connect_pool(opts)
            .await
            .map_err(|e| StoreError::open(url, e, Some("check that the path is writable")))?;
        Self::migrate(&pool).await?;
        // The writer's connection is the pool's first one (the one that migrated), taken out of
        // it for good; the pool opens others for readers as they are needed. Taken only after
        // migrating: a new connection's `journal_mode` pragma can fail at once, without waiting,
        // while another process migrates a new file.
        let writer_conn = pool
            .acquire()
            .await
            .map_err(|e| StoreError::open(url, e, Some("check that the path is writable")))?
            .detach();
        Ok(SqliteStore {
            pool,
            path: path.to_owned(),
            writer: Writer::start(writer_conn),
            cancels: tokio::sync::broadcast::channel(256).0,
        })
    }

    /// The pool and its first connection. Several processes opening a new file at once race
    /// to switch it to WAL, and SQLite answers the losers "database is locked" at once rather
    /// than through the busy timeout; the switch takes milliseconds, so they try again.
    async fn connect_pool(opts: SqliteConnectOptions) -> Result<SqlitePool, sqlx::Error> {
        let mut tries = 0;
        loop {
            let pool = SqlitePoolOptions::new()
                .max_connections(8)
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(opts.clone())
                .await;
            match pool {
                Err(sqlx::Error::Database(d))
                    if tries < WAL_SWITCH_TRIES && d.message().contains("locked") =>
                {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(5 * tries)).await;
                }
                other => return other,
            }
        }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The connection pool, for what the store does not offer (tests, maintenance).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    fn claim_sql() -> &'static str {
        CLAIM_SQL.as_str()
    }

    /// Runs `f` in the writer's next batch (one transaction, `BEGIN IMMEDIATE`); returns when
    /// it is committed.
    async fn write<T: Send + 'static>(
        &self,
        op: &'static str,
        f: impl WriteFn<SqliteConnection, T>,
    ) -> Result<T, StoreError> {
        self.writer.write(op, f).await
    }

    /// Migrations run before any other write, on a connection of the pool: `BEGIN IMMEDIATE`
    /// keeps other processes from migrating at the same time.
    async fn migration_tx(
        pool: &SqlitePool,
    ) -> Result<sqlx::Transaction<'static, Sqlite>, sqlx::Error> {
        pool.begin_with("BEGIN IMMEDIATE").await
    }

    /// Lets the queued writes finish, then closes the writer's connection.
    async fn close_writes(&self) {
        self.writer.close().await;
    }

    /// Requests made through this store are sent to `cancels` directly; nothing to listen to.
    fn listen_for_cancels(&self) {}

    /// Nothing to do: the immediate transaction already excludes every other writer.
    async fn lock_budget(_tx: &mut SqliteConnection, _key: &str) -> Result<(), sqlx::Error> {
        Ok(())
    }
}

crate::common::store_impl!(SqliteStore, Sqlite, sqlx::sqlite::SqliteRow);
