//! A refused request in Docker's terms: the status dockerd's clients expect, and the
//! Docker-shaped JSON message (`{"message": "dockgate: ..."}`) the CLI prints.

/// What a refusal means, as the status dockerd's clients expect for it. nginx's
/// `@dockgate_refused` returns each of these as it is (`docker-api-policy.conf`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// The request cannot be read one way (400).
    BadRequest,
    /// No identity, or a wrong one (401).
    Unauthorized,
    /// The caller may not do this (403).
    Forbidden,
    /// Another tenant's object, answered as dockerd answers for a missing one (404).
    NotFound,
    /// A body that did not arrive in time (408).
    Timeout,
    /// A body over the limit (413).
    TooLarge,
    /// The gateway failed at something of its own (500).
    Internal,
    /// The engine could not be asked (502).
    BadGateway,
}

impl Status {
    pub fn code(self) -> u16 {
        match self {
            Status::BadRequest => 400,
            Status::Unauthorized => 401,
            Status::Forbidden => 403,
            Status::NotFound => 404,
            Status::Timeout => 408,
            Status::TooLarge => 413,
            Status::Internal => 500,
            Status::BadGateway => 502,
        }
    }
}

/// A refused request: its meaning, the Docker-shaped message, and the rule that refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: Status,
    pub message: String,
    /// The policy rule that refused, if one did.
    pub rule: Option<&'static str>,
}

impl Refusal {
    pub fn new(status: Status, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            message: format!("dockgate: {}", message.into()),
            rule: None,
        }
    }

    /// A refusal worded exactly as dockerd words it (no `dockgate:`): another tenant's
    /// object must look missing, not forbidden.
    pub fn new_plain(status: Status, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            message: message.into(),
            rule: None,
        }
    }

    /// The Docker-shaped error body: `{"message": "dockgate: ..."}`, ASCII only so it can
    /// travel in a header.
    pub fn json(&self) -> String {
        let text = serde_json::to_string(&serde_json::json!({ "message": self.message }))
            .unwrap_or_else(|_| "{\"message\":\"dockgate: refused\"}".into());
        text.chars()
            .map(|c| {
                if c.is_ascii() {
                    c.to_string()
                } else {
                    let mut buf = [0u16; 2];
                    c.encode_utf16(&mut buf)
                        .iter()
                        .map(|u| format!("\\u{u:04x}"))
                        .collect()
                }
            })
            .collect()
    }
}
