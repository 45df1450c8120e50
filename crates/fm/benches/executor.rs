//! Engine overhead: compiling and running chains of cheap stages in-process, where the
//! components do (almost) nothing, so the time measured is the engine's.
#![allow(clippy::unwrap_used)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use fm_core::{CompileOptions, Event, EventSink, RunOptions, SecretSource, Source};
use serde_json::{json, Value};

struct Quiet;
impl EventSink for Quiet {
    fn emit(&self, _e: &Event) {}
}

/// A chain alternating json_transform and logger stages, each reading the previous one.
pub fn chain(n: usize) -> Value {
    let stages: Vec<Value> = (0..n)
        .map(|i| {
            let id = format!("stage-{i}");
            let deps: Vec<String> = if i == 0 { vec![] } else { vec![format!("stage-{}", i - 1)] };
            if i % 2 == 0 {
                json!({"id": id, "component": "json_transform", "depends_on": deps,
                       "config": {"template": {"n": i, "service": "{{input.service}}"}}})
            } else {
                json!({"id": id, "component": "logger", "depends_on": deps,
                       "config": {"message": "after {{stages.stage-".to_owned() + &(i - 1).to_string() + ".output.n}}", "level": "debug"}})
            }
        })
        .collect();
    json!({"name": "chain", "stages": stages})
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let registry = fm_components::builtin_registry();
    let mut group = c.benchmark_group("executor");
    for n in [1usize, 100, 2000] {
        let text = serde_json::to_string(&chain(n)).unwrap();
        let source = Source::from_text("chain.pipeline.json", text);
        let opts = CompileOptions {
            registry: &registry,
            secret_available: None,
        };
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("compile_chain", n), &n, |b, _| {
            b.iter(|| fm_core::load(&source, &opts).unwrap())
        });
        let pipeline = fm_core::load(&source, &opts).unwrap();
        group.bench_with_input(BenchmarkId::new("run_chain", n), &n, |b, _| {
            b.iter(|| {
                let prepared = fm_core::prepare(
                    &pipeline,
                    json!({"service": "payment-service"}),
                    &SecretSource::empty(),
                )
                .unwrap();
                rt.block_on(fm_core::run(
                    &pipeline,
                    prepared,
                    RunOptions::default(),
                    &Quiet,
                ))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
