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
    instructions(text)
        .iter()
        .find_map(|i| remote_in_instruction(&i.text))
}

/// The first trigger (`ONBUILD` lines as images and commits store them: `ADD src dst`) that
/// would make the engine fetch something when an image is built from it.
pub fn remote_trigger<'a>(triggers: impl IntoIterator<Item = &'a str>) -> Option<RemoteSource> {
    triggers.into_iter().find_map(remote_in_instruction)
}

/// The first `LABEL` (or `ONBUILD LABEL`) that writes one of the gateway's own labels
/// ([`crate::labels::RESERVED`]), or a key a variable names (which a build argument could
/// make one): the instruction as written.
pub fn reserved_label(text: &str) -> Option<String> {
    instructions(text)
        .iter()
        .find(|i| label_is_reserved(&i.text))
        .map(|i| i.text.clone())
}

/// Whether one instruction (`LABEL k=v ...`, `ONBUILD LABEL ...`) writes a reserved label.
pub fn label_is_reserved(instruction: &str) -> bool {
    let (word, rest) = split_word(instruction);
    if word.eq_ignore_ascii_case("onbuild") {
        return label_is_reserved(rest);
    }
    if !word.eq_ignore_ascii_case("label") {
        return false;
    }
    // Quotes and escapes may spell a key any way: any mention of a reserved name, or a
    // variable in a key, is enough.
    if crate::labels::mentioned_in(rest).is_some() {
        return true;
    }
    let words: Vec<&str> = rest.split_whitespace().collect();
    let keys: Vec<&str> = if words.iter().any(|w| w.contains('=')) {
        words
            .iter()
            .filter_map(|w| w.split_once('=').map(|(k, _)| k))
            .collect()
    } else {
        words.first().copied().into_iter().collect()
    };
    keys.iter().any(|k| k.contains('$'))
}

/// The first word of an instruction, and the rest (trimmed).
pub fn split_word(instruction: &str) -> (&str, &str) {
    let line = instruction.trim();
    match line.split_once(|c: char| c.is_whitespace()) {
        Some((word, rest)) => (word, rest.trim()),
        None => (line, ""),
    }
}

/// The leading `--name=value` flags of an instruction's arguments as dockerd's parser
/// extracts them (quotes and backslashes processed inside a word, `--` ending the flags),
/// and the rest of the arguments as written.
pub fn builder_flags(args: &str) -> (Vec<String>, &str) {
    // Byte by byte, as dockerd's parser reads it (which takes each byte for a character, so
    // the bytes 0x85 and 0xA0 inside a UTF-8 character are blanks to it too).
    let b = args.as_bytes();
    let blank = |c: u8| matches!(c, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ' | 0x85 | 0xa0);
    let mut words = Vec::new();
    let mut i = 0;
    loop {
        while i < b.len() && blank(b[i]) {
            i += 1;
        }
        if i >= b.len() {
            return (words, "");
        }
        if !(b[i] == b'-' && b.get(i + 1) == Some(&b'-')) {
            return (words, rest_at(args, i));
        }
        let mut word: Vec<u8> = Vec::new();
        let mut quote: Option<u8> = None;
        let mut blank_ok = false;
        while i < b.len() {
            let c = b[i];
            match quote {
                None if blank(c) => break,
                None if c == b'\'' || c == b'"' => {
                    quote = Some(c);
                    blank_ok = true;
                }
                Some(q) if c == q => quote = None,
                _ if c == b'\\' => {
                    i += 1;
                    if let Some(&next) = b.get(i) {
                        word.push(next);
                    }
                }
                _ => word.push(c),
            }
            i += 1;
        }
        if word == b"--" {
            return (words, rest_at(args, i));
        }
        if blank_ok || !word.is_empty() {
            words.push(String::from_utf8_lossy(&word).into_owned());
        }
    }
}

/// `args` from byte `at`, or nothing when `at` is inside a character (the flags took part
/// of it: what follows is not a reference dockerd could read either).
fn rest_at(args: &str, at: usize) -> &str {
    args.get(at..).unwrap_or("")
}

/// A flag word written back so that [`builder_flags`] reads it as `word`.
pub fn quote_flag(word: &str) -> String {
    let (name, value) = word.split_once('=').unwrap_or((word, ""));
    let escaped: String = value
        .chars()
        .flat_map(|c| match c {
            '"' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    let plain = value
        .bytes()
        .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'\'' | b'\\'));
    if plain {
        word.to_string()
    } else if word.contains('=') {
        format!("{name}=\"{escaped}\"")
    } else {
        name.to_string()
    }
}

/// The words of an instruction's arguments as dockerd splits them (ASCII blanks only).
pub fn words(args: &str) -> Vec<&str> {
    args.split([' ', '\t', '\u{b}', '\u{c}', '\r'])
        .filter(|w| !w.is_empty())
        .collect()
}

/// One instruction of a Dockerfile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instruction {
    /// The physical lines (0-based, as `str::lines` counts them) it spans, with the comment
    /// and empty lines inside its continuations.
    pub lines: std::ops::Range<usize>,
    /// The instruction as dockerd's parser joins it: continuation characters removed, the
    /// lines put together as they are, comment and empty lines inside them skipped.
    pub text: String,
}

