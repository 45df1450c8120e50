//! `inputs/<scenario>.json` are the scenario alerts plus URL keys pointing at
//! a standalone sandbox (`fm sandbox`, port 8089). This test keeps them in
//! sync with the code; `FM_SANDBOX_WRITE_INPUTS=1 cargo test -p fm-sandbox --test inputs`
//! rewrites them.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use fm_sandbox::{input_overrides_for, scenario_alert_at, Scenario, DEFAULT_PORT};
use serde_json::Value;

fn inputs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../inputs")
}

fn expected(s: Scenario) -> Value {
    let mut v = scenario_alert_at(s, "2024-01-15T03:42:00Z");
    let obj = v.as_object_mut().unwrap();
    for (k, val) in input_overrides_for(&format!("http://127.0.0.1:{DEFAULT_PORT}")) {
        obj.insert(k, val);
    }
    v
}

#[test]
fn scenario_input_files_match_the_code() {
    let write = std::env::var_os("FM_SANDBOX_WRITE_INPUTS").is_some();
    for s in Scenario::all() {
        let path = inputs_dir().join(format!("{}.json", s.name()));
        let want = expected(*s);
        if write {
            std::fs::write(&path, serde_json::to_string_pretty(&want).unwrap() + "\n").unwrap();
        }
        let got: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(
            got,
            want,
            "{} is stale; rerun with FM_SANDBOX_WRITE_INPUTS=1",
            path.display()
        );
    }
}

#[test]
fn sample_alert_is_the_reference_sample_input() {
    let got: Value = serde_json::from_str(
        &std::fs::read_to_string(inputs_dir().join("sample-alert.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(got["id"], "incident-12345");
    assert_eq!(
        got["payload"]["custom_details"]["pod"],
        "payment-service-abc123"
    );
    // The oom scenario's alert is the reference's sample, plus original_replicas.
    let oom = scenario_alert_at(Scenario::Oom, "2024-01-15T03:42:00Z");
    assert_eq!(oom["payload"]["summary"], got["payload"]["summary"]);
    assert_eq!(oom["payload"]["source"], got["payload"]["source"]);
    assert_eq!(oom["payload"]["severity"], got["payload"]["severity"]);
}
