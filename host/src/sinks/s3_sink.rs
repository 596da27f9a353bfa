use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;

use anyhow::Context;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use flate2::write::GzEncoder;
use futures::stream::{self, StreamExt, TryStreamExt};

use super::{Sink, SinkRecord};
use crate::aws::brief;
use crate::ctr::UtcDay;
use crate::dedup::FencingToken;
use crate::failpoint::failpoint;

/// Objects up to this size go up in one `PutObject`; larger ones as a
/// multipart upload of parts this size, several in flight.
const MULTIPART_PART: usize = 8 << 20;
const PARTS_IN_FLIGHT: usize = 4;

/// `s3://BUCKET/PREFIX`: where the S3 sink writes and `callqa stats` reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    /// Without leading or trailing slashes; empty for the bucket's root.
    pub prefix: String,
}

impl S3Location {
    /// `None` when `spec` is not an `s3://` URL at all; an error when it is
    /// one that cannot be used.
    pub fn parse(spec: &str) -> Option<anyhow::Result<S3Location>> {
        let rest = spec.strip_prefix("s3://")?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        // The bucket naming rules S3 enforces for new buckets.
        let valid = (3..=63).contains(&bucket.len())
            && bucket.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-'))
            && !bucket.starts_with(['.', '-'])
            && !bucket.ends_with(['.', '-']);
        if !valid {
            return Some(Err(anyhow::anyhow!(
                "{spec}: `{bucket}` is not an S3 bucket name (3 to 63 characters among a-z, 0-9, . and -); \
                 expected s3://BUCKET/PREFIX"
            )));
        }
        Some(Ok(S3Location { bucket: bucket.to_string(), prefix: prefix.trim_matches('/').to_string() }))
    }

    /// The key of `name` under the prefix.
    pub fn key(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}/{name}", self.prefix)
        }
    }
}

impl fmt::Display for S3Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)
    }
}

/// An S3 client for the sink's bucket: the standard AWS configuration, and
/// path-style addressing when `AWS_ENDPOINT_URL_S3` points elsewhere than
/// AWS (s3rver, MinIO answer on one host name, not one per bucket).
pub async fn s3_client() -> Client {
    let config = crate::aws::sdk_config().await;
    let mut builder = aws_sdk_s3::config::Builder::from(&config);
    if crate::aws::endpoint_override("s3").is_some() {
        builder = builder.force_path_style(true);
    }
    Client::from_conf(builder.build())
}

