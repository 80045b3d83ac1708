//! The labels the gateway writes on the objects it creates: its only bookkeeping, since it
//! keeps no state of its own. Clients may not write them (the `labels` rule); other
//! `dockgate.*` labels are the clients' (such as the package cache's opt-out).

/// The tenant an object belongs to.
pub const TENANT: &str = "dockgate.tenant";

/// The memory a tenant's container was created with (its limit's bookkeeping).
pub const MEMORY: &str = "dockgate.memory";

/// The policy an object was created under (`role:fingerprint`): what a conservative role
/// may reach through it.
pub const POLICY: &str = "dockgate.policy";

/// The key of the CI job a job container runs (see `dockgate_decision::jobs`).
pub const JOB: &str = "dockgate.job";

/// Every label only the gateway writes.
pub const RESERVED: &[&str] = &[TENANT, MEMORY, POLICY, JOB];

/// Whether a client may not write label `key`.
pub fn is_reserved(key: &str) -> bool {
    RESERVED.contains(&key)
}

/// The reserved label a Dockerfile-syntax text (`LABEL ...`, a commit's `--change`) may
/// write, however its key is spelt: the builder drops quotes and escape characters (`\`, or
/// `` ` `` under the escape directive) from a word, so `"dockgate".job` and `dockgate\.job`
/// are `dockgate.job`. Any mention of a reserved name once those are dropped counts.
pub fn mentioned_in(text: &str) -> Option<&'static str> {
    let plain: String = text
        .chars()
        .filter(|c| !matches!(c, '"' | '\'' | '\\' | '`'))
        .collect();
    RESERVED.iter().copied().find(|l| plain.contains(l))
}
