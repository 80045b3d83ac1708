//! A tenant's classic build: its Dockerfile, rewritten on the way to dockerd, so that
//! - every image it builds from (`FROM`, `COPY --from=`) is looked up in the tenant's
//!   namespace and the shared images, as every other reference of the tenant is;
//! - every stage starts with `LABEL dockgate.tenant=<tenant>`, so each step's configuration
//!   names the tenant. dockerd's classic build cache matches a step by its parent image and
//!   its configuration (labels included): a step is a cache hit only for the tenant that
//!   built it, while the shared base images stay shared. The images it leaves, intermediate
//!   ones too, carry the tenant's label.
//!
//! Read as dockerd 20.10's builder reads it: `FROM` expands the build arguments declared
//! before the first `FROM` (and the built-in proxy arguments); a `FROM` naming an earlier
//! stage (any case) is that stage; `COPY --from=` is not expanded, names an earlier stage or
//! a stage index first, and an image otherwise. [`plan`] and [`Plan::write`] are pure;
//! [`rewrite_dockerfile`] asks the engine.

use std::collections::{BTreeMap, BTreeSet};

use dockgate_api::refusal::{Refusal, Status};
use dockgate_policy::dockerfile::{
    builder_flags, escape_char, instructions, quote_flag, split_word, words,
};
use dockgate_policy::labels::TENANT;
use serde_json::Value as Json;

use crate::engine::Engine;
use crate::lookup::{self, ImageUse};
use crate::Tenant;

/// `FROM scratch`: no base image.
const NO_BASE: &str = "scratch";

/// Build arguments dockerd gives every build without an `ARG` (proxies).
const BUILTIN_ARGS: [&str; 10] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// Why a Dockerfile is refused.
pub type Refused = String;

/// The build's `buildargs` query (a JSON map; a `null` value is an argument without one).
pub fn build_args(query: Option<&str>) -> Result<BTreeMap<String, Option<String>>, Refused> {
    let Some(text) = query.filter(|t| !t.is_empty()) else {
        return Ok(BTreeMap::new());
    };
    let map: BTreeMap<String, Option<String>> =
        serde_json::from_str(text).map_err(|_| format!("invalid buildargs: {text}"))?;
    Ok(map)
}

/// A Dockerfile read for rewriting: its lines, and what changes in them.
#[derive(Debug)]
pub struct Plan {
    lines: Vec<String>,
    edits: Vec<Edit>,
}

#[derive(Debug)]
struct Edit {
    /// The physical lines the instruction spans.
    lines: std::ops::Range<usize>,
    what: What,
}

#[derive(Debug)]
enum What {
    /// A stage: its base image, when it is one (not a stage or `scratch`), is rewritten.
    From {
        flags: Vec<String>,
        image: Option<String>,
        alias: Option<String>,
    },
    /// `COPY --from=<image>`: its flags as dockerd reads them, the image among them, and
    /// the rest of the instruction as written.
    CopyFrom {
        flags: Vec<String>,
        image: String,
        rest: String,
    },
}