/// The instructions of a Dockerfile, read as the classic builder's parser reads them: parser
/// directives and comment lines skipped, continuations joined.
pub fn instructions(text: &str) -> Vec<Instruction> {
    let escape = escape_char(text);
    let physical: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < physical.len() {
        let start = i;
        let first = physical[i].trim_start();
        i += 1;
        if first.starts_with('#') {
            continue;
        }
        let (mut line, mut ended) = continuation(first, escape);
        if ended && line.trim().is_empty() {
            continue;
        }
        while !ended && i < physical.len() {
            let raw = physical[i];
            i += 1;
            if raw.trim_start().starts_with('#') || raw.trim().is_empty() {
                continue;
            }
            let (more, end) = continuation(raw, escape);
            line.push_str(&more);
            ended = end;
        }
        if !line.trim().is_empty() {
            out.push(Instruction {
                lines: start..i,
                text: line,
            });
        }
    }
    out
}

/// A line without its continuation character (and the blanks after it), and whether the
/// instruction ends with it.
fn continuation(line: &str, escape: char) -> (String, bool) {
    match line.trim_end_matches([' ', '\t']).strip_suffix(escape) {
        Some(head) => (head.to_string(), false),
        None => (line.to_string(), true),
    }
}

/// The escape character a `# escape=` parser directive sets (the default is `\`).
/// Directives are the leading `# key=value` comments, before any other line.
pub fn escape_char(text: &str) -> char {
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
pub fn arguments(rest: &str) -> Vec<String> {
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
            // dockerd skips empty lines inside a continuation, and joins words split by one.
            "FROM busybox\nADD \\\n\n   http://127.0.0.1/x /x\n",
            "FROM busybox\nADD ht\\\ntp://127.0.0.1/x /x\n",
            "FROM busybox\nADD \\  \n  http://127.0.0.1/x /x\n",
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
    fn instructions_keep_their_lines() {
        let text = "# escape=\\\nFROM a \\\n  AS b\n\n# c\nRUN x \\\n# inside\n\n  y\nCMD z";
        let found = instructions(text);
        let spans: Vec<_> = found
            .iter()
            .map(|i| (i.lines.clone(), i.text.as_str()))
            .collect();
        assert_eq!(
            spans,
            [
                (1..3, "FROM a   AS b"),
                (5..9, "RUN x   y"),
                (9..10, "CMD z")
            ]
        );
    }

    #[test]
    fn the_gateways_labels_are_found_in_label_instructions() {
        for text in [
            "FROM a\nLABEL dockgate.tenant=beta\n",
            "FROM a\nlabel x=1 \"dockgate.tenant\"=beta\n",
            "FROM a\nLABEL dockgate\\.job=0123\n",
            "FROM a\nLABEL \"dockgate\".job=0123\n",
            "# escape=`\nFROM a\nLABEL dockgate`.policy=x\n",
            "FROM a\nLABEL 'dockgate.''memory'=1\n",
            "FROM a\nLABEL dockgate.policy developer\n",
            "FROM a\nONBUILD LABEL dockgate.memory=0\n",
            "FROM a\nARG K\nLABEL $K=beta\n",
            "FROM a\nLABEL x=1 ${K}=beta\n",
        ] {
            assert!(reserved_label(text).is_some(), "{text:?}");
        }
        for text in [
            "FROM a\nLABEL version=$V org.opencontainers.image.title=x\n",
            "FROM a\nLABEL description \"costs $5\"\nRUN echo dockgate.tenant\n",
        ] {
            assert_eq!(reserved_label(text), None, "{text:?}");
        }
    }

    #[test]
    fn flags_are_extracted_as_dockerd_extracts_them() {
        let (flags, rest) = builder_flags("  --from=a --chown=\"x y\" src dst");
        assert_eq!(flags, ["--from=a", "--chown=x y"]);
        assert_eq!(rest, "src dst");
        let (flags, rest) =
            builder_flags("--fr\"om\"=dockgate-beta/x --f\\rom2='' -- --not-a-flag d");
        assert_eq!(flags, ["--from=dockgate-beta/x", "--from2="]);
        assert_eq!(rest, " --not-a-flag d");
        // A blank byte inside a UTF-8 character ends a word, as in dockerd.
        assert_eq!(builder_flags("--from=x\u{e0}y z").0, ["--from=x\u{fffd}"]);
        assert_eq!(builder_flags("--from=x").0, ["--from=x"]);
        for word in ["--from=a b", "--chown=\"q\\", "--link"] {
            let (flags, _) = builder_flags(&format!("{} rest", quote_flag(word)));
            assert_eq!(flags, [word]);
        }
    }

    #[test]
    fn stored_triggers_are_checked_too() {
        assert!(remote_trigger(["ADD http://127.0.0.1/x /x"]).is_some());
        assert!(remote_trigger(["RUN true", "COPY a /a"]).is_none());
    }
}
