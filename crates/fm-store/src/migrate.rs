//! Versioned migrations, one SQL file per version and backend, embedded in the binary. Applied
//! in order on open, inside one transaction that no other process can run at the same time
//! (SQLite `BEGIN IMMEDIATE`; PostgreSQL an advisory transaction lock); `fm_schema_version`
//! records each applied version. Opening a database migrated by a newer fm is refused.
//!
//! To change the schema: add `migrations/{sqlite,postgres}/000N_name.sql` (both!) and a line
//! below, in version order. Never edit a released migration.
//!
//! Every migration not yet recorded is applied, not only those above the highest applied
//! version: numbers reserved by work merged in another order (a database at 5 that has not seen
//! 4) still get applied. Migrations must therefore not depend on each other's order beyond
//! their numbers' intent.

pub(crate) struct Migration {
    pub version: i64,
    pub name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

impl Migration {
    pub fn sql(&self, backend: &str) -> &'static str {
        if backend == "postgres" {
            self.postgres
        } else {
            self.sqlite
        }
    }
}

pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sqlite: include_str!("../migrations/sqlite/0001_init.sql"),
        postgres: include_str!("../migrations/postgres/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "firing_alerts_index",
        sqlite: include_str!("../migrations/sqlite/0002_firing_alerts_index.sql"),
        postgres: include_str!("../migrations/postgres/0002_firing_alerts_index.sql"),
    },
    Migration {
        version: 3,
        name: "lz4_json",
        sqlite: include_str!("../migrations/sqlite/0003_lz4_json.sql"),
        postgres: include_str!("../migrations/postgres/0003_lz4_json.sql"),
    },
    Migration {
        version: 5,
        name: "run_outcome",
        sqlite: include_str!("../migrations/sqlite/0005_run_outcome.sql"),
        postgres: include_str!("../migrations/postgres/0005_run_outcome.sql"),
    },
];

pub(crate) fn latest() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}
