//! A classic build's context, read as it streams past, for its Dockerfile: a tar archive as
//! Go's `archive/tar` reads it (ustar and GNU names, PAX and GNU long-name records, base-256
//! sizes, checksums, the two-zero-block end), so that the entry dockerd will open as the
//! Dockerfile is the entry the gateway checks ([`crate::dockerfile`]). A gzip context is read
//! through a streaming decoder, as dockerd's `DecompressStream` reads it (all members).
//! Whatever the gateway could read differently is refused: bzip2, xz and zstd contexts,
//! sparse entries, bad headers, a Dockerfile (or a directory on its path) that is a link. Every entry that could be the
//! Dockerfile is checked (a later one would replace an earlier one on extraction). Memory is
//! bounded: one header, one PAX record set, one Dockerfile. Pure: no I/O.

use crate::dockerfile::{self, MAX_DOCKERFILE};

const BLOCK: usize = 512;

/// The longest magic number below.
const MAGIC_LEN: usize = 6;

/// gzip's magic number: decoded on the way.
const GZIP: &[u8] = &[0x1f, 0x8b, 0x08];

/// Magic numbers of the other compressions dockerd's `DecompressStream` undoes.
const COMPRESSED: &[&[u8]] = &[
    &[0x42, 0x5a, 0x68],
    &[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00],
    &[0x28, 0xb5, 0x2f, 0xfd],
];

/// Why a context is refused.
pub type Refused = String;

/// The reader's position in the archive.
#[derive(Debug)]
enum State {
    /// Collecting a 512-byte header.
    Header,
    /// Inside an entry's data: `left` bytes, then `pad` bytes of padding.
    Data { left: u64, pad: u64, keep: Keep },
    /// After the end-of-archive blocks: the rest is ignored, as Go's reader ignores it.
    End,
}

/// What becomes of an entry's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keep {
    Skip,
    Dockerfile,
    Pax,
    LongName,
    LongLink,
}

/// What a rewriting scanner ([`Scanner::rewriting`]) hands on, in order.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece {
    /// The archive as it came (decompressed), for dockerd.
    Bytes(Vec<u8>),
    /// An entry that could be the Dockerfile, taken out with the headers that named it: the
    /// caller writes it back ([`entry`]), rewritten or not.
    Dockerfile { name: String, text: String },
}

/// Streams a context through [`Scanner::feed`], then [`Scanner::finish`].
pub struct Scanner {
    input: Input,
}

/// How the body reaches the tar reader.
enum Input {
    /// The first bytes, until there are enough to say whether it is compressed.
    Start(Tar, Vec<u8>),
    Plain(Tar),
    Gzip(Box<flate2::write::MultiGzDecoder<Sink>>),
}

