//! Bounds what mediated bodies may cost, so that one client cannot stall the others: at most
//! [`IN_FLIGHT`] bodies are parsed and checked at once (their memory), and at most
//! [`PER_CALLER`] of them belong to one caller. A body is read before its turn (bounded in size
//! and time), so a client that trickles one holds no turn; a request over either bound waits,
//! holding its text; `auth_request` decisions never wait here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Bodies parsed and checked at once: each costs up to `max_body_bytes` of text plus its
/// parsed tree (up to about 30 times the text for a body made of tiny keys or labels), so 4
/// bound the trees to about 120 MiB at the default 1 MiB limit; on 2 cores more would only
/// queue for the CPU.
pub const IN_FLIGHT: usize = 4;

/// Bodies parsed and checked at once for one caller (user name).
pub const PER_CALLER: usize = 2;

/// The two bounds.
pub struct BodyGate {
    all: Arc<Semaphore>,
    callers: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl Default for BodyGate {
    fn default() -> BodyGate {
        BodyGate {
            all: Arc::new(Semaphore::new(IN_FLIGHT)),
            callers: Mutex::new(HashMap::new()),
        }
    }
}

/// A turn to read and check one body; dropping it lets the next one in.
pub struct Turn {
    _caller: OwnedSemaphorePermit,
    _all: OwnedSemaphorePermit,
}

impl BodyGate {
    /// Waits for `caller`'s turn: first among its own bodies, then among everyone's.
    pub async fn turn(&self, caller: &str) -> Turn {
        let mine = {
            let mut callers = self.callers.lock().unwrap_or_else(|e| e.into_inner());
            // Forget callers with nothing in flight, so the map stays as small as the load.
            callers.retain(|_, s| s.available_permits() < PER_CALLER);
            callers
                .entry(caller.to_string())
                .or_insert_with(|| Arc::new(Semaphore::new(PER_CALLER)))
                .clone()
        };
        let caller_permit = mine.acquire_owned().await.expect("never closed");
        let all = self
            .all
            .clone()
            .acquire_owned()
            .await
            .expect("never closed");
        Turn {
            _caller: caller_permit,
            _all: all,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_caller_gets_at_most_its_share() {
        let gate = Arc::new(BodyGate::default());
        let mut turns = Vec::new();
        for _ in 0..PER_CALLER {
            turns.push(gate.turn("greedy").await);
        }
        // The greedy caller waits; another caller still gets in at once.
        let g = gate.clone();
        let waiting = tokio::spawn(async move { g.turn("greedy").await });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        let other = tokio::time::timeout(std::time::Duration::from_secs(1), gate.turn("other"))
            .await
            .expect("another caller is not stalled");
        drop(other);
        turns.pop();
        tokio::time::timeout(std::time::Duration::from_secs(1), waiting)
            .await
            .expect("the greedy caller's next body goes in once one finished")
            .unwrap();
    }
}
