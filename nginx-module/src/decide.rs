//! The decisions nginx makes in its worker, with no subrequest: who is calling and what the
//! caller may do, by `dockgate-decision`'s code (the sidecar runs the same), for every request
//! that needs no engine lookup. Requests of a tenant, and a conservative role's requests
//! through an existing object, are handed to the sidecar. No unsafe code.

use dockgate_decision::config::Config;
use dockgate_decision::decide::{Head, Refusal, Status};
use dockgate_decision::head::{self, Next};
use dockgate_decision::identity::{identify, Transport};

/// What nginx does with a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// Send it to `upstream` (`dockerd`, or the sidecar for a body to check) as `uri`.
    Allow {
        uri: String,
        upstream: &'static str,
        user: String,
        role: String,
    },
    /// Refuse it: `status` is the answer's (auth_request's 401 or 403 carries it to the
    /// refusal page), `json` Docker's error body.
    Refuse {
        status: u16,
        json: String,
        user: String,
        role: String,
    },
    /// The engine must be asked first: the sidecar decides.
    Sidecar,
}

impl Answer {
    /// The status the access phase ends with for a refusal: 401 or 403, as `auth_request`'s.
    pub fn access_status(status: u16) -> u16 {
        if status == Status::Unauthorized.code() {
            401
        } else {
            403
        }
    }
}

/// Decides on one request from its transport and head.
pub fn answer(config: &Config, transport: &Transport<'_>, request: &Head<'_>) -> Answer {
    let who = match identify(config, transport) {
        Ok(who) => who,
        Err(refusal) => return refused(&refusal, "-", "-"),
    };
    match head::decide(config, &who, request) {
        Ok(Next::Done(allowed)) => Answer::Allow {
            uri: allowed.uri.to_string(),
            upstream: allowed.upstream(),
            user: who.user,
            role: who.role,
        },
        Ok(_) => Answer::Sidecar,
        Err(refusal) => refused(&refusal, &who.user, &who.role),
    }
}

fn refused(refusal: &Refusal, user: &str, role: &str) -> Answer {
    Answer::Refuse {
        status: refusal.status.code(),
        json: refusal.json(),
        user: user.to_string(),
        role: role.to_string(),
    }
}

/// Whether a request carries a body, as the sidecar's `auth_request` reads it: a
/// `Content-Length` above 0, or a `Transfer-Encoding`.
pub fn has_body(content_length: i64, transfer_encoding: bool) -> bool {
    content_length > 0 || transfer_encoding
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Config {
        let text = format!("{}\n{extra}", dockgate_decision::config::DEFAULT);
        Config::parse("test.toml", &text).expect("config")
    }

    fn ask(c: &Config, method: &str, uri: &str) -> Answer {
        let t = Transport {
            listener: "loopback",
            ..Transport::default()
        };
        let head = Head {
            method,
            uri,
            ..Head::default()
        };
        answer(c, &t, &head)
    }

    #[test]
    fn header_only_requests_are_decided_here() {
        let c = config("");
        assert_eq!(
            ask(&c, "GET", "/v1.41/_ping"),
            Answer::Allow {
                uri: "/v1.41/_ping".into(),
                upstream: "dockerd",
                user: "anonymous".into(),
                role: "developer".into(),
            }
        );
        // A conservative role's prune is narrowed to its own objects, here.
        let Answer::Allow { uri, .. } = ask(&c, "POST", "/v1.41/containers/prune") else {
            panic!("not allowed")
        };
        assert!(uri.contains("filters="), "{uri}");
        // A create carries privileges in its body: the sidecar reads it.
        let Answer::Allow { upstream, .. } = ask(&c, "POST", "/v1.41/containers/create") else {
            panic!("not allowed")
        };
        assert_eq!(upstream, "dockgate_sidecar");
        // Refused by the table, with dockerd's shape of error.
        let Answer::Refuse { status, json, .. } = ask(&c, "POST", "/v1.41/swarm/init") else {
            panic!("not refused")
        };
        assert_eq!((status, Answer::access_status(status)), (403, 403));
        assert!(
            json.contains("dockgate: role developer may not use"),
            "{json}"
        );
    }

    #[test]
    fn what_needs_the_engine_goes_to_the_sidecar() {
        let c = config("");
        // The container a conservative role acts through must be looked up.
        assert_eq!(
            ask(&c, "POST", "/v1.41/containers/web/kill"),
            Answer::Sidecar
        );
        let t = Transport {
            listener: "nowhere",
            ..Transport::default()
        };
        let Answer::Refuse { status, user, .. } = answer(&c, &t, &Head::default()) else {
            panic!("not refused")
        };
        assert_eq!((status, user.as_str()), (403, "-"));
    }

    #[test]
    fn bodies_are_counted_as_the_sidecar_counts_them() {
        assert!(!has_body(0, false));
        assert!(!has_body(-1, false));
        assert!(has_body(2, false));
        assert!(has_body(-1, true));
    }
}
