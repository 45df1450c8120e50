//! Prometheus metrics, in the text exposition format. Metric names are constants here, in one
//! place; the registry is small and hand-rolled (a few counters, gauges and histograms do not
//! justify a metrics framework).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

pub const RUNS_TOTAL: &str = "fm_runs_total";
pub const STAGE_DURATION: &str = "fm_stage_duration_seconds";
pub const REMEDIATIONS_TOTAL: &str = "fm_remediations_total";
pub const ALERTS_RECEIVED_TOTAL: &str = "fm_alerts_received_total";
pub const ALERTS_DEDUPLICATED_TOTAL: &str = "fm_alerts_deduplicated_total";
pub const BUDGET_REFUSALS_TOTAL: &str = "fm_budget_refusals_total";
pub const QUEUE_DEPTH: &str = "fm_queue_depth";
pub const RUNS_IN_PROGRESS: &str = "fm_runs_in_progress";

const HELP: &[(&str, &str, &str)] = &[
    (
        RUNS_TOTAL,
        "counter",
        "Runs finished, by pipeline, status and outcome (the pipeline's declared outcome, or none).",
    ),
    (
        STAGE_DURATION,
        "histogram",
        "Stage durations, by pipeline and stage.",
    ),
    (
        REMEDIATIONS_TOTAL,
        "counter",
        "Remediation stages (stages with a budget) settled, by action and outcome.",
    ),
    (
        ALERTS_RECEIVED_TOTAL,
        "counter",
        "Alerts received, by source.",
    ),
    (
        ALERTS_DEDUPLICATED_TOTAL,
        "counter",
        "Alerts attached to an active run instead of starting one, by source.",
    ),
    (
        BUDGET_REFUSALS_TOTAL,
        "counter",
        "Remediations refused by their budget, by stage.",
    ),
    (QUEUE_DEPTH, "gauge", "Runs waiting to be claimed."),
    (RUNS_IN_PROGRESS, "gauge", "Runs executing in this server."),
];

const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

type Labels = Vec<(&'static str, String)>;

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Default)]
pub struct Metrics {
    values: Mutex<BTreeMap<(&'static str, Labels), f64>>,
    histograms: Mutex<BTreeMap<(&'static str, Labels), Histogram>>,
}

impl Metrics {
    pub fn inc(&self, name: &'static str, labels: &[(&'static str, &str)]) {
        self.add(name, labels, 1.0);
    }

    pub fn add(&self, name: &'static str, labels: &[(&'static str, &str)], by: f64) {
        if let Ok(mut v) = self.values.lock() {
            *v.entry((name, own(labels))).or_insert(0.0) += by;
        }
    }

    pub fn set(&self, name: &'static str, labels: &[(&'static str, &str)], value: f64) {
        if let Ok(mut v) = self.values.lock() {
            v.insert((name, own(labels)), value);
        }
    }

    pub fn observe(&self, name: &'static str, labels: &[(&'static str, &str)], seconds: f64) {
        if let Ok(mut h) = self.histograms.lock() {
            let hist = h.entry((name, own(labels))).or_default();
            for (i, b) in BUCKETS.iter().enumerate() {
                if seconds <= *b {
                    hist.counts[i] += 1;
                }
            }
            hist.sum += seconds;
            hist.count += 1;
        }
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let values = self.values.lock().map(|v| {
            v.iter()
                .map(|((n, l), x)| (*n, l.clone(), *x))
                .collect::<Vec<_>>()
        });
        let hist = self.histograms.lock();
        for (name, kind, help) in HELP {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            if let Ok(values) = &values {
                for (n, labels, x) in values.iter().filter(|(n, _, _)| n == name) {
                    let _ = writeln!(out, "{n}{} {x}", fmt_labels(labels, None));
                }
            }
            if let Ok(hist) = &hist {
                for ((n, labels), h) in hist.iter().filter(|((n, _), _)| n == name) {
                    for (i, b) in BUCKETS.iter().enumerate() {
                        let _ = writeln!(
                            out,
                            "{n}_bucket{} {}",
                            fmt_labels(labels, Some(&b.to_string())),
                            h.counts[i]
                        );
                    }
                    let _ = writeln!(
                        out,
                        "{n}_bucket{} {}",
                        fmt_labels(labels, Some("+Inf")),
                        h.count
                    );
                    let _ = writeln!(out, "{n}_sum{} {}", fmt_labels(labels, None), h.sum);
                    let _ = writeln!(out, "{n}_count{} {}", fmt_labels(labels, None), h.count);
                }
            }
        }
        out
    }
}

fn own(labels: &[(&'static str, &str)]) -> Labels {
    labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
}

fn fmt_labels(labels: &Labels, le: Option<&str>) -> String {
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}=\"{}\"",
                v.replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n")
            )
        })
        .collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms_in_exposition_format() {
        let m = Metrics::default();
        m.inc(RUNS_TOTAL, &[("pipeline", "p"), ("outcome", "succeeded")]);
        m.observe(STAGE_DURATION, &[("pipeline", "p"), ("stage", "a")], 0.3);
        let text = m.render();
        assert!(
            text.contains("fm_runs_total{pipeline=\"p\",outcome=\"succeeded\"} 1"),
            "{text}"
        );
        assert!(text
            .contains("fm_stage_duration_seconds_bucket{pipeline=\"p\",stage=\"a\",le=\"0.5\"} 1"));
        assert!(text.contains(
            "fm_stage_duration_seconds_bucket{pipeline=\"p\",stage=\"a\",le=\"0.25\"} 0"
        ));
        assert!(text.contains("# TYPE fm_queue_depth gauge"));
    }
}