/// Unique records as NDJSON objects in S3, in the directory sink's
/// Hive-style layout: `PREFIX/year=YYYY/month=MM/day=DD/part-<store>-<token>.ndjson[.gz]`,
/// one object per batch and day. The claim names the key before the object
/// is written, and an object appears whole or not at all (`PutObject` and
/// `CompleteMultipartUpload` are atomic), so a batch replayed after a crash
/// writes the same key again instead of adding a copy, and recovery asks
/// S3 whether each day's object exists.
pub struct S3Sink {
    client: Client,
    location: S3Location,
    store_id: String,
    gzip: bool,
    /// The sink is called from plain threads and from blocking sections of
    /// the server; its requests run on a runtime of its own.
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for S3Sink {
    fn drop(&mut self) {
        // Dropped from async code too, where a blocking shutdown panics;
        // every write was acknowledged before write_batch returned.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl S3Sink {
    /// Connects and checks the bucket answers, so a wrong name or missing
    /// credentials stop the run before anything is claimed.
    pub fn open(location: S3Location, store_id: &str, gzip: bool) -> anyhow::Result<S3Sink> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("callqa-s3")
            .enable_all()
            .build()
            .context("cannot start the S3 sink's runtime")?;
        let client = runtime.block_on(s3_client());
        let sink = S3Sink { client, location, store_id: store_id.to_string(), gzip, runtime: Some(runtime) };
        let (client, bucket) = (sink.client.clone(), sink.location.bucket.clone());
        sink.run(async move {
            client.head_bucket().bucket(&bucket).send().await.map_err(|err| {
                let hint = match err.raw_response().map(|r| r.status().as_u16()) {
                    Some(404) => " (no such bucket: create it first)",
                    Some(403) => " (access denied: check the credentials and the bucket policy)",
                    _ => "",
                };
                anyhow::anyhow!("cannot reach bucket {bucket}: {}{hint}", brief(&err))
            })
        })
        .with_context(|| format!("--out {}", sink.location))?;
        Ok(sink)
    }

    pub fn location(&self) -> &S3Location {
        &self.location
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Runs `future` on the sink's runtime and waits for it, from any thread.
    pub fn run<F, T>(&self, future: F) -> anyhow::Result<T>
    where
        F: std::future::Future<Output = anyhow::Result<T>> + Send + 'static,
        T: Send + 'static,
    {
        let (done, answer) = std::sync::mpsc::sync_channel(1);
        let runtime = self.runtime.as_ref().context("the S3 sink is closed")?;
        runtime.spawn(async move {
            let _ = done.send(future.await);
        });
        answer.recv().context("the S3 request task ended without an answer")?
    }

    fn key(&self, day: UtcDay, token: FencingToken) -> String {
        let extension = if self.gzip { "ndjson.gz" } else { "ndjson" };
        self.location.key(&format!("{}/part-{}-{:012}.{extension}", day.hive_path(), self.store_id, token.0))
    }

    fn body(&self, lines: &[&[u8]]) -> anyhow::Result<Vec<u8>> {
        let size: usize = lines.iter().map(|l| l.len() + 1).sum();
        if self.gzip {
            let mut encoder = GzEncoder::new(Vec::with_capacity(size / 4), flate2::Compression::fast());
            for line in lines {
                encoder.write_all(line)?;
                encoder.write_all(b"\n")?;
            }
            return Ok(encoder.finish()?);
        }
        let mut body = Vec::with_capacity(size);
        for line in lines {
            body.extend_from_slice(line);
            body.push(b'\n');
        }
        Ok(body)
    }
}

/// Puts one object, as a multipart upload when it is large. A failed
/// multipart upload is aborted so its parts are not billed forever.
async fn put_object(client: Client, bucket: String, key: String, body: Vec<u8>) -> anyhow::Result<()> {
    if body.len() <= MULTIPART_PART {
        client
            .put_object()
            .bucket(&bucket)
            .key(&key)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|err| anyhow::anyhow!("cannot put s3://{bucket}/{key}: {}", brief(&err)))?;
        return Ok(());
    }
    let created = client
        .create_multipart_upload()
        .bucket(&bucket)
        .key(&key)
        .send()
        .await
        .map_err(|err| anyhow::anyhow!("cannot start the upload of s3://{bucket}/{key}: {}", brief(&err)))?;
    let upload_id = created.upload_id().context("S3 started a multipart upload without an upload id")?.to_string();
    let parts: Vec<(i32, Vec<u8>)> =
        body.chunks(MULTIPART_PART).enumerate().map(|(i, chunk)| (i as i32 + 1, chunk.to_vec())).collect();
    drop(body);
    let uploaded = stream::iter(parts)
        .map(|(number, chunk)| {
            let (client, bucket, key, upload_id) = (&client, &bucket, &key, &upload_id);
            async move {
                let part = client
                    .upload_part()
                    .bucket(bucket)
                    .key(key)
                    .upload_id(upload_id)
                    .part_number(number)
                    .body(ByteStream::from(chunk))
                    .send()
                    .await
                    .map_err(|err| {
                        anyhow::anyhow!("cannot upload part {number} of s3://{bucket}/{key}: {}", brief(&err))
                    })?;
                anyhow::Ok(
                    CompletedPart::builder().part_number(number).set_e_tag(part.e_tag().map(str::to_string)).build(),
                )
            }
        })
        .buffered(PARTS_IN_FLIGHT)
        .try_collect::<Vec<CompletedPart>>()
        .await;
    let completed = match uploaded {
        Ok(parts) => client
            .complete_multipart_upload()
            .bucket(&bucket)
            .key(&key)
            .upload_id(&upload_id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .send()
            .await
            .map(|_| ())
            .map_err(|err| anyhow::anyhow!("cannot complete the upload of s3://{bucket}/{key}: {}", brief(&err))),
        Err(err) => Err(err),
    };
    if completed.is_err() {
        let _ = client.abort_multipart_upload().bucket(&bucket).key(&key).upload_id(&upload_id).send().await;
    }
    completed
}

impl Sink for S3Sink {
    fn describe(&self) -> String {
        self.location.to_string()
    }

    fn write_batch(&mut self, token: FencingToken, records: &[SinkRecord<'_>]) -> anyhow::Result<()> {
        let mut by_day: BTreeMap<UtcDay, Vec<&[u8]>> = BTreeMap::new();
        for record in records {
            by_day.entry(record.day).or_default().push(record.line);
        }
        let mut objects = Vec::with_capacity(by_day.len());
        for (day, lines) in &by_day {
            objects.push((self.key(*day, token), self.body(lines)?));
        }
        let (client, bucket) = (self.client.clone(), self.location.bucket.clone());
        for (index, (key, body)) in objects.into_iter().enumerate() {
            if index > 0 {
                // The directory sink's stage of the same name: some of a
                // batch's days are durable, the others not yet.
                failpoint("between-renames");
            }
            self.run(put_object(client.clone(), bucket.clone(), key, body))?;
        }
        Ok(())
    }

    fn durable_days(&self, token: FencingToken, days: &[UtcDay]) -> anyhow::Result<Vec<UtcDay>> {
        let mut durable = Vec::new();
        for day in days {
            let (client, bucket, key) = (self.client.clone(), self.location.bucket.clone(), self.key(*day, token));
            let exists = self.run(async move {
                match client.head_object().bucket(&bucket).key(&key).send().await {
                    Ok(_) => Ok(true),
                    Err(err) if err.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(false),
                    Err(err) => Err(anyhow::anyhow!("cannot look for s3://{bucket}/{key}: {}", brief(&err))),
                }
            })?;
            if exists {
                durable.push(*day);
            }
        }
        Ok(durable)
    }
}

/// Every `.ndjson` and `.ndjson.gz` object under `location`, in key order
/// (what `callqa stats` reads), skipping the hidden names Hive-style
/// readers skip.
pub async fn list_record_objects(client: &Client, location: &S3Location) -> anyhow::Result<Vec<String>> {
    let prefix = if location.prefix.is_empty() { String::new() } else { format!("{}/", location.prefix) };
    let mut pages = client.list_objects_v2().bucket(&location.bucket).prefix(&prefix).into_paginator().send();
    let mut keys = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|err| anyhow::anyhow!("cannot list {location}: {}", brief(&err)))?;
        for object in page.contents() {
            let Some(key) = object.key() else { continue };
            let relative = &key[prefix.len().min(key.len())..];
            let hidden = relative.split('/').any(|part| part.starts_with(['.', '_']));
            if !hidden && (key.ends_with(".ndjson") || key.ends_with(".ndjson.gz")) {
                keys.push(key.to_string());
            }
        }
    }
    keys.sort();
    Ok(keys)
}

/// One object's bytes, gunzipped when its name says so.
pub async fn read_record_object(client: &Client, bucket: &str, key: &str) -> anyhow::Result<Vec<u8>> {
    let object = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|err| anyhow::anyhow!("cannot get s3://{bucket}/{key}: {}", brief(&err)))?;
    let bytes = object.body.collect().await.with_context(|| format!("cannot read s3://{bucket}/{key}"))?.into_bytes();
    if !key.ends_with(".gz") {
        return Ok(bytes.to_vec());
    }
    let mut plain = Vec::with_capacity(bytes.len() * 4);
    std::io::copy(&mut flate2::read::MultiGzDecoder::new(&bytes[..]), &mut plain)
        .with_context(|| format!("s3://{bucket}/{key} is not valid gzip"))?;
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bucket_and_prefix() {
        let parsed = |spec: &str| S3Location::parse(spec).unwrap().unwrap();
        assert_eq!(
            parsed("s3://ctr-lake/raw/ctr/"),
            S3Location { bucket: "ctr-lake".into(), prefix: "raw/ctr".into() }
        );
        assert_eq!(parsed("s3://ctr-lake"), S3Location { bucket: "ctr-lake".into(), prefix: String::new() });
        assert_eq!(parsed("s3://ctr-lake").key("a/b"), "a/b");
        assert_eq!(parsed("s3://ctr-lake/p").key("a/b"), "p/a/b");
        assert!(S3Location::parse("out/dir").is_none());
        let err = S3Location::parse("s3://Bad_Bucket/x").unwrap().unwrap_err().to_string();
        assert!(err.contains("not an S3 bucket name"), "{err}");
    }
}
