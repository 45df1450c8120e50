//! Postmortem drafts built from the facts in the prompt ("Service: ...",
//! "Root Cause: ...", "Triggered: ...", the pasted deploy list, a pasted
//! analysis), in the five sections the pipeline asks for.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::evidence;
use super::SIMULATION_NOTICE;
use crate::time::{humanize_secs, parse_rfc3339};

pub(crate) struct Postmortem {
    title: String,
    summary: String,
    timeline: Vec<(String, String)>,
    root_cause: String,
    evidence: Vec<String>,
    resolution: String,
    action_items: Vec<String>,
}

/// `Key: value` lines, keys lower-cased (first occurrence wins).
fn facts(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let l = line.trim().trim_start_matches(['-', '*', ' ']);
        if let Some((k, v)) = l.split_once(':') {
            let k = k.trim().trim_matches('*');
            let v = v.trim();
            if !k.is_empty()
                && k.len() <= 40
                && !v.is_empty()
                && k.chars().all(|c| c.is_alphanumeric() || " -_".contains(c))
            {
                out.entry(k.to_ascii_lowercase())
                    .or_insert_with(|| v.to_string());
            }
        }
    }
    out
}

fn first<'a>(f: &'a BTreeMap<String, String>, keys: &[&str]) -> Option<&'a str> {
    keys.iter().find_map(|k| f.get(*k).map(String::as_str))
}

