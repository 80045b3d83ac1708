//! `remote_fetch`: `docker import URL` and `docker build URL` (or a git URL) make dockerd
//! fetch the URL itself, from the host's network and with the host's identity: anything
//! dockerd can reach (loopback services, metadata endpoints, the internal network) would
//! end up in an image the caller can read.

use super::{Conservative, Refusal, Request, Rule};

pub static RULE: Rule = Rule {
    name: "remote_fetch",
    doc: "Refuses imports and builds that dockerd would fetch from a URL (docker import URL, docker build URL).",
    check,
};

fn check(req: &Request<'_>, _: &Conservative) -> Result<(), Refusal> {
    let (param, what) = match req.template() {
        "/images/create" => ("fromSrc", "docker import from a URL"),
        "/build" => ("remote", "docker build from a URL or git repository"),
        _ => return Ok(()),
    };
    match req.query_value(param).map(str::trim) {
        // `-`: the archive is the request body (docker import FILE, or piped);
        // `client-session`: BuildKit reads the context from the client's session.
        None | Some("" | "-") => Ok(()),
        Some("client-session") if param == "remote" => Ok(()),
        Some(_) => Err(RULE.refuse(format!(
            "{what} is not allowed: the engine would fetch it from its own network; send the \
             archive or context from the client instead"
        ))),
    }
}