/// Reads a Dockerfile for a tenant's build.
pub fn plan(text: &str, args: &BTreeMap<String, Option<String>>) -> Result<Plan, Refused> {
    let escape = escape_char(text);
    let mut meta: BTreeMap<String, String> = BTreeMap::new();
    for key in BUILTIN_ARGS {
        if let Some(Some(v)) = args.get(key) {
            meta.insert(key.to_string(), v.clone());
        }
    }
    let mut stages: BTreeSet<String> = BTreeSet::new();
    let mut current: Option<String> = None;
    let mut seen_from = false;
    let mut edits = Vec::new();
    for instruction in instructions(text) {
        let (word, rest) = split_word(&instruction.text);
        let word = word.to_ascii_lowercase();
        match word.as_str() {
            "arg" if !seen_from => {
                for decl in rest.split_whitespace() {
                    let (key, default) = match decl.split_once('=') {
                        Some((k, v)) => (k, Some(expand(v, &meta, escape)?)),
                        None => (decl, None),
                    };
                    let value = match args.get(key) {
                        Some(Some(v)) => Some(v.clone()),
                        _ => default,
                    };
                    if let Some(v) = value {
                        meta.insert(key.to_string(), v);
                    }
                }
            }
            "from" => {
                seen_from = true;
                // The stage before this one is done: later stages may name it.
                if let Some(name) = current.take() {
                    stages.insert(name);
                }
                let (flags, args_text) = builder_flags(rest);
                let (base, alias) = match words(args_text).as_slice() {
                    [base] => (*base, None),
                    [base, as_, name] if as_.eq_ignore_ascii_case("as") => {
                        (*base, Some(name.to_string()))
                    }
                    _ => {
                        return Err(format!(
                            "{:?}: FROM takes an image, and AS with a stage name",
                            instruction.text.trim()
                        ))
                    }
                };
                current = alias.as_ref().map(|a| a.to_ascii_lowercase());
                let expanded = expand(base, &meta, escape)?;
                let image = if expanded.is_empty()
                    || expanded == NO_BASE
                    || stages.contains(&expanded.to_ascii_lowercase())
                {
                    None
                } else {
                    Some(expanded)
                };
                edits.push(Edit {
                    lines: instruction.lines.clone(),
                    what: What::From {
                        flags,
                        image,
                        alias,
                    },
                });
            }
            "copy" => {
                let (flags, after) = builder_flags(rest);
                if let Some(image) = copy_from(&flags).filter(|from| {
                    !stages.contains(&from.to_ascii_lowercase()) && from.parse::<i64>().is_err()
                }) {
                    edits.push(Edit {
                        lines: instruction.lines.clone(),
                        what: What::CopyFrom {
                            flags,
                            image,
                            rest: after.to_string(),
                        },
                    });
                }
            }
            "onbuild" if copy_from(&builder_flags(split_word(rest).1).0).is_some() => {
                return Err(format!(
                    "{:?}: a trigger that copies from another image runs in the builds of \
                     others, where the gateway cannot resolve it in the tenant's namespace; \
                     copy in the build itself",
                    instruction.text.trim()
                ));
            }
            _ => {}
        }
    }
    Ok(Plan {
        lines: text.lines().map(str::to_string).collect(),
        edits,
    })
}

/// The value of the `--from` flag among an instruction's flags (as [`builder_flags`]
/// extracts them).
fn copy_from(flags: &[String]) -> Option<String> {
    flags
        .iter()
        .find_map(|w| w.strip_prefix("--from="))
        .map(str::to_string)
}

impl Plan {
    /// The images the Dockerfile builds from, each once, as written (expanded).
    pub fn images(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for edit in &self.edits {
            let image = match &edit.what {
                What::From { image, .. } => image.as_ref(),
                What::CopyFrom { image, .. } => Some(image),
            };
            if let Some(image) = image.filter(|i| !out.contains(i)) {
                out.push(image.clone());
            }
        }
        out
    }

    /// The images stages start from (`FROM`): those whose stored triggers run in the build.
    pub fn bases(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for edit in &self.edits {
            if let What::From {
                image: Some(image), ..
            } = &edit.what
            {
                if !out.contains(image) {
                    out.push(image.clone());
                }
            }
        }
        out
    }

    /// The Dockerfile for dockerd: each image replaced by `resolved`'s engine reference for
    /// it (an image missing from `resolved` is kept as written), each stage labelled.
    pub fn write(&self, tenant: &str, resolved: &BTreeMap<String, String>) -> String {
        let label = format!("LABEL {TENANT}={tenant}");
        let mut out = String::new();
        let mut line = 0;
        for edit in &self.edits {
            for l in &self.lines[line..edit.lines.start] {
                out.push_str(l);
                out.push('\n');
            }
            let original = || self.lines[edit.lines.clone()].join("\n");
            match &edit.what {
                What::From {
                    flags,
                    image: Some(image),
                    alias,
                } => {
                    let engine = resolved.get(image).unwrap_or(image);
                    let mut words: Vec<String> = vec!["FROM".into()];
                    words.extend(flags.iter().map(|f| quote_flag(f)));
                    words.push(engine.clone());
                    if let Some(alias) = alias {
                        words.extend(["AS".into(), alias.clone()]);
                    }
                    out.push_str(&words.join(" "));
                }
                What::From { image: None, .. } => out.push_str(&original()),
                What::CopyFrom { flags, image, rest } => match resolved.get(image) {
                    Some(engine) => {
                        let mut words: Vec<String> = vec!["COPY".into()];
                        for flag in flags {
                            words.push(match flag.strip_prefix("--from=") {
                                Some(_) => quote_flag(&format!("--from={engine}")),
                                None => quote_flag(flag),
                            });
                        }
                        words.push(rest.trim().to_string());
                        out.push_str(&words.join(" "));
                    }
                    None => out.push_str(&original()),
                },
            }
            out.push('\n');
            if matches!(edit.what, What::From { .. }) {
                out.push_str(&label);
                out.push('\n');
            }
            line = edit.lines.end;
        }
        for l in &self.lines[line.min(self.lines.len())..] {
            out.push_str(l);
            out.push('\n');
        }
        out
    }
}

