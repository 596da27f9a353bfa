//! Vectors by text hash: a segment is embedded once, whichever rules and
//! sessions ask for it (greetings and closings repeat across calls).

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use sha2::{Digest, Sha256};

use super::Vector;

/// A bounded map from SHA-256 (first 16 bytes) of a text to its vector.
pub struct VectorCache {
    map: Mutex<HashMap<[u8; 16], Arc<Vector>>>,
    capacity: usize,
}

/// About 150 MiB of 384-dimension vectors at most: a day of calls on a busy
/// centre, far more than any session needs at once.
const DEFAULT_CAPACITY: usize = 100_000;

impl Default for VectorCache {
    fn default() -> Self {
        VectorCache::with_capacity(DEFAULT_CAPACITY)
    }
}

impl VectorCache {
    pub fn with_capacity(capacity: usize) -> Self {
        VectorCache { map: Mutex::new(HashMap::new()), capacity: capacity.max(1) }
    }

    fn key(text: &str) -> [u8; 16] {
        let digest = Sha256::digest(text.as_bytes());
        let mut key = [0; 16];
        key.copy_from_slice(&digest[..16]);
        key
    }

    pub fn get_all(&self, texts: &[&str]) -> Vec<Option<Arc<Vector>>> {
        let keys: Vec<[u8; 16]> = texts.iter().map(|t| Self::key(t)).collect();
        let map = self.map.lock();
        keys.iter().map(|k| map.get(k).cloned()).collect()
    }

    pub fn insert_all(&self, texts: &[&str], vectors: &[Arc<Vector>]) {
        let keys: Vec<[u8; 16]> = texts.iter().map(|t| Self::key(t)).collect();
        let mut map = self.map.lock();
        // Emptied when full rather than kept in LRU order: a miss costs one
        // more embedding of a session's segments, and the bookkeeping of an
        // LRU would be paid on every hit.
        if map.len() + keys.len() > self.capacity {
            map.clear();
        }
        for (k, v) in keys.into_iter().zip(vectors) {
            map.insert(k, v.clone());
        }
    }

    pub fn len(&self) -> usize {
        self.map.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
