//! Compile and render arbitrary input against a fixed scope: no input may
//! panic, overflow the stack, or run away in time or memory.
#![no_main]

use std::collections::HashSet;
use std::sync::OnceLock;

use fm_expr::{CompileOptions, JsonScope, Template};
use libfuzzer_sys::fuzz_target;

fn scope() -> &'static JsonScope {
    static SCOPE: OnceLock<JsonScope> = OnceLock::new();
    SCOPE.get_or_init(|| {
        JsonScope::new(serde_json::json!({
            "input": {"id": "incident-12345", "payload": {"source": "payment-service", "n": [1, 2.5, -3]}},
            "stages": {
                "fetch-logs": {"output": {"status_code": 200, "body": {"logs": ["a", "b"], "total": 2}}, "status": "completed"},
                "fetch": {"output": "short id"}
            },
            "secrets": {"TOKEN": "secret"},
            "env": {"HOME": "/root"},
            "execution": {"id": "e1", "duration_ms": 79000},
            "vars": {"output": {"status_code": 503}, "x": null, "s": "text"}
        }))
    })
}

fn ids() -> &'static HashSet<String> {
    static IDS: OnceLock<HashSet<String>> = OnceLock::new();
    IDS.get_or_init(|| ["fetch-logs", "fetch"].iter().map(|s| s.to_string()).collect())
}

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else { return };
    for opts in [CompileOptions::default(), CompileOptions { stage_ids: Some(ids()) }] {
        for compiled in [Template::compile(src, &opts), Template::compile_expression(src, &opts)] {
            match compiled {
                Ok(t) => {
                    let _ = t.references();
                    let _ = t.render(scope()).map_err(|e| e.render());
                    let _ = t.render_string(scope()).map_err(|e| e.render());
                    let _ = t.render_parts(scope());
                }
                Err(e) => {
                    let _ = (e.render(), e.to_string());
                }
            }
        }
    }
});
