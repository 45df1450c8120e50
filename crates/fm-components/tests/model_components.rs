//! FlowMason's model components (critic, improver, selector, combiner/synthesizer, summarizer,
//! analyzer, rewriter, translator, chat) against a stand-in OpenAI-compatible server: what they
//! ask, the output shapes FlowMason's templates read, and that a verdict is never made up.
#![allow(clippy::unwrap_used)]

mod common;

use common::{error_kind, output, run, serve, Opts, Reply, Seen};
use fm_components::LlmEnv;
use fm_core::{ErrorKind, StageStatus};
use serde_json::{json, Value};

fn chat_reply(content: &str) -> Value {
    json!({
        "id": "chatcmpl-1", "object": "chat.completion", "model": "stand-in",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    })
}

fn opts(base: &str) -> Opts {
    let env = LlmEnv {
        openai_api_key: Some("sk-test".into()),
        openai_base_url: Some(format!("{base}/v1")),
        model: Some("stand-in".into()),
        ..Default::default()
    };
    Opts::default().registry(fm_components::registry_with(env))
}

/// The user message of a chat request.
fn user(s: &Seen) -> String {
    s.json()["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "user")
        .unwrap()["content"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn critic_returns_flowmasons_verdict_and_asks_with_criteria_and_rubric() {
    let verdict = json!({"overall_rating": "good", "score": 0.8, "feedback": "clear",
                         "strengths": ["short"], "improvements": [], "criterion_scores": {"clarity": 0.9},
                         "passes_threshold": true});
    let srv = serve(move |_, _| Reply::json(200, chat_reply(&verdict.to_string()))).await;
    let rec = run(
        json!({"id": "review", "component": "critic", "config": {
            "content": "{{input.draft}}", "criteria": ["clarity", "accuracy"],
            "rubric": {"clarity": "easy to read"}}}),
        opts(&srv.base).input(json!({"draft": "The service restarted."})),
    )
    .await;
    let out = output(&rec, "review");
    assert_eq!(out["score"], json!(0.8));
    assert_eq!(out["feedback"], json!("clear"));
    assert_eq!(out["criterion_scores"], json!({"clarity": 0.9}));
    let seen = srv.only();
    let prompt = user(&seen);
    assert!(prompt.contains("The service restarted."), "{prompt}");
    assert!(prompt.contains("- clarity: easy to read"), "{prompt}");
    assert_eq!(
        seen.json()["temperature"],
        json!(0.3),
        "FlowMason's critic default"
    );
    assert_eq!(
        seen.json()["response_format"],
        json!({"type": "json_object"})
    );
}

#[tokio::test]
async fn a_critic_reply_without_a_score_fails_the_stage_instead_of_making_one_up() {
    let srv = serve(|_, _| Reply::json(200, chat_reply("Looks fine to me."))).await;
    let rec = run(
        json!({"id": "review", "component": "critic", "config": {"content": "x"}}),
        opts(&srv.base),
    )
    .await;
    assert_eq!(rec.stage("review").unwrap().status, StageStatus::Failed);
    assert_eq!(error_kind(&rec, "review"), ErrorKind::InvalidResponse);
}

#[tokio::test]
async fn selector_takes_the_templates_options_and_returns_the_chosen_candidate() {
    let srv = serve(|_, _| {
        Reply::json(
            200,
            chat_reply(r#"{"selected_index": 1, "explanation": "warmer", "confidence": 0.7}"#),
        )
    })
    .await;
    let rec = run(
        json!({"id": "pick", "component_type": "selector", "config": {
            "options": ["formal reply", "friendly reply"], "criteria": "tone"}}),
        opts(&srv.base),
    )
    .await;
    let out = output(&rec, "pick");
    assert_eq!(out["selected"], json!("friendly reply"));
    assert_eq!(out["selected_index"], json!(1));
    assert_eq!(out["reasoning"], json!("warmer"));
    assert!(user(&srv.only()).contains("[Option 2]:\nfriendly reply"));
}

#[tokio::test]
async fn a_selector_index_out_of_range_fails_the_stage() {
    let srv = serve(|_, _| Reply::json(200, chat_reply(r#"{"selected_index": 5}"#))).await;
    let rec = run(
        json!({"id": "pick", "component": "selector", "config": {"candidates": ["a", "b"]}}),
        opts(&srv.base),
    )
    .await;
    assert_eq!(error_kind(&rec, "pick"), ErrorKind::InvalidResponse);
}

#[tokio::test]
async fn improver_takes_a_plain_reply_as_the_improved_text_under_every_name_templates_read() {
    let srv = serve(|_, _| Reply::json(200, chat_reply("A better draft."))).await;
    let rec = run(
        json!({"id": "polish", "component": "improver", "config": {
            "content": "draft", "feedback": "shorter", "instructions": "keep it brief"}}),
        opts(&srv.base),
    )
    .await;
    let out = output(&rec, "polish");
    for key in ["improved_content", "improved", "content"] {
        assert_eq!(out[key], json!("A better draft."), "{key}");
    }
    assert!(user(&srv.only()).contains("Primary focus: keep it brief"));
}

#[tokio::test]
async fn synthesizer_combines_labelled_sources() {
    let srv = serve(|_, _| {
        Reply::json(
            200,
            chat_reply(r#"{"synthesized": "both agree", "key_themes": ["cost"]}"#),
        )
    })
    .await;
    let rec = run(
        json!({"id": "syn", "component_type": "synthesizer", "config": {
            "sources": [{"label": "Deal", "content": "big"}, {"label": "Intel", "content": "risky"}],
            "synthesis_strategy": "compare"}}),
        opts(&srv.base),
    )
    .await;
    let out = output(&rec, "syn");
    assert_eq!(out["synthesized"], json!("both agree"));
    assert_eq!(out["sources_used"], json!(2));
    assert_eq!(out["key_themes"], json!(["cost"]));
    let prompt = user(&srv.only());
    assert!(prompt.contains("[Source 1]:\nDeal: big"), "{prompt}");
    assert!(prompt.contains("'compare' strategy"), "{prompt}");
}

#[tokio::test]
async fn text_components_return_flowmasons_shapes() {
    let srv = serve(|s, _| {
        let prompt = user(s);
        let reply = if prompt.contains("sentiment") {
            r#"{"sentiment": "negative", "confidence": 0.9}"#.to_owned()
        } else {
            format!("  answer {}  ", prompt.len() % 2)
        };
        Reply::json(200, chat_reply(&reply))
    })
    .await;
    let rec = run(
        json!([
            {"id": "sum", "component": "summarizer", "config": {"text": "long text", "style": "bullet"}},
            {"id": "ana", "component": "analyzer", "config": {"text": "I am angry"}},
            {"id": "rew", "component": "rewriter", "config": {"text": "hi", "style": "formal", "tone": "calm"}},
            {"id": "tra", "component": "translator", "config": {"text": "hola", "target_language": "English"}},
            {"id": "cha", "component": "chat", "config": {"message": "and now?", "max_history": 1,
                "history": [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "a1"},
                            {"role": "user", "content": "q2"}, {"role": "assistant", "content": "a2"}]}}
        ]),
        opts(&srv.base),
    )
    .await;
    let sum = output(&rec, "sum");
    assert_eq!(sum["style"], json!("bullet"));
    assert_eq!(sum["word_count"], json!(2));
    assert!(sum["summary"].as_str().unwrap().starts_with("answer"));
    assert_eq!(
        output(&rec, "ana")["analysis"],
        json!({"sentiment": "negative", "confidence": 0.9})
    );
    assert_eq!(output(&rec, "ana")["type"], json!("sentiment"));
    assert_eq!(output(&rec, "rew")["tone"], json!("calm"));
    assert_eq!(
        output(&rec, "tra")["source_language"],
        json!("auto-detected")
    );
    let cha = output(&rec, "cha");
    assert_eq!(cha["turn_count"], json!(2), "one pair kept plus this turn");
    assert_eq!(cha["history"][0]["content"], json!("q2"));
    assert_eq!(cha["history"][2]["content"], json!("and now?"));
}

#[tokio::test]
async fn a_flowmason_stages_llm_settings_reach_the_provider() {
    let srv = serve(|_, _| Reply::json(200, chat_reply("ok"))).await;
    let rec = run(
        json!({"id": "g", "component_type": "generator", "config": {"prompt": "hi"},
               "llm_settings": {"temperature": 0.9, "model": "m2", "max_tokens": 50}}),
        opts(&srv.base),
    )
    .await;
    let body = srv.only().json();
    assert_eq!(body["temperature"], json!(0.9));
    assert_eq!(body["model"], json!("m2"));
    assert_eq!(body["max_tokens"], json!(50));
    let out = output(&rec, "g");
    assert_eq!(
        out["tokens_used"],
        json!(15),
        "FlowMason's generator output"
    );
    assert_eq!(out["finish_reason"], json!("stop"));
}