/// The decoder's output: the tar reader, and why it stopped.
struct Sink {
    tar: Tar,
    refused: Option<Refused>,
}

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.tar.feed(buf) {
            Ok(()) => Ok(buf.len()),
            Err(why) => {
                self.refused = Some(why);
                Err(std::io::Error::other("refused"))
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Scanner {
    /// A scanner for the Dockerfile at `dockerfile` (the build's `dockerfile` query; dockerd
    /// also tries `dockerfile` when the default `Dockerfile` is missing).
    pub fn new(dockerfile: Option<&str>) -> Scanner {
        Scanner {
            input: Input::Start(
                Tar::new(dockerfile, true, false),
                Vec::with_capacity(MAGIC_LEN),
            ),
        }
    }

    /// A scanner that also hands the archive on as [`Piece`]s (after [`Scanner::feed`] and
    /// [`Scanner::finish`], from [`Scanner::take_pieces`]): uncompressed, with every entry
    /// that could be the Dockerfile taken out. `checks`: refuse what [`Scanner::new`]
    /// refuses in the Dockerfile.
    pub fn rewriting(dockerfile: Option<&str>, checks: bool) -> Scanner {
        Scanner {
            input: Input::Start(
                Tar::new(dockerfile, checks, true),
                Vec::with_capacity(MAGIC_LEN),
            ),
        }
    }

    /// The pieces read so far (rewriting scanners only).
    pub fn take_pieces(&mut self) -> Vec<Piece> {
        let tar = match &mut self.input {
            Input::Start(t, _) | Input::Plain(t) => t,
            Input::Gzip(d) => &mut d.get_mut().tar,
        };
        tar.output.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// How many entries were checked as the Dockerfile.
    pub fn dockerfiles_checked(&self) -> usize {
        match &self.input {
            Input::Start(t, _) | Input::Plain(t) => t.found,
            Input::Gzip(d) => d.get_ref().tar.found,
        }
    }

    /// Reads the next piece of the body.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), Refused> {
        if let Input::Start(_, prefix) = &mut self.input {
            // The longest magic number decides; hold back that much first.
            prefix.extend_from_slice(chunk);
            if prefix.len() < MAGIC_LEN {
                return Ok(());
            }
            let first = std::mem::take(prefix);
            self.decide(&first)?;
            return self.feed(&first);
        }
        match &mut self.input {
            Input::Start(..) => unreachable!("decided above"),
            Input::Plain(tar) => tar.feed(chunk),
            Input::Gzip(decoder) => {
                use std::io::Write;
                decoder.write_all(chunk).map_err(|e| {
                    decoder
                        .get_mut()
                        .refused
                        .take()
                        .unwrap_or_else(|| bad(&format!("its gzip stream: {e}")))
                })
            }
        }
    }

    /// Picks the reader by the body's first bytes.
    fn decide(&mut self, first: &[u8]) -> Result<(), Refused> {
        let Input::Start(tar, _) = std::mem::replace(
            &mut self.input,
            Input::Start(Tar::new(None, false, false), Vec::new()),
        ) else {
            return Ok(());
        };
        if COMPRESSED.iter().any(|m| first.starts_with(m)) {
            return Err(
                "bzip2, xz and zstd build contexts are not accepted under the \
                        conservative policy (the gateway reads the Dockerfile in the \
                        archive): send it uncompressed or gzipped"
                    .into(),
            );
        }
        self.input = if first.starts_with(GZIP) {
            let sink = Sink { tar, refused: None };
            Input::Gzip(Box::new(flate2::write::MultiGzDecoder::new(sink)))
        } else {
            Input::Plain(tar)
        };
        Ok(())
    }

    /// The body ended: an archive cut short inside an entry is dockerd's error to report, but
    /// a Dockerfile not read whole is not accepted.
    pub fn finish(&mut self) -> Result<(), Refused> {
        if let Input::Start(_, prefix) = &mut self.input {
            let first = std::mem::take(prefix);
            if !first.is_empty() {
                self.decide(&first)?;
                self.feed(&first)?;
            }
        }
        match &mut self.input {
            Input::Start(tar, _) | Input::Plain(tar) => tar.finish(),
            Input::Gzip(decoder) => {
                decoder.try_finish().map_err(|e| {
                    decoder
                        .get_mut()
                        .refused
                        .take()
                        .unwrap_or_else(|| bad(&format!("its gzip stream: {e}")))
                })?;
                decoder.get_mut().tar.finish()
            }
        }
    }
}

/// The tar reader proper.
#[derive(Debug)]
struct Tar {
    wanted: Vec<String>,
    state: State,
    header: Vec<u8>,
    zero_blocks: usize,
    kept: Vec<u8>,
    /// The records of the last PAX header (`x`) since the last entry: Go's reader keeps only
    /// the latest set, and applies it to the next entry that is not an extension header.
    pax: Option<Pax>,
    /// The last GNU long name (`L`) since the last entry: it overrides a PAX `path`.
    gnu_name: Option<String>,
    found: usize,
    /// Refuse what [`check_dockerfile`] refuses.
    checks: bool,
    /// Rewriting: what goes on to dockerd.
    output: Option<Vec<Piece>>,
    /// Extension headers (PAX, GNU long names) and their data, held until the entry they
    /// describe shows whether it is a Dockerfile (then they go with it).
    held: Vec<u8>,
    /// The Dockerfile entry being read.
    entry_name: String,
}

impl Tar {
    fn new(dockerfile: Option<&str>, checks: bool, rewriting: bool) -> Tar {
        let name = dockerfile.filter(|d| !d.is_empty()).unwrap_or("Dockerfile");
        let mut wanted = vec![clean(name)];
        if name == "Dockerfile" {
            wanted.push("dockerfile".into());
        }
        Tar {
            wanted,
            state: State::Header,
            header: Vec::with_capacity(BLOCK),
            zero_blocks: 0,
            kept: Vec::new(),
            pax: None,
            gnu_name: None,
            found: 0,
            checks,
            output: rewriting.then(Vec::new),
            held: Vec::new(),
            entry_name: String::new(),
        }
    }

    /// Hands bytes on (rewriting only).
    fn emit(&mut self, bytes: &[u8]) {
        let Some(out) = &mut self.output else {
            return;
        };
        match out.last_mut() {
            Some(Piece::Bytes(b)) => b.extend_from_slice(bytes),
            _ => out.push(Piece::Bytes(bytes.to_vec())),
        }
    }

    /// Hands on the held extension headers: their entry is not a Dockerfile.
    fn release_held(&mut self) {
        if !self.held.is_empty() {
            let held = std::mem::take(&mut self.held);
            self.emit(&held);
        }
    }

    fn feed(&mut self, mut chunk: &[u8]) -> Result<(), Refused> {
        while !chunk.is_empty() {
            match self.state {
                State::End => {
                    self.emit(chunk);
                    return Ok(());
                }
                State::Header => {
                    let take = (BLOCK - self.header.len()).min(chunk.len());
                    self.header.extend_from_slice(&chunk[..take]);
                    chunk = &chunk[take..];
                    if self.header.len() == BLOCK {
                        let block = std::mem::take(&mut self.header);
                        self.header_block(&block)?;
                    }
                }
                State::Data {
                    mut left,
                    mut pad,
                    keep,
                } => {
                    if left > 0 {
                        let take = left.min(chunk.len() as u64) as usize;
                        self.pass(keep, &chunk[..take]);
                        if keep != Keep::Skip {
                            if self.kept.len() + take > MAX_DOCKERFILE {
                                return Err(format!(
                                    "an entry the gateway must read is larger than \
                                     {MAX_DOCKERFILE} bytes"
                                ));
                            }
                            self.kept.extend_from_slice(&chunk[..take]);
                        }
                        left -= take as u64;
                        chunk = &chunk[take..];
                    } else {
                        let take = pad.min(chunk.len() as u64) as usize;
                        self.pass(keep, &chunk[..take]);
                        pad -= take as u64;
                        chunk = &chunk[take..];
                    }
                    if left == 0 && pad == 0 {
                        self.state = State::Header;
                        self.entry_done(keep)?;
                    } else {
                        self.state = State::Data { left, pad, keep };
                    }
                }
            }
        }
        Ok(())
    }

    /// An entry's bytes, handed on, held with the headers, or (a Dockerfile's) kept apart.
    fn pass(&mut self, keep: Keep, bytes: &[u8]) {
        if self.output.is_none() {
            return;
        }
        match keep {
            Keep::Skip => self.emit(bytes),
            Keep::Pax | Keep::LongName | Keep::LongLink => self.held.extend_from_slice(bytes),
            Keep::Dockerfile => {}
        }
    }

    fn finish(&mut self) -> Result<(), Refused> {
        self.release_held();
        match self.state {
            State::Data {
                keep: Keep::Dockerfile,
                ..
            } => Err("the build context ends inside its Dockerfile".into()),
            _ => Ok(()),
        }
    }

    fn header_block(&mut self, block: &[u8]) -> Result<(), Refused> {
        if block.iter().all(|&b| b == 0) {
            self.release_held();
            self.emit(block);
            self.zero_blocks += 1;
            if self.zero_blocks == 2 {
                self.state = State::End;
            }
            return Ok(());
        }
        if self.zero_blocks > 0 {
            return Err(bad("a header after an end-of-archive block"));
        }
        check_sum(block)?;
        let mut flag = block[156];
        let own_size = number(&block[124..136])?;
        // As Go's `archive/tar` reads it (dockerd's vendored copy): extension headers carry
        // their own size and describe the next other entry; a global header (`g`) ends what
        // was pending; an entry takes the PAX `path` and `size`, then the GNU long name over
        // the path.
        let (name, mut size) = match flag {
            b'x' | b'L' | b'K' => (String::new(), own_size),
            b'g' => {
                self.pax = None;
                self.gnu_name = None;
                (String::new(), own_size)
            }
            _ => {
                let pax = self.pax.take().unwrap_or_default();
                let mut name = pax.path.unwrap_or_else(|| header_name(block));
                if let Some(long) = self.gnu_name.take() {
                    name = long;
                }
                (name, pax.size.unwrap_or(own_size))
            }
        };
        // A legacy regular file (`\0`) whose name ends in `/` is a directory.
        if flag == 0 && name.ends_with('/') {
            flag = b'5';
        }
        // Links, devices, directories and FIFOs have no data, whatever their size says.
        if matches!(flag, b'1'..=b'6') {
            size = 0;
        }
        let keep = match flag {
            b'x' => Keep::Pax,
            b'L' => Keep::LongName,
            b'K' => Keep::LongLink,
            b'g' => Keep::Skip,
            b'S' => return Err(bad("sparse entries")),
            b'1' | b'2' => {
                let cleaned = clean(&name);
                let on_path = self
                    .wanted
                    .iter()
                    .any(|w| *w == cleaned || w.starts_with(&format!("{cleaned}/")));
                if on_path {
                    return Err(format!(
                        "the build context's Dockerfile path goes through a link ({name}): \
                         the gateway checks only a Dockerfile that is a regular file"
                    ));
                }
                Keep::Skip
            }
            b'0' | 0 | b'7' if self.wanted.contains(&clean(&name)) => Keep::Dockerfile,
            _ => Keep::Skip,
        };
        if keep == Keep::Dockerfile {
            self.found += 1;
            self.entry_name = clean(&name);
        }
        if self.output.is_some() {
            match keep {
                Keep::Pax | Keep::LongName | Keep::LongLink => self.held.extend_from_slice(block),
                Keep::Dockerfile => self.held.clear(),
                Keep::Skip => {
                    self.release_held();
                    self.emit(block);
                }
            }
        }
        let pad = (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64;
        self.kept.clear();
        self.state = State::Data {
            left: size,
            pad,
            keep,
        };
        if size == 0 {
            self.state = State::Header;
            self.entry_done(keep)?;
        }
        Ok(())
    }

    fn entry_done(&mut self, keep: Keep) -> Result<(), Refused> {
        let data = std::mem::take(&mut self.kept);
        match keep {
            Keep::Skip | Keep::LongLink => Ok(()),
            Keep::LongName => {
                let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
                self.gnu_name = Some(String::from_utf8_lossy(&data[..end]).into_owned());
                Ok(())
            }
            Keep::Pax => self.pax(&data),
            Keep::Dockerfile => {
                let text = String::from_utf8_lossy(&data).into_owned();
                if self.checks {
                    check_dockerfile(&text)?;
                }
                if let Some(out) = &mut self.output {
                    out.push(Piece::Dockerfile {
                        name: std::mem::take(&mut self.entry_name),
                        text,
                    });
                }
                Ok(())
            }
        }
    }

    /// PAX records (`LEN key=value\n`): `path` and `size` change the next entry. A new set
    /// replaces the one before it.
    fn pax(&mut self, data: &[u8]) -> Result<(), Refused> {
        let mut pax = Pax::default();
        let mut rest = data;
        while !rest.is_empty() {
            let space = rest
                .iter()
                .position(|&b| b == b' ')
                .ok_or_else(|| bad("a PAX record"))?;
            let len: usize = std::str::from_utf8(&rest[..space])
                .ok()
                .and_then(|s| s.parse().ok())
                .filter(|&l| l > space && l <= rest.len())
                .ok_or_else(|| bad("a PAX record length"))?;
            let record = &rest[space + 1..len];
            let record = record.strip_suffix(b"\n").unwrap_or(record);
            let text = String::from_utf8_lossy(record);
            if let Some((key, value)) = text.split_once('=') {
                match key {
                    "path" => pax.path = Some(value.to_string()),
                    "size" => {
                        pax.size = Some(value.parse().map_err(|_| bad("a PAX size"))?);
                    }
                    k if k.starts_with("GNU.sparse") => return Err(bad("sparse entries")),
                    _ => {}
                }
            }
            rest = &rest[len..];
        }
        self.pax = Some(pax);
        Ok(())
    }
}

/// The PAX records that change the next entry.
#[derive(Debug, Default)]
struct Pax {
    path: Option<String>,
    size: Option<u64>,
}

/// What a conservative role's Dockerfile may not hold.
fn check_dockerfile(text: &str) -> Result<(), Refused> {
    if let Some(r) = dockerfile::remote_source(text) {
        return Err(format!(
            "ADD {} in the Dockerfile would make the engine fetch it from its own \
             network ({:?}); download it in the build's client and COPY it",
            r.source, r.instruction
        ));
    }
    if let Some(instruction) = dockerfile::reserved_label(text) {
        return Err(format!(
            "{instruction:?} in the Dockerfile sets one of the gateway's own labels ({}), which \
             clients cannot set",
            crate::labels::RESERVED.join(", ")
        ));
    }
    Ok(())
}

/// A regular file entry for an archive: a ustar header (a PAX `path` record before it when
/// the name is longer than ustar holds), the data, the padding.
pub fn entry(name: &str, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(3 * BLOCK + data.len());
    if name.len() > 100 {
        let record = |len: usize| format!("{len} path={name}\n");
        let mut len = record(0).len();
        while record(len).len() != len {
            len = record(len).len();
        }
        let pax = record(len);
        out.extend_from_slice(&header("PaxHeaders/Dockerfile", pax.len() as u64, b'x'));
        out.extend_from_slice(pax.as_bytes());
        pad_block(&mut out);
    }
    out.extend_from_slice(&header(name, data.len() as u64, b'0'));
    out.extend_from_slice(data);
    pad_block(&mut out);
    out
}

fn pad_block(out: &mut Vec<u8>) {
    let rem = out.len() % BLOCK;
    if rem != 0 {
        out.resize(out.len() + BLOCK - rem, 0);
    }
}

/// A ustar header block: mode 0644, owned by root, the epoch as its time.
fn header(name: &str, size: u64, flag: u8) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    let name = name.as_bytes();
    let n = name.len().min(100);
    h[..n].copy_from_slice(&name[..n]);
    let octal = |h: &mut [u8; BLOCK], at: usize, width: usize, value: u64| {
        let text = format!("{value:0w$o}", w = width - 1);
        h[at..at + width - 1].copy_from_slice(text.as_bytes());
    };
    octal(&mut h, 100, 8, 0o644);
    octal(&mut h, 108, 8, 0);
    octal(&mut h, 116, 8, 0);
    octal(&mut h, 124, 12, size);
    octal(&mut h, 136, 12, 0);
    h[156] = flag;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u64 = h.iter().map(|&b| b as u64).sum();
    let text = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(text.as_bytes());
    h
}

fn bad(what: &str) -> Refused {
    format!("the build context is not a tar archive the gateway can read ({what})")
}

/// Go accepts the unsigned or the signed sum of the header with the checksum field as spaces.
fn check_sum(block: &[u8]) -> Result<(), Refused> {
    let stored = number(&block[148..156])?;
    let (mut unsigned, mut signed) = (0u64, 0i64);
    for (i, &b) in block.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += b as u64;
        signed += (b as i8) as i64;
    }
    if stored == unsigned || stored as i64 == signed {
        Ok(())
    } else {
        Err(bad("a header checksum"))
    }
}

/// An octal field (NUL- or space-terminated), or GNU base-256 (high bit set).
fn number(field: &[u8]) -> Result<u64, Refused> {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        if field[0] & 0x40 != 0 {
            return Err(bad("a negative size"));
        }
        let mut n: u64 = (field[0] & 0x3f) as u64;
        for &b in &field[1..] {
            n = n
                .checked_mul(256)
                .and_then(|n| n.checked_add(b as u64))
                .ok_or_else(|| bad("a size"))?;
        }
        return Ok(n);
    }
    let text: String = field
        .iter()
        .map(|&b| b as char)
        .collect::<String>()
        .trim_matches(|c: char| c == ' ' || c == '\0')
        .to_string();
    if text.is_empty() {
        return Ok(0);
    }
    u64::from_str_radix(&text, 8).map_err(|_| bad("a number field"))
}

/// The name of a ustar header: `prefix/name` (the prefix only in POSIX ustar, not GNU).
fn header_name(block: &[u8]) -> String {
    let field = |r: std::ops::Range<usize>| {
        let f = &block[r];
        let end = f.iter().position(|&b| b == 0).unwrap_or(f.len());
        String::from_utf8_lossy(&f[..end]).into_owned()
    };
    let name = field(0..100);
    if &block[257..263] == b"ustar\0" {
        // `star` keeps times after a shorter prefix, and says so at the end of the block.
        let end = if &block[508..512] == b"tar\0" {
            476
        } else {
            500
        };
        let prefix = field(345..end);
        if !prefix.is_empty() {
            return format!("{prefix}/{name}");
        }
    }
    name
}

/// A path as the extraction places it under the context root: no leading `/`, `.` or empty
/// segments, `..` resolved (never above the root).
fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

#[cfg(test)]
mod tests;