pub(crate) fn build(text: &str) -> Postmortem {
    let f = facts(text);
    let ev = evidence::extract(text);
    let analysis = ev.analysis.clone().unwrap_or(Value::Null);
    let service = first(&f, &["service", "affected service"])
        .unwrap_or("the service")
        .to_string();
    let incident = first(&f, &["incident", "alert", "summary", "title"])
        .unwrap_or("service degradation")
        .to_string();
    let root = first(&f, &["root cause", "cause"])
        .map(str::to_string)
        .or_else(|| {
            analysis
                .get("root_cause")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| "Not determined from the information provided.".to_string());
    let triggered =
        first(&f, &["triggered", "triggered at", "started", "start"]).map(str::to_string);
    let resolved = first(&f, &["resolved", "resolved at", "ended", "end"]).map(str::to_string);
    let action = first(
        &f,
        &[
            "action taken",
            "action",
            "remediation",
            "recommended action",
        ],
    )
    .map(str::to_string)
    .or_else(|| {
        analysis
            .get("recommended_action")
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    let auto = first(&f, &["auto-resolved", "auto resolved", "automated"])
        .is_some_and(|v| v.to_ascii_lowercase().starts_with('y') || v.eq_ignore_ascii_case("true"));
    let duration = match (
        triggered.as_deref().and_then(parse_rfc3339),
        resolved.as_deref().and_then(parse_rfc3339),
    ) {
        // An alert replayed from an old sample (the reference's is from 2024) has no meaningful
        // time to resolve: a week is a generous bound for a real incident.
        (Some(t), Some(r)) if r >= t && r - t <= 7.0 * 86_400.0 => Some(humanize_secs(r - t)),
        _ => None,
    };

    // Entries with the time they happened (seconds since the epoch) where the prompt gives it;
    // triage and remediation happened during this run, just before the resolution. Sorted, so
    // the draft reads in order even when the alert is replayed from an old sample.
    let resolved_at = resolved.as_deref().and_then(parse_rfc3339);
    let mut timeline: Vec<(Option<f64>, String, String)> = Vec::new();
    if let Some(d) = ev.deploys.iter().min_by(|a, b| {
        a.age_minutes
            .partial_cmp(&b.age_minutes)
            .unwrap_or(std::cmp::Ordering::Equal)
    }) {
        let when = d
            .deployed_at
            .map(|t| crate::time::rfc3339(crate::time::from_unix_secs(t)));
        let ago = d
            .age_minutes
            .map(|a| format!(" ({} before this draft)", humanize_secs(a * 60.0)))
            .unwrap_or_default();
        timeline.push((
            d.deployed_at,
            when.unwrap_or_else(|| "earlier".into()),
            format!("Most recent deploy of {service}: {}{ago}", d.version),
        ));
    }
    timeline.push((
        triggered.as_deref().and_then(parse_rfc3339),
        triggered.clone().unwrap_or_else(|| "T+0".into()),
        format!("Alert fired: {incident}"),
    ));
    timeline.push((
        resolved_at.map(|r| r - 0.002),
        "shortly after".into(),
        "Automated triage gathered logs, metrics and recent deploys and identified the likely root cause".into(),
    ));
    if let Some(a) = &action {
        timeline.push((
            resolved_at.map(|r| r - 0.001),
            "next".into(),
            format!("Remediation: {a}"),
        ));
    }
    timeline.push((
        resolved_at,
        resolved.clone().unwrap_or_else(|| "pending".into()),
        if resolved.is_some() {
            "Service healthy again; incident resolved".into()
        } else {
            "Resolution pending".into()
        },
    ));
    // An entry without a time keeps its place after the one before it.
    let mut last = f64::NEG_INFINITY;
    for entry in &mut timeline {
        match entry.0 {
            Some(t) => last = t,
            None => entry.0 = Some(last),
        }
    }
    timeline.sort_by(|a, b| {
        a.0.unwrap_or(f64::NEG_INFINITY)
            .partial_cmp(&b.0.unwrap_or(f64::NEG_INFINITY))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let timeline: Vec<(String, String)> = timeline.into_iter().map(|(_, w, e)| (w, e)).collect();

    let mut summary = format!("{service} was affected by: {incident}.");
    summary.push_str(&format!(" Root cause: {}", root.trim_end_matches('.')));
    summary.push('.');
    if let Some(d) = &duration {
        summary.push_str(&format!(" Time to resolve: {d}."));
    }
    if auto {
        summary.push_str(" It was remediated automatically by the fm incident-response pipeline.");
    }

    let resolution = match (&action, auto) {
        (Some(a), true) => format!("{a}. Applied automatically by the fm incident-response pipeline; the health check confirmed recovery."),
        (Some(a), false) => format!("{a}."),
        (None, _) => "No remediation recorded in the information provided.".to_string(),
    };

    let topic = format!(
        "{root} {incident} {}",
        analysis
            .get("issue_type")
            .and_then(Value::as_str)
            .unwrap_or("")
    )
    .to_ascii_lowercase();
    let mut action_items: Vec<String> = Vec::new();
    if topic.contains("memory") || topic.contains("oom") || topic.contains("heap") {
        action_items.push(format!(
            "Capture a heap dump on the next occurrence and fix the leak in {service}"
        ));
        action_items.push(
            "Alert on memory growth rate (e.g. +10 points per hour), not only on the 90% threshold"
                .into(),
        );
        action_items.push("Review the container memory limit and JVM heap settings".into());
    } else if topic.contains("pool") || topic.contains("connection") {
        action_items.push("Right-size the database connection pool per replica against the database's max_connections".into());
        action_items.push("Find and fix the slow queries that hold connections".into());
        action_items.push("Alert on pool utilization above 80%".into());
    } else if topic.contains("deploy") || topic.contains("rollback") || topic.contains("regression")
    {
        action_items
            .push("Add a regression test for the failing code path before redeploying".into());
        action_items.push("Gate deploys with canary analysis on the HTTP error ratio".into());
        action_items.push("Ship the fix behind a feature flag".into());
    } else {
        action_items.push(
            "Identify the root cause (no known pattern matched) and write a runbook for it".into(),
        );
    }
    action_items.push(
        "Review this automated remediation and confirm the runbook pipeline did the right thing"
            .into(),
    );
    action_items.push("Have the service owner review and publish this postmortem".into());

    let evidence = analysis
        .get("supporting_evidence")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();

    Postmortem {
        title: format!("Postmortem: {incident}"),
        summary,
        timeline,
        root_cause: root,
        evidence,
        resolution,
        action_items,
    }
}

impl Postmortem {
    pub(crate) fn to_markdown(&self) -> String {
        let mut s = format!(
            "{SIMULATION_NOTICE}\n\n# {}\n\n## Summary\n{}\n\n## Timeline\n",
            self.title, self.summary
        );
        for (when, what) in &self.timeline {
            s.push_str(&format!("- **{when}** — {what}\n"));
        }
        s.push_str(&format!("\n## Root Cause\n{}\n", self.root_cause));
        if !self.evidence.is_empty() {
            s.push_str("\nEvidence:\n");
            for e in &self.evidence {
                s.push_str(&format!("- {e}\n"));
            }
        }
        s.push_str(&format!(
            "\n## Resolution\n{}\n\n## Action Items\n",
            self.resolution
        ));
        for a in &self.action_items {
            s.push_str(&format!("- [ ] {a}\n"));
        }
        s
    }

    pub(crate) fn to_json(&self) -> Value {
        let timeline: Vec<Value> = self
            .timeline
            .iter()
            .map(|(w, e)| json!({"time": w, "event": e}))
            .collect();
        json!({
            "title": self.title,
            "summary": self.summary,
            "timeline": timeline,
            "root_cause": self.root_cause,
            "resolution": self.resolution,
            "action_items": self.action_items,
            "simulated": true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postmortem_uses_the_prompt_facts() {
        let text = "Create postmortem for:\n\nService: payment-service\nIncident: payment-service: High memory usage (>90%)\nRoot Cause: Memory leak in payment-service - OOM pattern detected\nTriggered: 2024-01-15T03:42:00Z\nResolved: 2024-01-15T03:43:19Z\nAction Taken: Rolling restart of deployment payment-service\nAuto-resolved: Yes\n\nRecent deploys: [{\"id\":\"dep-1\",\"version\":\"v2.8.3\",\"deployed_at\":\"2024-01-12T03:42:00Z\",\"age_minutes\":4320}]";
        let md = build(text).to_markdown();
        assert!(md.starts_with(SIMULATION_NOTICE));
        for section in [
            "## Summary",
            "## Timeline",
            "## Root Cause",
            "## Resolution",
            "## Action Items",
        ] {
            assert!(md.contains(section), "{section} missing in {md}");
        }
        assert!(md.contains("Memory leak in payment-service"));
        assert!(md.contains("v2.8.3"));
        assert!(md.contains("Time to resolve: 79 seconds"));
        assert!(md.contains("heap dump"));
    }

    #[test]
    fn the_timeline_is_in_order_when_the_alert_is_replayed_from_an_old_sample() {
        // The reference's sample alert is from 2024; the deploy list is relative to now.
        let prompt = "Service: payment-service\nIncident: High memory usage\nRoot Cause: leak\nTriggered: 2024-01-15T03:42:00Z\nResolved: 2026-06-01T10:00:00Z\nAction Taken: service_restart\nRecent deploys: [{\"id\": \"d1\", \"version\": \"v2.8.3\", \"deployed_at\": \"2026-05-29T10:00:00Z\", \"age_minutes\": 4320}]";
        let p = build(prompt);
        let order: Vec<&str> = p.timeline.iter().map(|(_, e)| e.as_str()).collect();
        let at = |needle: &str| {
            order
                .iter()
                .position(|e| e.contains(needle))
                .unwrap_or_else(|| panic!("{needle} missing in {order:?}"))
        };
        assert!(at("Alert fired") < at("Most recent deploy"), "{order:?}");
        assert!(
            at("Most recent deploy") < at("Automated triage"),
            "{order:?}"
        );
        assert!(at("Automated triage") < at("Remediation"), "{order:?}");
        assert!(at("Remediation") < at("Service healthy again"), "{order:?}");
    }
}
