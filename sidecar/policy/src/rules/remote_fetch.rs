//! `remote_fetch`: `docker import URL` and `docker build URL` (or a git URL) make dockerd
//! fetch the URL itself, from the host's network and with the host's identity: anything
//! dockerd can reach (loopback services, metadata endpoints, the internal network) would
//! end up in an image the caller can read.

use super::{Conservative, Refusal, Request, Rule};
use crate::gojson::Value;

pub static RULE: Rule = Rule {
    name: "remote_fetch",
    doc: "Refuses imports and builds that dockerd would fetch from a URL (docker import URL, docker build URL), ADD <url> in a classic build's Dockerfile, and ONBUILD ADD <url> triggers written into images (create and commit OnBuild, --change ONBUILD).",
    check,
};

fn check(req: &Request<'_>, settings: &Conservative) -> Result<(), Refusal> {
    triggers(req, settings)?;
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

/// `ONBUILD ADD <url>` stored in an image runs when someone builds from it: refused where a
/// client writes triggers (a create's or commit's `OnBuild`, `--change 'ONBUILD ...'`).
fn triggers(req: &Request<'_>, _: &Conservative) -> Result<(), Refusal> {
    let stored = req
        .body
        .field("OnBuild")
        .map(Value::items)
        .unwrap_or_default()
        .iter()
        .filter_map(Value::as_str);
    let changes: Vec<String> = match req.template() {
        "/commit" | "/images/create" => req
            .query_values("changes")
            .filter_map(|c| {
                let c = c.trim_start();
                let (word, rest) = c.split_once(char::is_whitespace)?;
                word.eq_ignore_ascii_case("onbuild")
                    .then(|| rest.to_string())
            })
            .collect(),
        _ => Vec::new(),
    };
    let all = stored.chain(changes.iter().map(String::as_str));
    match crate::dockerfile::remote_trigger(all) {
        Some(r) => Err(RULE.refuse(format!(
            "the trigger ONBUILD {:?} would make the engine fetch {} from its own network when \
             an image is built from this one",
            r.instruction, r.source
        ))),
        None => Ok(()),
    }
}
