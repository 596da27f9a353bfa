//! Generated sessions of realistic size for the benchmarks (`cargo bench
//! --bench rules`, the comparison benchmark in `bench/compare/`): a
//! 10-minute call and a short chat. Deterministic, so every engine measured
//! gets the same input and must reach the same verdicts.
//!
//! Both carry what the measured rules look for, so the benchmark times real
//! work and not an early "not applicable": a customer chase and an agent
//! promise followed by a ticket action (`chase-follow-up`), and a couple of
//! forbidden phrases and pattern matches among ordinary service language
//! (`forbidden-phrases`).

use serde_json::{json, Value};

use super::Session;

/// A 10-minute Chinese service call: 150 segments (4 s each, agent and
/// customer in turn, with Contact Lens sentiment), 20 business events, a
/// chase answered by a promise at 2:40 and a remark 6 min 50 s later.
pub fn ten_minute_call() -> Session {
    const AGENT: &[&str] = &[
        "您好，欢迎致电售后服务中心，请问有什么可以帮您？",
        "好的，我帮您查询一下订单，请稍等",
        "您的订单目前在配送站，预计明天上午送达",
        "这边看到维修工单已经派给师傅了",
        "请问您方便提供一下收货地址吗？",
        "好的，已经为您登记了，稍后会有短信通知",
        "thank you for calling, is there anything else I can help with?",
        "明白，这个情况我记录下来了",
    ];
    const CUSTOMER: &[&str] = &[
        "我的冰箱不制冷了，上周刚买的",
        "我已经催了好几次了，一直没人上门",
        "订单号是 2024050112345",
        "地址是幸福路 88 号 3 单元",
        "那大概什么时候能到？",
        "okay, thanks",
        "能不能快一点，家里东西都要坏了",
    ];
    let segments: Vec<Value> = (0..150)
        .map(|i: usize| {
            let agent = i.is_multiple_of(2);
            let text = match i {
                40 => "非常抱歉，我马上帮您催一下师傅，今天之内给您回复",
                90 => "这个我已经说过了，您再仔细听一下",
                120 => "您是不是傻呀，这个单子早就派出去了",
                _ if agent => AGENT[(i / 2) % AGENT.len()],
                _ => CUSTOMER[(i / 2) % CUSTOMER.len()],
            };
            let sentiment = ["neutral", "neutral", "negative", "positive"][i % 4];
            json!({"id": format!("t{i}"), "role": if agent {"agent"} else {"customer"}, "text": text,
                   "begin_ms": i * 4000, "end_ms": i * 4000 + 3500, "sentiment": sentiment,
                   "sentiment_score": ((i % 7) as f32 - 3.0) / 2.0, "agent_id": if agent {Some("agent-7")} else {None}})
        })
        .collect();
    // An earlier chase outside the repeat window, the chase the promise
    // answers, then 18 events every two minutes; the first action after the
    // promise (09:03:10) is the remark at 09:10:00.
    let mut events = vec![
        json!({"kind": "ticket-chased", "at": "2024-05-01T07:30:00Z", "attributes": {"ticket": "T-1001", "channel": "app"}}),
        json!({"kind": "ticket-chased", "at": "2024-05-01T09:00:10Z", "attributes": {"ticket": "T-1001", "channel": "phone"}}),
    ];
    let kinds = ["order", "callback-scheduled", "sms-sent", "remark", "order", "ticket-created"];
    for i in 0..18 {
        let minutes = 4 + 2 * i;
        events.push(json!({"kind": kinds[i % kinds.len()], "at": format!("2024-05-01T09:{minutes:02}:00Z"),
            "attributes": {"ticket": "T-1001", "by": "agent-7", "seq": i}}));
    }
    session(json!({
        "id": "bench-call", "contact": {"contact_id": "bench-call", "channel": "voice", "queue": "Hotline",
            "initiation_method": "inbound", "scenario": "hotline", "language": "zh-CN",
            "agent": {"id": "agent-7", "username": "li.na", "hierarchy": ["Service", "Hotline"]},
            "initiated_at": "2024-05-01T09:00:00Z", "connected_to_agent_at": "2024-05-01T09:00:30Z",
            "ended_at": "2024-05-01T09:10:30Z"},
        "segments": segments, "events": events,
        "attributes": {"order": {"id": "2024050112345", "amount": 3299.0}, "tags": ["fridge", "repair"]},
    }))
}

/// A short English chat: 12 messages, a chase before the chat, a promise to
/// escalate, and a ticket reopened 47 minutes later (late).
pub fn short_chat() -> Session {
    const AGENT: &[&str] = &[
        "Hello, thanks for contacting us. How can I help?",
        "Let me look up your refund.",
        "I see the refund was approved on Monday.",
        "I understand, I'll escalate this to the billing team right away.",
        "Please calm down, I am doing what I can.",
        "Is there anything else I can help with?",
    ];
    const CUSTOMER: &[&str] = &[
        "Hi, my refund still has not arrived.",
        "It's order 88231, I chased it yesterday too.",
        "That was a week ago, this is ridiculous.",
        "Fine. When will I hear back?",
        "This is the third time I'm asking.",
        "No, that's all.",
    ];
    let segments: Vec<Value> = (0..12)
        .map(|i: usize| {
            let agent = i.is_multiple_of(2);
            let text = if agent { AGENT[i / 2] } else { CUSTOMER[i / 2] };
            json!({"id": format!("m{i}"), "role": if agent {"agent"} else {"customer"}, "text": text,
                   "begin_ms": i * 20_000, "end_ms": i * 20_000})
        })
        .collect();
    let events = vec![
        json!({"kind": "ticket-chased", "at": "2024-05-01T08:10:00Z", "attributes": {"ticket": "R-88231"}}),
        json!({"kind": "order", "at": "2024-05-01T09:05:00Z", "attributes": {"order": 88231}}),
        json!({"kind": "ticket-reopened", "at": "2024-05-01T09:48:00Z", "attributes": {"ticket": "R-88231"}}),
    ];
    session(json!({
        "id": "bench-chat", "contact": {"contact_id": "bench-chat", "channel": "chat", "queue": "Billing",
            "agent": {"id": "agent-3", "hierarchy": []},
            "initiated_at": "2024-05-01T08:59:50Z", "connected_to_agent_at": "2024-05-01T09:00:00Z"},
        "segments": segments, "events": events,
    }))
}

fn session(document: Value) -> Session {
    let mut s: Session = serde_json::from_value(document).expect("the generated session is a valid document");
    s.normalise().expect("the generated session is well-formed");
    s
}
