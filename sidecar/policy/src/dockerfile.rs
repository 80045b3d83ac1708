//! The one thing in a Dockerfile that reaches outside the build: `ADD <url>` (and the same in
//! an `ONBUILD` trigger), which dockerd's classic builder fetches itself, from the engine's
//! own network namespace (the host's: loopback services, metadata endpoints). A source that
//! is a URL, or that holds a variable (which a build argument could make a URL), is refused;
//! `COPY` and local `ADD` sources are the context's. Parsed as the classic builder's parser
//! reads the file: parser directives, the escape character, line continuations, comments,
//! JSON and shell forms, flags.

/// Longest Dockerfile the gateway reads (dockerd has no limit; real ones are kilobytes).
pub const MAX_DOCKERFILE: usize = 1 << 20;

/// Why an instruction is refused: the line as written, and the source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteSource {
    pub instruction: String,
    pub source: String,
}

/// The first `ADD` (or `ONBUILD ADD`) whose source would make the engine fetch something.
pub fn remote_source(text: &str) -> Option<RemoteSource> {
    let escape = escape_char(text);
    logical_lines(text, escape)
        .into_iter()
        .find_map(|line| remote_in_instruction(&line))
}

/// The first trigger (`ONBUILD` lines as images and commits store them: `ADD src dst`) that
/// would make the engine fetch something when an image is built from it.
pub fn remote_trigger<'a>(triggers: impl IntoIterator<Item = &'a str>) -> Option<RemoteSource> {
    triggers.into_iter().find_map(remote_in_instruction)
}

/// The escape character a `# escape=` parser directive sets (the default is `\`).
/// Directives are the leading `# key=value` comments, before any other line.
fn escape_char(text: &str) -> char {
    for line in text.lines() {
        let line = line.trim();
        let Some(directive) = line.strip_prefix('#') else {
            break;
        };
        let Some((key, value)) = directive.split_once('=') else {
            break;
        };
        if key.trim().eq_ignore_ascii_case("escape") {
            if let Some(c) = value.trim().chars().next() {
                return c;
            }
        }
    }
    '\\'
}

/// Instructions, continuations joined, comment lines dropped (also inside continuations,
/// as the builder does).
fn logical_lines(text: &str, escape: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut continuing = false;
    for raw in text.lines() {
        let trimmed = raw.trim_start();
        if trimmed.starts_with('#') {
            continue;
        }
        if !continuing && trimmed.is_empty() {
            continue;
        }
        let line = raw.trim_end();
        match line.strip_suffix(escape) {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
                continuing = true;
            }
            None => {
                current.push_str(line);
                out.push(std::mem::take(&mut current));
                continuing = false;
            }
        }
    }
    if !current.trim().is_empty() {
        out.push(current);
    }
    out
}

fn remote_in_instruction(line: &str) -> Option<RemoteSource> {
    let line = line.trim();
    let (word, rest) = line
        .split_once(|c: char| c.is_whitespace())
        .unwrap_or((line, ""));
    if word.eq_ignore_ascii_case("onbuild") {
        return remote_in_instruction(rest);
    }
    if !word.eq_ignore_ascii_case("add") {
        return None;
    }
    let args = arguments(rest.trim());
    // Flags first (`--chown=`, `--chmod=`, `--link`, ...), the destination last.
    let args: Vec<&String> = args.iter().skip_while(|a| a.starts_with("--")).collect();
    let sources = args.split_last().map(|(_, s)| s).unwrap_or_default();
    sources.iter().find(|s| fetches(s)).map(|s| RemoteSource {
        instruction: line.to_string(),
        source: s.to_string(),
    })
}

/// A source the builder would fetch: a URL, or anything a variable could turn into one.
fn fetches(source: &str) -> bool {
    source.contains("://") || source.contains('$') || source.starts_with("git@")
}

/// The JSON form (`["a", "b"]`) or whitespace-separated words.
fn arguments(rest: &str) -> Vec<String> {
    if rest.starts_with('[') {
        if let Ok(list) = serde_json::from_str::<Vec<String>>(rest) {
            return list;
        }
    }
    rest.split_whitespace().map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_variables_in_add_sources_are_found() {
        for text in [
            "FROM busybox\nADD http://127.0.0.1:8080/secret /s\n",
            "FROM busybox\nadd https://169.254.169.254/latest/meta-data/ /m\n",
            "FROM busybox\nADD --chown=1:1 http://127.0.0.1/x /x\n",
            "FROM busybox\nADD [\"http://127.0.0.1/x\", \"/x\"]\n",
            "FROM busybox\nADD \\\n  http://127.0.0.1/x \\\n  /x\n",
            "FROM busybox\nADD \\\n# a comment inside\n  http://127.0.0.1/x /x\n",
            "# escape=`\nFROM busybox\nADD `\n http://127.0.0.1/x /x\n",
            "FROM busybox\nARG U\nADD $U /x\n",
            "FROM busybox\nADD ${U:-http://127.0.0.1/x} /x\n",
            "FROM busybox\nONBUILD ADD http://127.0.0.1/x /x\n",
            "FROM busybox\nADD local.txt http://127.0.0.1/x /dir/\n",
            "FROM busybox\n  Add  git@example.invalid:x/y.git /src\n",
        ] {
            assert!(remote_source(text).is_some(), "{text:?}");
        }
    }

    #[test]
    fn local_sources_and_other_instructions_pass() {
        for text in [
            "FROM busybox\nCOPY . /src\nADD archive.tar /opt/\nRUN echo http://x\n",
            "FROM busybox\nADD [\"a b.txt\", \"/x\"]\nLABEL url=http://example.invalid\n",
            "FROM busybox\n# ADD http://127.0.0.1/x /x\nENV U=http://x\n",
            "",
        ] {
            assert_eq!(remote_source(text), None, "{text:?}");
        }
    }

    #[test]
    fn stored_triggers_are_checked_too() {
        assert!(remote_trigger(["ADD http://127.0.0.1/x /x"]).is_some());
        assert!(remote_trigger(["RUN true", "COPY a /a"]).is_none());
    }
}
