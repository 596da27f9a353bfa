//! The integration tests, one binary (wasmtime's `tests/all` layout): one
//! module per feature, linked once. The shared-store tests need the servers
//! `scripts/test-servers.sh` starts.

mod common;
mod serve_support;
mod servers;

mod alerts;
mod check_connect;
mod check_samples;
mod dedup_dynamodb;
mod dedup_redis;
mod durable_sessions;
mod evaluation_forms;
mod golden_cases;
mod ingest_crash;
mod ingest_firehose;
mod ingest_hostile;
mod ingest_malformed;
mod ingest_seed;
mod ingest_ttl;
mod kinesis_s3;
mod memory_reset;
mod no_std_rules;
mod openapi;
mod quarantine;
mod real_inputs;
mod rule_faults;
mod rule_languages;
mod rule_toolkit;
mod ruleset_refusal;
mod sandbox;
mod scripted_items;
mod serve_auth;
mod serve_firehose;
mod serve_hostile;
mod serve_hot_reload;
mod serve_metrics;
mod serve_roles;
mod serve_rules_api;
mod serve_users;
mod session_adapters;
mod session_assembly;
mod shadow_rules;
mod sheet_review;
mod sheet_store;
mod similarity;
mod stats;
mod validate;
mod warm_instances;
mod wit_compat;
mod workbench;
mod workbench_browser;
