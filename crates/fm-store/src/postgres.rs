//! The shared store: PostgreSQL, for one or several servers. Claims use
//! `FOR UPDATE SKIP LOCKED` (workers never wait on, nor take, each other's runs); alert dedup
//! relies on the partial unique index of active dedup keys (`INSERT … ON CONFLICT DO NOTHING`,
//! then attach); budgets take a transaction-scoped advisory lock on the key.

use std::str::FromStr;
use std::sync::LazyLock;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, Postgres};

use crate::mask_url;

/// The pool's size when none is asked for.
pub const DEFAULT_CONNECTIONS: u32 = 16;

/// The PostgreSQL store.
pub struct PostgresStore {
    pool: PgPool,
    url: String,
    /// Cancel requests: this process's own, and those heard on `fm_cancel` (see
    /// `listen_for_cancels`).
    cancels: tokio::sync::broadcast::Sender<String>,
    listening: std::sync::Once,
}

/// The channel cancel requests of running runs are announced on; the payload is the run id.
const CANCEL_CHANNEL: &str = "fm_cancel";

static CLAIM_SQL: LazyLock<String> = LazyLock::new(|| {
    CLAIM_TEMPLATE
        .replace("{queue}", "fm_runs")
        .replace("{lock}", " FOR UPDATE SKIP LOCKED")
});

impl PostgresStore {
    pub(crate) const BACKEND: &'static str = "postgres";
    pub(crate) const ROW_LOCK: &'static str = " FOR UPDATE";
    /// Announces a cancel request to every process listening on the database, at commit.
    pub(crate) const NOTIFY_CANCEL: Option<&'static str> =
        Some("SELECT pg_notify('fm_cancel', $1)");

    /// Connects to `postgres://user:password@host:port/db` and migrates the schema (in the
    /// connection's default schema, normally `public`). TLS is not supported: keep the
    /// database on a trusted network or a local socket.
    pub async fn open(url: &str) -> Result<PostgresStore, StoreError> {
        Self::open_with_connections(url, DEFAULT_CONNECTIONS).await
    }

    /// Like [`open`](Self::open), with a pool of `connections` (at least 2). A server needs
    /// about two per worker (the worker's own calls, and its run's event writes) plus some for
    /// the API; each server on one database takes its own share of `max_connections`.
    pub async fn open_with_connections(
        url: &str,
        connections: u32,
    ) -> Result<PostgresStore, StoreError> {
        let opts = Self::options(url)?;
        Self::connect(url, opts, connections.max(2)).await
    }

