use fm_expr::*;
#[test]
fn probe() {
    let n: usize = std::env::var("N").unwrap().parse().unwrap();
    let i: usize = std::env::var("P").unwrap().parse().unwrap();
    let kb: usize = std::env::var("KB").unwrap().parse().unwrap();
    let sources = vec![
        format!("{{{{ {}1{} }}}}", "(".repeat(n), ")".repeat(n)),
        format!("{{{{ {}1{} }}}}", "[".repeat(n), "]".repeat(n)),
        format!("{{{{ {}x }}}}", "- ".repeat(n)),
        format!("{{{{ {}x }}}}", "not ".repeat(n)),
        format!("{{{{ {}1{} }}}}", "min(".repeat(n), ")".repeat(n)),
        format!("{{{{ {}1{} }}}}", "{'a': ".repeat(n), "}".repeat(n)),
        format!("{{{{ {}1 }}}}", "1 if x else ".repeat(n)),
        format!("{{{{ {}2 }}}}", "1 ** ".repeat(n)),
        format!("{{{{ x{} }}}}", " | default(1)".repeat(n)),
        format!("{{{{ {}x{} }}}}", "input[".repeat(n), "]".repeat(n)),
    ];
    let src = sources[i].clone();
    let h = std::thread::Builder::new().stack_size(kb * 1024).spawn(move || {
        let scope = JsonScope::new(serde_json::json!({"x": 1}));
        let t = Template::compile(&src, &CompileOptions::default());
        eprintln!("compiled {:?}", t.as_ref().err().map(|e| e.message.clone()));
        if let Ok(t) = t { let _ = t.render(&scope); }
        eprintln!("rendered");
    }).unwrap();
    h.join().unwrap();
}
