//! The store's one error type, and masking of passwords in URLs.

/// What went wrong in the store: which operation, on which backend, and what to do about it.
/// Messages never contain a connection password (URLs are masked before they are printed).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "unsupported store URL '{url}': use sqlite://path/to/fm.db or postgres://user@host:5432/db"
    )]
    BadUrl { url: String },

    #[error("cannot open {url}: {message}{hint}")]
    Open {
        /// Masked.
        url: String,
        message: String,
        hint: Hint,
    },

    #[error(
        "{backend} store: migrating the schema to version {version} ({name}) failed: {message}"
    )]
    Migrate {
        backend: &'static str,
        version: i64,
        name: &'static str,
        message: String,
    },

    #[error(
        "{backend} store: the database is at schema version {found}, newer than this fm knows ({known}); \
         upgrade fm, or point it at another database"
    )]
    SchemaTooNew {
        backend: &'static str,
        found: i64,
        known: i64,
    },

    #[error("{backend} store: {op} failed: {source}{hint}")]
    Db {
        backend: &'static str,
        op: &'static str,
        #[source]
        source: sqlx::Error,
        hint: Hint,
    },

    #[error(
        "{backend} store: {op} was not saved: {message}; nothing of it was written, try again"
    )]
    NotSaved {
        backend: &'static str,
        op: &'static str,
        message: String,
    },

    #[error("{backend} store: {op}: stored data could not be read ({message}); the database may have been edited by hand or written by another fm version")]
    Corrupt {
        backend: &'static str,
        op: &'static str,
        message: String,
    },

    #[error("{op}: {message}")]
    Invalid { op: &'static str, message: String },

    #[error("{op}: run '{run_id}' not found")]
    NotFound { op: &'static str, run_id: String },

    #[error("{op}: worker '{worker}' no longer holds the lease on run '{run_id}'; not acting without it (another worker may have taken the run over)")]
    LeaseLost {
        op: &'static str,
        run_id: String,
        worker: String,
    },
}

/// An optional "what to do" appended to a message (empty, or starting with "; ").
#[derive(Debug, Clone, Default)]
pub struct Hint(pub Option<&'static str>);

impl std::fmt::Display for Hint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(h) => write!(f, "; {h}"),
            None => Ok(()),
        }
    }
}

impl StoreError {
    pub(crate) fn db(backend: &'static str, op: &'static str, source: sqlx::Error) -> StoreError {
        let hint = Hint(hint_for(&source));
        StoreError::Db {
            backend,
            op,
            source,
            hint,
        }
    }

    pub(crate) fn corrupt(
        backend: &'static str,
        op: &'static str,
        message: impl std::fmt::Display,
    ) -> StoreError {
        StoreError::Corrupt {
            backend,
            op,
            message: message.to_string(),
        }
    }

    pub(crate) fn open(
        url: &str,
        message: impl std::fmt::Display,
        hint: Option<&'static str>,
    ) -> StoreError {
        let masked = mask_url(url);
        let mut message = message.to_string();
        if let Some(pw) = url_password(url) {
            if !pw.is_empty() {
                message = message.replace(pw, "***");
            }
        }
        StoreError::Open {
            url: masked,
            message,
            hint: Hint(hint),
        }
    }
}

fn hint_for(e: &sqlx::Error) -> Option<&'static str> {
    match e {
        sqlx::Error::PoolTimedOut => {
            Some("all store connections are busy; the database may be overloaded or unreachable")
        }
        sqlx::Error::Io(_) => Some("is the database running and reachable?"),
        sqlx::Error::Database(d) => {
            let m = d.message();
            if m.contains("database is locked") || m.contains("database is busy") {
                Some("another process held the SQLite write lock longer than the busy timeout; for several servers use PostgreSQL")
            } else if m.contains("readonly") || m.contains("read-only") {
                Some("the database file or its directory is not writable")
            } else {
                None
            }
        }
        _ => None,
    }
}

/// The password of a `scheme://user:password@host/...` URL, as written.
fn url_password(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    let userinfo = authority.rsplit_once('@')?.0;
    Some(userinfo.split_once(':')?.1)
}

/// `url` with any password replaced by `***` (in the userinfo and in a `password=` parameter).
pub fn mask_url(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(pw) = url_password(url) {
        if !pw.is_empty() {
            if let Some((scheme, rest)) = url.split_once("://") {
                let (userinfo, after) = rest.split_once('@').map_or((rest, ""), |(u, a)| (u, a));
                let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
                out = format!("{scheme}://{user}:***@{after}");
            }
        }
    }
    if let Some(q) = out.find('?') {
        let (base, query) = out.split_at(q + 1);
        let masked: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => kv.to_owned(),
            })
            .collect();
        out = format!("{base}{}", masked.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_passwords() {
        assert_eq!(
            mask_url("postgres://fm:s3cret@db:5432/fm"),
            "postgres://fm:***@db:5432/fm"
        );
        assert_eq!(mask_url("postgres://fm@db/fm"), "postgres://fm@db/fm");
        assert_eq!(
            mask_url("postgres://db/fm?user=fm&password=x&sslmode=disable"),
            "postgres://db/fm?user=fm&password=***&sslmode=disable"
        );
        assert_eq!(mask_url("sqlite://.fm/fm.db"), "sqlite://.fm/fm.db");
        let e = StoreError::open("postgres://fm:s3cret@db/fm", "auth failed for s3cret", None);
        assert!(!e.to_string().contains("s3cret"), "{e}");
    }
}