    /// Like [`open`](Self::open), with every table in `schema` (created if missing; letters,
    /// digits and `_` only). Several fm installations, or tests, can share one database this way.
    pub async fn open_in_schema(url: &str, schema: &str) -> Result<PostgresStore, StoreError> {
        let valid = !schema.is_empty()
            && schema.len() <= 63
            && schema
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !schema.starts_with(|c: char| c.is_ascii_digit());
        if !valid {
            return Err(StoreError::open(
                url,
                format!("invalid schema name '{schema}'"),
                Some("use letters, digits and '_' (not first), at most 63 characters"),
            ));
        }
        let opts = Self::options(url)?;
        // Create the schema first, on a connection of its own, so the pool's search_path
        // points at something that exists; under the migration lock, because concurrent
        // `CREATE SCHEMA IF NOT EXISTS` can still collide.
        let mut admin = opts
            .connect()
            .await
            .map_err(|e| StoreError::open(url, e, Some("is PostgreSQL running and reachable?")))?;
        let create = async {
            let mut tx = admin.begin().await?;
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext('fm-store-migrate'), hashtext($1))")
                .bind(schema)
                .execute(&mut *tx)
                .await?;
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "CREATE SCHEMA IF NOT EXISTS \"{schema}\""
            )))
            .execute(&mut *tx)
            .await?;
            tx.commit().await
        };
        create
            .await
            .map_err(|e| StoreError::open(url, format!("creating schema {schema}: {e}"), None))?;
        let _ = admin.close().await;
        Self::connect(
            url,
            opts.options([("search_path", schema)]),
            DEFAULT_CONNECTIONS,
        )
        .await
    }

    fn options(url: &str) -> Result<PgConnectOptions, StoreError> {
        PgConnectOptions::from_str(url).map_err(|e| {
            StoreError::open(
                url,
                e,
                Some("expected postgres://user:password@host:5432/database"),
            )
        })
    }

    async fn connect(
        url: &str,
        opts: PgConnectOptions,
        connections: u32,
    ) -> Result<PostgresStore, StoreError> {
        let hint =
            Some("is PostgreSQL running and reachable, and are the user and password right?");
        // One plain attempt first: the pool would retry a refused connection until its acquire
        // timeout, and a wrong address should fail at once, clearly.
        let probe = opts
            .connect()
            .await
            .map_err(|e| StoreError::open(url, e, hint))?;
        let _ = probe.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(connections)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(opts)
            .await
            .map_err(|e| {
                StoreError::open(
                    url,
                    e,
                    Some(
                        "is PostgreSQL running and reachable, and are the user and password right?",
                    ),
                )
            })?;
        Self::migrate(&pool).await?;
        Ok(PostgresStore {
            pool,
            url: mask_url(url),
            cancels: tokio::sync::broadcast::channel(256).0,
            listening: std::sync::Once::new(),
        })
    }

    /// The URL, password masked.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The connection pool, for what the store does not offer (tests, maintenance).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    fn claim_sql() -> &'static str {
        CLAIM_SQL.as_str()
    }

    /// Runs `f` in a transaction of its own and commits it if `f` succeeded (rolls it back if
    /// not). Concurrent writes run side by side; row locks and advisory locks order them.
    async fn write<T: Send + 'static>(
        &self,
        op: &'static str,
        f: impl WriteFn<PgConnection, T>,
    ) -> Result<T, StoreError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(|e| StoreError::db(Self::BACKEND, op, e))?;
        match f(&mut tx).await {
            Ok(v) => {
                tx.commit()
                    .await
                    .map_err(|e| StoreError::db(Self::BACKEND, op, e))?;
                Ok(v)
            }
            Err(e) => {
                // Dropping the transaction would roll it back too, but only on the connection's
                // next use; do it now so the connection returns to the pool clean.
                let _ = tx.rollback().await;
                Err(e)
            }
        }
    }

    /// Starts (once) the task that listens on `fm_cancel` with a connection of the pool and
    /// forwards run ids to `cancels`. A lost connection is re-established (a notification sent
    /// meanwhile is missed: workers poll too); the task ends when the pool is closed.
    fn listen_for_cancels(&self) {
        self.listening.call_once(|| {
            let pool = self.pool.clone();
            let tx = self.cancels.clone();
            tokio::spawn(async move {
                while !pool.is_closed() {
                    let mut listener = match sqlx::postgres::PgListener::connect_with(&pool).await
                    {
                        Ok(l) => l,
                        Err(_) if pool.is_closed() => return,
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot listen for cancel requests; retrying in 1 s");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                            continue;
                        }
                    };
                    if let Err(e) = listener.listen(CANCEL_CHANNEL).await {
                        tracing::warn!(error = %e, "cannot listen for cancel requests; retrying in 1 s");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                    loop {
                        match listener.recv().await {
                            Ok(n) => {
                                let _ = tx.send(n.payload().to_owned());
                            }
                            Err(_) if pool.is_closed() => return,
                            Err(e) => {
                                tracing::warn!(error = %e, "listening for cancel requests failed; reconnecting");
                                tokio::time::sleep(Duration::from_millis(200)).await;
                                break;
                            }
                        }
                    }
                }
            });
        });
    }

    /// Nothing to wait for: every write finished with its own call.
    async fn close_writes(&self) {}

    /// Serializes migrations across every process migrating this schema.
    async fn migration_tx(
        pool: &PgPool,
    ) -> Result<sqlx::Transaction<'static, Postgres>, sqlx::Error> {
        let mut tx = pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('fm-store-migrate'), hashtext(current_schema()))")
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    /// Serializes budget checks of one key across every worker, until the transaction ends.
    async fn lock_budget(tx: &mut PgConnection, key: &str) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('fm-store-budget'), hashtext($1))")
            .bind(key)
            .execute(tx)
            .await?;
        Ok(())
    }
}

crate::common::store_impl!(PostgresStore, Postgres, sqlx::postgres::PgRow);
