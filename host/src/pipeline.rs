//! The ingest pipeline: source → decode → fingerprint → claim → sink → complete.
