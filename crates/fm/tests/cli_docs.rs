//! docs/cli.md against the real binary's `--help`: every command has its section and every flag
//! is named in it; the dry-run rule is worded once, the same in `--help` and the docs.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn help(args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = fm_testkit::clean_command(env!("CARGO_BIN_EXE_fm"), dir.path())
        .args(args)
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success(), "fm {args:?} --help failed");
    String::from_utf8(out.stdout).unwrap()
}

/// The lines of a `--help` section (`Commands:`, `Options:`).
fn section<'a>(text: &'a str, title: &str) -> Vec<&'a str> {
    let mut lines = text.lines().skip_while(|l| l.trim() != title);
    lines.next();
    lines.take_while(|l| !l.trim().is_empty()).collect()
}

fn subcommands(text: &str) -> Vec<String> {
    section(text, "Commands:")
        .iter()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_owned)
        .collect()
}

fn long_flags(text: &str) -> Vec<String> {
    section(text, "Options:")
        .iter()
        .map(|l| l.trim_start())
        .filter(|l| l.starts_with('-'))
        .filter_map(|l| {
            let at = l.find("--")?;
            let flag: String = l[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            Some(flag)
        })
        .filter(|f| f != "--help" && f != "--version")
        .collect()
}

/// Every leaf command, as its words (`["runs", "list"]`), with its `--help`.
fn leaves(prefix: Vec<String>, out: &mut Vec<(Vec<String>, String)>) {
    let args: Vec<&str> = prefix.iter().map(String::as_str).collect();
    let text = help(&args);
    let subs = subcommands(&text);
    if subs.is_empty() {
        out.push((prefix, text));
        return;
    }
    for s in subs {
        let mut next = prefix.clone();
        next.push(s);
        leaves(next, out);
    }
}

#[test]
fn cli_md_names_every_command_and_flag() {
    let doc = std::fs::read_to_string(repo().join("docs/cli.md")).unwrap();
    let mut all = Vec::new();
    leaves(Vec::new(), &mut all);
    assert!(all.len() >= 8, "{all:?}");
    let mut missing = Vec::new();
    for (words, text) in &all {
        let heading = format!("## `fm {}", words.join(" "));
        let Some(start) = doc.find(&heading) else {
            missing.push(format!("no section '{heading}'"));
            continue;
        };
        let body = &doc[start + heading.len()..];
        let body = &body[..body.find("\n## ").unwrap_or(body.len())];
        for flag in long_flags(text) {
            if !body.contains(&format!("`{flag}")) && !body.contains(&format!("[{flag}")) {
                missing.push(format!("fm {}: {flag}", words.join(" ")));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "docs/cli.md is missing:\n  {}",
        missing.join("\n  ")
    );
}

#[test]
fn the_dry_run_rule_is_worded_once() {
    let rule = fm_core::DRY_RUN_RULE;
    let run_help = help(&["run"]);
    assert!(
        run_help
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .contains(rule),
        "{run_help}"
    );
    let cli = std::fs::read_to_string(repo().join("docs/cli.md")).unwrap();
    assert!(
        cli.contains(rule),
        "docs/cli.md states the rule in its own words"
    );
    for doc in [
        "README.md",
        "docs/cli.md",
        "docs/components.md",
        "docs/incident-response.md",
    ] {
        let text = std::fs::read_to_string(repo().join(doc)).unwrap();
        for old in [
            "send only GET",
            "only GET/HEAD",
            "only GET, HEAD and OPTIONS",
            "GET/HEAD requests are sent",
        ] {
            assert!(
                !text.contains(old),
                "{doc} words the dry-run rule its own way ({old})"
            );
        }
    }
}
