//! Password hashing with argon2id (OWASP minimum parameters: 19 MiB, t=2,
//! p=1), run on the blocking pool and bounded: at most `concurrency` hashes at
//! once, however many requests wait or give up — a permit is held by the hash
//! itself, not by the request that asked for it, so a cancelled request cannot
//! let a new hash start while its own still runs.
//!
//! Each permit owns its 19 MiB of argon2 memory for the life of the process:
//! hashing never allocates, so the allocator is never left holding freed
//! hash buffers (glibc keeps them once its mmap threshold has risen).

use std::sync::Arc;

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use parking_lot::Mutex;
use tokio::sync::Semaphore;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

fn failed(e: impl std::fmt::Display) -> HashError {
    HashError(e.to_string())
}

/// The argon2 memory of one hash, reused hash after hash.
type Memory = Vec<Block>;

#[derive(Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    /// One memory per permit: whoever holds a permit finds one here.
    memories: Arc<Mutex<Vec<Memory>>>,
}

impl PasswordHasher {
    pub fn new(concurrency: usize) -> Self {
        let concurrency = concurrency.max(1);
        PasswordHasher {
            permits: Arc::new(Semaphore::new(concurrency)),
            memories: Arc::new(Mutex::new(Vec::with_capacity(concurrency))),
        }
    }

    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        self.blocking(move |memory| hash_with(memory, password.as_bytes())).await?
    }

    /// False for a wrong password or an unreadable hash.
    pub async fn verify(&self, password: String, hash: String) -> Result<bool, HashError> {
        self.blocking(move |memory| verify_with(memory, password.as_bytes(), &hash)).await
    }

    /// Runs `work` on the blocking pool with a permit and its memory, both
    /// given back only when `work` is done — even if the caller went away.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Memory) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let permit = self.permits.clone().acquire_owned().await.map_err(failed)?;
        let memories = self.memories.clone();
        tokio::task::spawn_blocking(move || {
            let mut memory = memories.lock().pop().unwrap_or_default();
            let out = work(&mut memory);
            memories.lock().push(memory);
            drop(permit);
            out
        })
        .await
        .map_err(failed)
    }
}

/// `memory` grown (once) to what `params` need; the slice to hash in.
fn blocks<'a>(memory: &'a mut Memory, params: &Params) -> &'a mut [Block] {
    if memory.len() < params.block_count() {
        memory.resize(params.block_count(), Block::default());
    }
    &mut memory[..params.block_count()]
}

fn hash_with(memory: &mut Memory, password: &[u8]) -> Result<String, HashError> {
    let params = Params::default();
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    // 16 bytes from a CSPRNG seeded by the OS (what a v4 UUID is made of).
    let salt = *Uuid::new_v4().as_bytes();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon2.hash_password_into_with_memory(password, &salt, &mut out, blocks(memory, &params)).map_err(failed)?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(failed)?,
        salt: Some(Salt::new(&salt).map_err(failed)?),
        hash: Some(Output::new(&out).map_err(failed)?),
    };
    Ok(phc.to_string())
}

fn verify_with(memory: &mut Memory, password: &[u8], phc: &str) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else { return false };
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else { return false };
    let (Ok(algorithm), Ok(params)) = (Algorithm::try_from(hash.algorithm.as_str()), Params::try_from(&hash)) else {
        return false;
    };
    let Ok(version) = hash.version.map_or(Ok(Version::V0x13), Version::try_from) else { return false };
    let mut out = vec![0u8; expected.len()];
    let argon2 = Argon2::new(algorithm, version, params.clone());
    argon2.hash_password_into_with_memory(password, salt, &mut out, blocks(memory, &params)).is_ok()
        // `Output` compares in constant time.
        && Output::new(&out).is_ok_and(|computed| &computed == expected)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use argon2::PasswordHasher as _;

    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_are_salted() {
        let h = PasswordHasher::new(2);
        let a = h.hash("correct horse".into()).await.unwrap();
        let b = h.hash("correct horse".into()).await.unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b);
        assert!(h.verify("correct horse".into(), a.clone()).await.unwrap());
        assert!(!h.verify("wrong horse".into(), a).await.unwrap());
        assert!(!h.verify("x".into(), "not a hash".into()).await.unwrap());
    }

    #[tokio::test]
    async fn hashes_made_by_the_argon2_crate_itself_verify() {
        let stock = Argon2::default().hash_password(b"legacy password").unwrap().to_string();
        let h = PasswordHasher::new(1);
        assert!(h.verify("legacy password".into(), stock.clone()).await.unwrap());
        assert!(!h.verify("other".into(), stock).await.unwrap());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn cancelled_requests_never_let_more_hashes_run_than_permits() {
        let h = PasswordHasher::new(1);
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let work = |running: Arc<AtomicUsize>, most: Arc<AtomicUsize>| {
            move |_: &mut Memory| {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(100));
                running.fetch_sub(1, Ordering::SeqCst);
            }
        };
        // Requests that give up while their hash runs, one after another.
        for _ in 0..5 {
            let request = h.blocking(work(running.clone(), most.clone()));
            let _ = tokio::time::timeout(Duration::from_millis(20), request).await;
        }
        h.blocking(work(running.clone(), most.clone())).await.unwrap();
        assert_eq!(most.load(Ordering::SeqCst), 1, "a cancelled request freed its permit while its hash still ran");
    }
}
