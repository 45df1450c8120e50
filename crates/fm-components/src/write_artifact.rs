//! `write_artifact` (alias `file`): writes a rendered template to a file among the run's
//! artifacts (`fm run --artifacts DIR`, default `.fm/runs/<run id>/`): a postmortem draft, a
//! report.
//!
//! Config: `path` (a template: the file's path *inside* the artifacts directory, e.g.
//! `postmortem-{{input.id}}.md`), `content` (a template; a string is written as is, any other
//! JSON value as pretty-printed JSON).
//!
//! The path is checked after rendering, because it usually contains data from outside (an alert
//! id): it must be relative, must not contain `..`, `.` or empty segments, and may use only
//! letters, digits and `-_.+@=,` in each segment; anything else fails the stage (kind `config`)
//! rather than writing outside the run's directory. The file is written to a temporary name and
//! renamed, so a reader never sees half of it. Writing the run's own artifact is not an action on
//! the outside world, so it happens under `--dry-run` too.
//!
//! Output: `{path, file, bytes}`: the path written (the artifacts directory joined with the
//! file), the file's path relative to that directory, and its size.

use std::path::{Component as PathComponent, Path, PathBuf};
use std::sync::Arc;

use fm_core::model::{ConfigReader, ValueTemplate};
use fm_core::{Component, ErrorKind, StageContext, StageError, StageRuntime};
use fm_expr::{Template, Value};
use futures::future::BoxFuture;
use serde_json::json;

pub struct WriteArtifact;

#[derive(Debug)]
pub struct WriteArtifactRuntime {
    path: Template,
    content: ValueTemplate,
}

impl Component for WriteArtifact {
    fn name(&self) -> &'static str {
        "write_artifact"
    }

    fn aliases(&self) -> &'static [&'static str] {
        &["file", "artifact"]
    }

    fn summary(&self) -> &'static str {
        "Write a rendered template to a file among the run's artifacts (no path traversal)"
    }

    fn compile(&self, r: &mut ConfigReader<'_, '_>) -> Option<Arc<dyn StageRuntime>> {
        if !r.has("path", &["file_name", "filename", "name"]) {
            r.missing("path");
        }
        let path = r.template("path", &["file_name", "filename", "name"]);
        if !r.has("content", &["text", "data"]) {
            r.missing("content");
        }
        let content = r.value_template("content", &["text", "data"]);
        if let Some(p) = &path {
            if p.is_literal() {
                if let Err(e) = check_relative(p.source()) {
                    let at = r.key_path("path");
                    r.problem_with_hint(
                        "invalid_value",
                        at,
                        e,
                        "give a file name inside the artifacts directory, e.g. \"postmortem.md\"",
                    );
                    return None;
                }
            }
        }
        Some(Arc::new(WriteArtifactRuntime {
            path: path?,
            content: content?,
        }))
    }
}

/// Checks a rendered artifact path; returns it as a relative `PathBuf`.
pub fn check_relative(raw: &str) -> Result<PathBuf, String> {
    let shown = raw.escape_debug();
    if raw.trim().is_empty() {
        return Err("the artifact path is empty".into());
    }
    if raw.starts_with('/') || raw.starts_with('\\') || raw.contains(':') {
        return Err(format!(
            "artifact path \"{shown}\" is absolute; it must be relative to the artifacts directory"
        ));
    }
    let mut out = PathBuf::new();
    for segment in raw.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return Err(format!(
                "artifact path \"{shown}\" has a '{segment}' segment; only plain names are allowed (no '..', '.', '//')"
            ));
        }
        if let Some(bad) = segment
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "-_.+@=,".contains(*c)))
        {
            return Err(format!(
                "artifact path \"{shown}\" contains '{}'; use letters, digits and -_.+@=, in names",
                bad.escape_debug()
            ));
        }
        out.push(segment);
    }
    // Belt and braces: what std makes of it must be plain names only.
    if !out
        .components()
        .all(|c| matches!(c, PathComponent::Normal(_)))
    {
        return Err(format!(
            "artifact path \"{shown}\" is not a plain relative path"
        ));
    }
    Ok(out)
}

fn io_error(what: &str, path: &Path, e: &std::io::Error) -> StageError {
    StageError::new(ErrorKind::Config, format!("{what} {}: {e}", path.display())).retryable(false)
}

impl StageRuntime for WriteArtifactRuntime {
    fn idempotent(&self) -> bool {
        true
    }

    fn execute<'a>(&'a self, cx: &'a StageContext<'a>) -> BoxFuture<'a, Result<Value, StageError>> {
        Box::pin(async move {
            let rel = self.path.render_string(cx.scope).map_err(|e| {
                StageError::new(ErrorKind::Template, format!("config.path: {}", e.render()))
                    .retryable(false)
            })?;
            let rel_path = check_relative(&rel)
                .map_err(|m| StageError::new(ErrorKind::Config, m).retryable(false))?;
            let content = self
                .content
                .render(cx.scope)
                .map_err(|e| StageError::template(&e, "config.content"))?;
            let text = match content {
                Value::String(s) => s,
                other => serde_json::to_string_pretty(&other).map_err(|e| {
                    StageError::new(ErrorKind::Internal, format!("content is not JSON: {e}"))
                })?,
            };
            let Some(dir) = cx.artifacts_dir else {
                return Err(StageError::new(
                    ErrorKind::Config,
                    "this run has no artifacts directory (fm run sets one: --artifacts DIR)",
                )
                .retryable(false));
            };
            let target = dir.join(&rel_path);
            let parent = target.parent().unwrap_or(dir).to_path_buf();
            tokio::fs::create_dir_all(&parent)
                .await
                .map_err(|e| io_error("cannot create", &parent, &e))?;
            // A symlink planted inside the artifacts directory must not lead the write elsewhere.
            let (root, real_parent) = (
                tokio::fs::canonicalize(dir)
                    .await
                    .map_err(|e| io_error("cannot resolve", dir, &e))?,
                tokio::fs::canonicalize(&parent)
                    .await
                    .map_err(|e| io_error("cannot resolve", &parent, &e))?,
            );
            if !real_parent.starts_with(&root) {
                return Err(StageError::new(
                    ErrorKind::Config,
                    format!(
                        "artifact path \"{rel}\" resolves outside the artifacts directory {}",
                        dir.display()
                    ),
                )
                .retryable(false));
            }
            let file_name = target
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let tmp = parent.join(format!(".{file_name}.{}.tmp", cx.attempt));
            tokio::fs::write(&tmp, text.as_bytes())
                .await
                .map_err(|e| io_error("cannot write", &tmp, &e))?;
            tokio::fs::rename(&tmp, &target)
                .await
                .map_err(|e| io_error("cannot write", &target, &e))?;
            Ok(json!({
                "path": target.display().to_string(),
                "file": rel,
                "bytes": text.len(),
            }))
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::check_relative;

    #[test]
    fn plain_relative_paths_pass() {
        assert_eq!(
            check_relative("postmortem-incident-12345.md").unwrap(),
            std::path::PathBuf::from("postmortem-incident-12345.md")
        );
        assert!(check_relative("reports/2024/summary.md").is_ok());
    }

    #[test]
    fn traversal_and_absolute_paths_are_refused() {
        for bad in [
            "../x.md",
            "a/../../x",
            "/etc/passwd",
            "\\x",
            "C:\\x",
            "a//b",
            "./a",
            "",
            "a\\..\\b",
            "a\0b",
            "line\nbreak",
        ] {
            assert!(check_relative(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