/// Whether an image's stored triggers (`ONBUILD`, as its config keeps them) may run in a
/// tenant's build: not one that copies from another image.
pub fn triggers_allowed<'a>(
    image: &str,
    triggers: impl IntoIterator<Item = &'a str>,
) -> Result<(), Refused> {
    for trigger in triggers {
        let (word, rest) = split_word(trigger);
        if word.eq_ignore_ascii_case("copy") && copy_from(&builder_flags(rest).0).is_some() {
            return Err(format!(
                "{image} has the trigger ONBUILD {trigger:?}, which copies from another image: \
                 the gateway cannot resolve it in the tenant's namespace"
            ));
        }
    }
    Ok(())
}

/// A word as dockerd's shell lexer expands it for `FROM`: quotes removed, `$NAME`,
/// `${NAME}`, `${NAME:-word}` and `${NAME:+word}` from `vars` (unset is empty).
fn expand(word: &str, vars: &BTreeMap<String, String>, escape: char) -> Result<String, Refused> {
    let unsupported = || format!("{word:?}: a substitution the gateway does not read");
    let chars: Vec<char> = word.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    let mut quote: Option<char> = None;
    let name_char = |c: char| c.is_ascii_alphanumeric() || c == '_';
    while i < chars.len() {
        let c = chars[i];
        match (c, quote) {
            ('\'', None) => quote = Some('\''),
            ('\'', Some('\'')) => quote = None,
            ('"', None) => quote = Some('"'),
            ('"', Some('"')) => quote = None,
            (c, q) if c == escape && q != Some('\'') => {
                i += 1;
                if let Some(&next) = chars.get(i) {
                    out.push(next);
                }
            }
            ('$', q) if q != Some('\'') => {
                i += 1;
                match chars.get(i) {
                    Some('{') => {
                        let end = chars[i..]
                            .iter()
                            .position(|&c| c == '}')
                            .ok_or_else(unsupported)?;
                        let inner: String = chars[i + 1..i + end].iter().collect();
                        i += end;
                        let (name, modifier) = match inner.find(|c: char| !name_char(c)) {
                            Some(at) => (&inner[..at], Some(&inner[at..])),
                            None => (inner.as_str(), None),
                        };
                        if name.is_empty() {
                            return Err(unsupported());
                        }
                        let value = vars.get(name).filter(|v| !v.is_empty());
                        match modifier {
                            None => out.push_str(value.map_or("", String::as_str)),
                            Some(m) if m.starts_with(":-") => match value {
                                Some(v) => out.push_str(v),
                                None => out.push_str(&expand(&m[2..], vars, escape)?),
                            },
                            Some(m) if m.starts_with(":+") => {
                                if value.is_some() {
                                    out.push_str(&expand(&m[2..], vars, escape)?);
                                }
                            }
                            Some(_) => return Err(unsupported()),
                        }
                    }
                    Some(&c) if name_char(c) => {
                        let end = chars[i..]
                            .iter()
                            .position(|&c| !name_char(c))
                            .unwrap_or(chars.len() - i);
                        let name: String = chars[i..i + end].iter().collect();
                        out.push_str(vars.get(&name).map_or("", String::as_str));
                        i += end - 1;
                    }
                    _ => {
                        out.push('$');
                        i -= 1;
                    }
                }
            }
            (c, _) => out.push(c),
        }
        i += 1;
    }
    Ok(out)
}

