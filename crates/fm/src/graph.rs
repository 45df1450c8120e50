//! `fm graph`: the DAG as Mermaid or Graphviz dot. Router branches are labelled edges; trycatch
//! scopes are subgraphs with try/catch/finally marked.

use std::fmt::Write;

use fm_core::model::{Control, Pipeline, ScopeRole};
use serde_json::Value;

use crate::cli::{GraphArgs, GraphFormat};
use crate::validate::{load_pipeline, render_problems, LoadFailure};

pub fn run(args: &GraphArgs) -> anyhow::Result<i32> {
    let (p, source) = match load_pipeline(&args.pipeline, None) {
        Ok(x) => x,
        Err(LoadFailure::Unreadable(m)) => {
            errln!("error: {m}");
            return Ok(2);
        }
        Err(LoadFailure::Invalid(problems)) => {
            errp!(
                "{}",
                render_problems(&args.pipeline.display().to_string(), &problems)
            );
            return Ok(2);
        }
    };
    let doc = source.parse().unwrap_or(Value::Null);
    let text = match args.format {
        GraphFormat::Mermaid => mermaid(&p, &doc),
        GraphFormat::Dot => dot(&p, &doc),
    };
    crate::out::out(&text);
    Ok(0)
}

fn node_id(id: &str) -> String {
    id.replace('-', "_")
}

/// (router, target) -> route names that select it, read from the file (labels only).
fn route_labels(p: &Pipeline, doc: &Value, router: usize, target: &str) -> Vec<String> {
    let config = doc
        .get("stages")
        .and_then(|s| s.get(router))
        .and_then(|s| s.get("config"));
    let Some(config) = config else {
        return Vec::new();
    };
    let mut labels = Vec::new();
    let names = |v: &Value| -> bool {
        match v {
            Value::Array(a) => a.iter().any(|x| x.as_str() == Some(target)),
            Value::String(s) => s == target,
            _ => false,
        }
    };
    match config.get("routes") {
        Some(Value::Array(routes)) => {
            for (i, r) in routes.iter().enumerate() {
                if r.get("stages").is_some_and(names) {
                    let n = r
                        .get("name")
                        .and_then(Value::as_str)
                        .map_or(format!("route {i}"), str::to_owned);
                    labels.push(n);
                }
            }
        }
        Some(Value::Object(map)) => {
            for (k, v) in map {
                if names(v) {
                    labels.push(k.clone());
                }
            }
        }
        _ => {}
    }
    if config
        .get("default")
        .or_else(|| config.get("default_route"))
        .is_some_and(names)
    {
        labels.push("default".into());
    }
    let _ = p;
    labels
}

fn mermaid(p: &Pipeline, doc: &Value) -> String {
    let mut s = String::from("flowchart TD\n");
    // Trycatch scopes as subgraphs (members listed inside).
    for (i, st) in p.stages.iter().enumerate() {
        if let Control::TryCatch { .. } = st.control {
            let _ = writeln!(
                s,
                "  subgraph scope_{}[\"trycatch {}\"]",
                node_id(&st.id),
                st.id
            );
            for m in p
                .stages
                .iter()
                .filter(|m| m.scope.map(|x| x.trycatch) == Some(i))
            {
                let role = match m.scope.map(|x| x.role) {
                    Some(ScopeRole::Try) => "try",
                    Some(ScopeRole::Catch) => "catch",
                    _ => "finally",
                };
                let _ = writeln!(
                    s,
                    "    {}[\"{}<br/><i>{} · {role}</i>\"]",
                    node_id(&m.id),
                    m.id,
                    m.component
                );
            }
            let _ = writeln!(s, "  end");
        }
    }
    for st in p.stages.iter().filter(|st| st.scope.is_none()) {
        let shape = match st.control {
            Control::Router { .. } => {
                format!("{}{{\"{}<br/><i>router</i>\"}}", node_id(&st.id), st.id)
            }
            _ => format!(
                "{}[\"{}<br/><i>{}</i>\"]",
                node_id(&st.id),
                st.id,
                st.component
            ),
        };
        let _ = writeln!(s, "  {shape}");
    }
    for st in &p.stages {
        for &d in &st.depends_on {
            let _ = writeln!(s, "  {} --> {}", node_id(&p.stages[d].id), node_id(&st.id));
        }
    }
    for (i, st) in p.stages.iter().enumerate() {
        match &st.control {
            Control::Router { targets } => {
                for &t in targets {
                    let labels = route_labels(p, doc, i, &p.stages[t].id).join(" / ");
                    let _ = writeln!(
                        s,
                        "  {} -. \"{labels}\" .-> {}",
                        node_id(&st.id),
                        node_id(&p.stages[t].id)
                    );
                }
            }
            Control::TryCatch { .. } => {
                let _ = writeln!(s, "  {} ==> scope_{}", node_id(&st.id), node_id(&st.id));
            }
            Control::None => {}
        }
    }
    s
}

fn dot(p: &Pipeline, doc: &Value) -> String {
    let mut s = String::from(
        "digraph pipeline {\n  rankdir=TB;\n  node [shape=box, fontname=\"Helvetica\"];\n",
    );
    for (i, st) in p.stages.iter().enumerate() {
        if let Control::TryCatch { .. } = st.control {
            let _ = writeln!(
                s,
                "  subgraph \"cluster_{}\" {{\n    label=\"trycatch {}\";\n    style=dashed;",
                st.id, st.id
            );
            for m in p
                .stages
                .iter()
                .filter(|m| m.scope.map(|x| x.trycatch) == Some(i))
            {
                let role = match m.scope.map(|x| x.role) {
                    Some(ScopeRole::Try) => "try",
                    Some(ScopeRole::Catch) => "catch",
                    _ => "finally",
                };
                let _ = writeln!(
                    s,
                    "    \"{}\" [label=\"{}\\n{} · {role}\"];",
                    m.id, m.id, m.component
                );
            }
            let _ = writeln!(s, "  }}");
        }
    }
    for st in p.stages.iter().filter(|st| st.scope.is_none()) {
        let shape = if matches!(st.control, Control::Router { .. }) {
            ", shape=diamond"
        } else {
            ""
        };
        let _ = writeln!(
            s,
            "  \"{}\" [label=\"{}\\n{}\"{shape}];",
            st.id, st.id, st.component
        );
    }
    for st in &p.stages {
        for &d in &st.depends_on {
            let _ = writeln!(s, "  \"{}\" -> \"{}\";", p.stages[d].id, st.id);
        }
    }
    for (i, st) in p.stages.iter().enumerate() {
        match &st.control {
            Control::Router { targets } => {
                for &t in targets {
                    let labels = route_labels(p, doc, i, &p.stages[t].id).join(" / ");
                    let _ = writeln!(
                        s,
                        "  \"{}\" -> \"{}\" [style=dashed, label=\"{labels}\"];",
                        st.id, p.stages[t].id
                    );
                }
            }
            Control::TryCatch {
                try_stages,
                catch_stages,
                finally_stages,
            } => {
                for (list, label) in [
                    (try_stages, "try"),
                    (catch_stages, "catch"),
                    (finally_stages, "finally"),
                ] {
                    for &m in list {
                        let _ = writeln!(
                            s,
                            "  \"{}\" -> \"{}\" [style=bold, label=\"{label}\"];",
                            st.id, p.stages[m].id
                        );
                    }
                }
            }
            Control::None => {}
        }
    }
    s.push_str("}\n");
    s
}