/// The Dockerfile dockerd gets for `text`: images resolved (to their IDs), stages labelled.
/// `checks`: the role is conservative (base images' `ONBUILD ADD <url>` refused too).
pub async fn rewrite_dockerfile<E: Engine>(
    engine: &E,
    tenant: &Tenant,
    args: &BTreeMap<String, Option<String>>,
    text: &str,
    checks: bool,
) -> Result<String, Refusal> {
    let plan = plan(text, args).map_err(|e| Refusal::new(Status::Forbidden, e))?;
    let bases = plan.bases();
    let mut resolved = BTreeMap::new();
    for image in plan.images() {
        let reference = lookup::image(engine, tenant, &image, ImageUse::Read)
            .await
            .map_err(|r| {
                if r.status != Status::NotFound {
                    return r;
                }
                Refusal::new(
                    Status::NotFound,
                    format!(
                        "the Dockerfile builds from {image}: No such image: {image} (a tenant's \
                         build uses its own and the shared images, and does not pull: docker \
                         pull {image} first)"
                    ),
                )
            })?;
        let (status, json) = engine
            .get(&format!("/images/{}/json", lookup::image_path(&reference)))
            .await?;
        let triggers: Vec<&str> = match json.pointer("/Config/OnBuild") {
            Some(Json::Array(t)) if status == 200 => t.iter().filter_map(Json::as_str).collect(),
            _ => Vec::new(),
        };
        triggers_allowed(&image, triggers.iter().copied())
            .map_err(|e| Refusal::new(Status::Forbidden, e))?;
        // A base's triggers run as it is entered, before the stage's tenant label: their steps
        // would be a cache every tenant building from it shares. Only the tenant's own bases
        // (whose steps no other tenant can reach) may have them.
        let tags: Vec<&str> = json["RepoTags"]
            .as_array()
            .map(|t| t.iter().filter_map(Json::as_str).collect())
            .unwrap_or_default();
        let label = json
            .pointer("/Config/Labels")
            .and_then(|l| l.get(TENANT))
            .and_then(Json::as_str);
        let own = crate::images::owns(&tenant.name, tags, label);
        if !triggers.is_empty() && !own && bases.contains(&image) {
            return Err(Refusal::new(
                Status::Forbidden,
                format!(
                    "{image} has ONBUILD triggers, which run before the tenant's label and would \
                     share their build cache with other tenants: build FROM an image without \
                     triggers (or the tenant's own)"
                ),
            ));
        }
        if checks {
            if let Some(r) = dockgate_policy::dockerfile::remote_trigger(triggers.iter().copied()) {
                return Err(Refusal::new(
                    Status::Forbidden,
                    format!(
                        "{image} has the trigger ONBUILD {:?}, which would make the engine fetch \
                         {} from its own network",
                        r.instruction, r.source
                    ),
                ));
            }
        }
        // By ID: dockerd pulls a base it has under a name but for another platform (or
        // with --pull), under that name, and an ID cannot be pulled.
        let id = json["Id"]
            .as_str()
            .filter(|_| status == 200)
            .unwrap_or(&reference);
        resolved.insert(image, id.to_string());
    }
    Ok(plan.write(&tenant.name, &resolved))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolved(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    fn no_args() -> BTreeMap<String, Option<String>> {
        BTreeMap::new()
    }

    #[test]
    fn bases_are_resolved_and_every_stage_is_labelled() {
        let text = "# escape=\\\nFROM --platform=linux/amd64 base:1 AS Build\nRUN make\n\
                    FROM build\nCOPY --from=BUILD /a /a\nCOPY --from=0 /b /b\n\
                    COPY --chown=1 --from=other:2 /c /c\nFROM scratch\nCOPY x /x\n";
        let p = plan(text, &no_args()).unwrap();
        assert_eq!(p.images(), ["base:1", "other:2"]);
        let out = p.write(
            "alpha",
            &resolved(&[
                ("base:1", "dockgate-alpha/library/base:1"),
                ("other:2", "sha256:0123"),
            ]),
        );
        assert_eq!(
            out,
            "# escape=\\\nFROM --platform=linux/amd64 dockgate-alpha/library/base:1 AS Build\n\
             LABEL dockgate.tenant=alpha\nRUN make\nFROM build\nLABEL dockgate.tenant=alpha\n\
             COPY --from=BUILD /a /a\nCOPY --from=0 /b /b\n\
             COPY --chown=1 --from=sha256:0123 /c /c\nFROM scratch\n\
             LABEL dockgate.tenant=alpha\nCOPY x /x\n"
        );
    }

    #[test]
    fn flags_are_read_as_dockerd_reads_them() {
        // Quotes and escapes inside a flag word: dockerd reads --from=dockgate-beta/...
        for text in [
            "FROM a\nCOPY --fr\"om\"=dockgate-beta/library/x / /\n",
            "FROM a\nCOPY --from='dockgate-beta/library/x' / /\n",
            "FROM a\nCOPY --chown=\"1 2\" --fro\\m=dockgate-beta/library/x / /\n",
        ] {
            let p = plan(text, &no_args()).unwrap();
            assert_eq!(p.images(), ["a", "dockgate-beta/library/x"], "{text:?}");
            let out = p.write("t", &resolved(&[("dockgate-beta/library/x", "MISSING")]));
            assert!(out.contains("--from=MISSING"), "{out}");
            assert!(!out.contains("dockgate-beta"), "{out}");
        }
        // A FROM that cannot be read one way is refused, not left to dockerd.
        for text in [
            "FROM\n",
            "FROM a b\n",
            "FROM --platform=\"x y\" a b\n",
            "FROM a AS\n",
        ] {
            assert!(plan(text, &no_args()).is_err(), "{text:?}");
        }
        let p = plan("FROM --platform=\"linux/amd64\" -- a AS b\n", &no_args()).unwrap();
        assert_eq!(p.images(), ["a"]);
    }

    #[test]
    fn a_stage_is_named_only_after_it_ends() {
        // `FROM x AS x` builds from the image x; a later `FROM X` is the stage.
        let p = plan("FROM x AS x\nFROM X\nCOPY --from=y /a /a\n", &no_args()).unwrap();
        assert_eq!(p.images(), ["x", "y"]);
    }

    #[test]
    fn continued_instructions_are_rewritten_whole() {
        let text = "FROM \\\n  base\nCOPY \\\n --from=img \\\n /a /a\nRUN true\n";
        let p = plan(text, &no_args()).unwrap();
        let out = p.write("t", &resolved(&[("base", "B"), ("img", "I")]));
        assert_eq!(
            out,
            "FROM B\nLABEL dockgate.tenant=t\nCOPY --from=I /a /a\nRUN true\n"
        );
    }

    #[test]
    fn from_expands_the_arguments_declared_before_it() {
        let args: BTreeMap<String, Option<String>> = [
            ("TAG".to_string(), Some("2".to_string())),
            ("UNDECLARED".to_string(), Some("no".to_string())),
            ("HTTP_PROXY".to_string(), Some("p".to_string())),
        ]
        .into_iter()
        .collect();
        let text = "ARG REPO=app\nARG TAG=1\nARG EMPTY\nFROM ${REPO}:$TAG\n\
                    FROM \"${EMPTY:-base}\"$UNDECLARED\nFROM x${HTTP_PROXY:+y}\nARG LATE=z\nFROM $LATE\n";
        let p = plan(text, &args).unwrap();
        assert_eq!(p.images(), ["app:2", "base", "xy"]);
        assert!(plan("FROM ${A/x/y}\n", &no_args()).is_err());
        assert!(plan("FROM ${A:?err}\n", &no_args()).is_err());
    }

    #[test]
    fn triggers_that_copy_from_images_are_refused() {
        let err = plan(
            "FROM a AS s\nONBUILD COPY --from=dockgate-beta/library/x / /\nFROM s\n",
            &no_args(),
        )
        .unwrap_err();
        assert!(
            err.contains("trigger that copies from another image"),
            "{err}"
        );
        assert!(plan("FROM a\nONBUILD COPY x /x\n", &no_args()).is_ok());
        assert!(triggers_allowed("a", ["RUN true", "copy --from=b / /"]).is_err());
        assert!(triggers_allowed("a", ["COPY x /x", "ADD y /y"]).is_ok());
    }

    #[test]
    fn build_args_are_read_from_the_query() {
        let a = build_args(Some(r#"{"A":"1","B":null}"#)).unwrap();
        assert_eq!(a.get("A"), Some(&Some("1".into())));
        assert_eq!(a.get("B"), Some(&None));
        assert!(build_args(Some("[1]")).is_err());
        assert!(build_args(None).unwrap().is_empty());
    }
}
