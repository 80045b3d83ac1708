use super::*;

/// One ustar header block for `name` of `size` bytes and type `flag`.
fn header(name: &str, size: usize, flag: u8, link: &str) -> Vec<u8> {
    let mut h = vec![0u8; BLOCK];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..107].copy_from_slice(b"0000644");
    h[108..115].copy_from_slice(b"0000000");
    h[116..123].copy_from_slice(b"0000000");
    h[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
    h[136..147].copy_from_slice(b"00000000000");
    h[156] = flag;
    h[157..157 + link.len()].copy_from_slice(link.as_bytes());
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    h
}

fn entry(name: &str, data: &[u8]) -> Vec<u8> {
    let mut out = header(name, data.len(), b'0', "");
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(BLOCK) * BLOCK, 0);
    out
}

fn archive(entries: &[Vec<u8>]) -> Vec<u8> {
    let mut out: Vec<u8> = entries.concat();
    out.extend_from_slice(&[0u8; BLOCK * 2]);
    out
}

/// Feeds `tar` in pieces of `step` bytes.
fn scan(tar: &[u8], dockerfile: Option<&str>, step: usize) -> Result<usize, Refused> {
    let mut s = Scanner::new(dockerfile);
    for piece in tar.chunks(step) {
        s.feed(piece)?;
    }
    s.finish()?;
    Ok(s.dockerfiles_checked())
}

const EVIL: &[u8] = b"FROM busybox\nADD http://127.0.0.1:9/secret /s\n";
const GOOD: &[u8] = b"FROM busybox\nCOPY blob /\n";

#[test]
fn the_dockerfile_is_found_and_checked_whatever_the_chunking() {
    let blob = vec![b'x'; 3000];
    let good = archive(&[entry("blob", &blob), entry("Dockerfile", GOOD)]);
    let evil = archive(&[entry("blob", &blob), entry("./Dockerfile", EVIL)]);
    for step in [1, 7, 511, 512, 513, 4096, 1 << 20] {
        assert_eq!(scan(&good, None, step), Ok(1), "step {step}");
        let err = scan(&evil, None, step).unwrap_err();
        assert!(err.contains("ADD http://127.0.0.1:9/secret"), "{err}");
    }
}

#[test]
fn every_name_dockerd_could_open_is_checked() {
    // A second entry of the same name replaces the first on extraction.
    let twice = archive(&[entry("Dockerfile", GOOD), entry("Dockerfile", EVIL)]);
    assert!(scan(&twice, None, 100).is_err());
    // The lowercase fallback, a custom path, a path with dot segments.
    assert!(scan(&archive(&[entry("dockerfile", EVIL)]), None, 100).is_err());
    let custom = archive(&[entry("sub/Build.df", EVIL), entry("Dockerfile", GOOD)]);
    assert!(scan(&custom, Some("sub/../sub/Build.df"), 100).is_err());
    assert_eq!(scan(&custom, None, 100), Ok(1));
    // A link as the Dockerfile, or as a directory on its path.
    let link = archive(&[entry("evil", EVIL), header("Dockerfile", 0, b'2', "evil")]);
    assert!(scan(&link, None, 100).unwrap_err().contains("link"));
    let dir = archive(&[
        header("sub", 0, b'2', "other"),
        entry("other/Dockerfile", EVIL),
    ]);
    assert!(scan(&dir, Some("sub/Dockerfile"), 100).is_err());
    let hard = archive(&[entry("evil", EVIL), header("Dockerfile", 0, b'1', "evil")]);
    assert!(scan(&hard, None, 100).is_err());
}

#[test]
fn long_names_and_pax_records_are_followed() {
    let long = format!("{}/Dockerfile", "d".repeat(120));
    let mut gnu = header("././@LongLink", long.len() + 1, b'L', "");
    gnu.extend_from_slice(long.as_bytes());
    gnu.push(0);
    gnu.resize(gnu.len().div_ceil(BLOCK) * BLOCK, 0);
    let tar = archive(&[gnu, entry("short", EVIL)]);
    assert!(scan(&tar, Some(&long), 64).is_err());
    // A PAX path names the next entry; a PAX size overrides the header's.
    let record = "path=Dockerfile\n";
    let rec = format!("{} {record}", record.len() + 3);
    let mut pax = header("PaxHeaders/x", rec.len(), b'x', "");
    pax.extend_from_slice(rec.as_bytes());
    pax.resize(pax.len().div_ceil(BLOCK) * BLOCK, 0);
    let tar = archive(&[pax, entry("innocent", EVIL)]);
    assert!(scan(&tar, None, 64).is_err());
}

#[test]
fn what_the_gateway_could_read_differently_is_refused() {
    assert!(scan(&[0x42, 0x5a, 0x68, 0, 0], None, 10)
        .unwrap_err()
        .contains("bzip2"));
    assert!(scan(&[0x1f, 0x8b, 0x08, 0, 0], None, 10)
        .unwrap_err()
        .contains("gzip"));
    let mut broken = archive(&[entry("Dockerfile", GOOD)]);
    broken[0] ^= 1;
    assert!(scan(&broken, None, 100).unwrap_err().contains("checksum"));
    let sparse = archive(&[header("Dockerfile", 0, b'S', "")]);
    assert!(scan(&sparse, None, 100).is_err());
    // Cut inside the Dockerfile.
    let cut = &archive(&[entry("Dockerfile", GOOD)])[..520];
    assert!(scan(cut, None, 100).is_err());
    // After the end of the archive, nothing more is read, as Go's reader does.
    let mut after = archive(&[entry("Dockerfile", GOOD)]);
    after.extend_from_slice(&entry("Dockerfile", EVIL));
    assert_eq!(scan(&after, None, 100), Ok(1));
}

#[test]
fn gzip_contexts_are_read_through_the_decoder() {
    use std::io::Write;
    let gz = |tar: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(tar).unwrap();
        e.finish().unwrap()
    };
    let blob = vec![b'x'; 100_000];
    let good = gz(&archive(&[entry("blob", &blob), entry("Dockerfile", GOOD)]));
    let evil = gz(&archive(&[entry("blob", &blob), entry("Dockerfile", EVIL)]));
    for step in [1, 2, 5, 100, 4096] {
        assert_eq!(scan(&good, None, step), Ok(1), "step {step}");
        assert!(scan(&evil, None, step).unwrap_err().contains("ADD http://"));
    }
    // Two members, the Dockerfile in the second, as Go's multistream reader reads them.
    let tar = archive(&[entry("blob", &blob), entry("Dockerfile", EVIL)]);
    let (a, b) = tar.split_at(1024);
    let two = [gz(a), gz(b)].concat();
    assert!(scan(&two, None, 333).is_err());
}

/// Runs a rewriting scanner over `tar` and writes each Dockerfile back through `rewrite`.
fn rewrite(tar: &[u8], step: usize, rewrite: impl Fn(&str) -> String) -> (Vec<u8>, Vec<String>) {
    let mut s = Scanner::rewriting(None, true);
    let (mut out, mut names) = (Vec::new(), Vec::new());
    let mut take = |s: &mut Scanner| {
        for piece in s.take_pieces() {
            match piece {
                Piece::Bytes(b) => out.extend_from_slice(&b),
                Piece::Dockerfile { name, text } => {
                    out.extend_from_slice(&super::entry(&name, rewrite(&text).as_bytes()));
                    names.push(name);
                }
            }
        }
    };
    for piece in tar.chunks(step) {
        s.feed(piece).unwrap();
        take(&mut s);
    }
    s.finish().unwrap();
    take(&mut s);
    (out, names)
}

#[test]
fn a_rewriting_scanner_replaces_the_dockerfile_and_hands_on_the_rest() {
    let blob = vec![b'y'; 1500];
    let long = format!("{}/Dockerfile", "d".repeat(120));
    let body = format!(" path={long}\n");
    let len = body.len() + 3;
    let pax_record = format!("{len}{body}");
    assert_eq!(pax_record.len(), len);
    let tar = archive(&[
        entry("blob", &blob),
        header("PaxHeaders/x", pax_record.len(), b'x', ""),
        {
            let mut d = pax_record.clone().into_bytes();
            d.resize(d.len().div_ceil(BLOCK) * BLOCK, 0);
            d
        },
        entry("ignored-name", GOOD),
        entry("Dockerfile", GOOD),
        entry("after", b"z"),
    ]);
    let upper = |t: &str| t.to_uppercase();
    for step in [1, 100, 512, 4096, 1 << 20] {
        let (out, names) = rewrite(&tar, step, upper);
        assert_eq!(names, ["Dockerfile"], "step {step}");
        // The output is an archive whose Dockerfile is the rewritten one.
        let (again, _) = rewrite(&out, 512, |t| {
            assert_eq!(t, "FROM BUSYBOX\nCOPY BLOB /\n");
            t.to_string()
        });
        assert_eq!(again, out);
        // Everything else is as it was: the blob entry first, the long-named entry and the
        // one after the Dockerfile too.
        assert_eq!(&out[..BLOCK + 1536], &tar[..BLOCK + 1536]);
        let tail = entry("after", b"z");
        let end = out.len() - 2 * BLOCK;
        assert_eq!(&out[end - tail.len()..end], &tail[..]);
    }
    // The long name itself: PAX path, read back as one Dockerfile entry.
    let tar = archive(&[entry("blob", &blob), super::entry(&long, GOOD)]);
    let mut s = Scanner::rewriting(Some(&long), true);
    s.feed(&tar).unwrap();
    s.finish().unwrap();
    let pieces = s.take_pieces();
    assert!(
        pieces
            .iter()
            .any(|p| matches!(p, Piece::Dockerfile { name, .. } if *name == long)),
        "{pieces:?}"
    );
}

#[test]
fn a_rewriting_scanner_reads_gzip_and_hands_on_plain_tar() {
    use std::io::Write;
    let tar = archive(&[entry("Dockerfile", GOOD), entry("f", b"1")]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();
    let (out, names) = rewrite(&gz, 64, |t| t.to_string());
    assert_eq!(names, ["Dockerfile"]);
    assert_eq!(out, tar);
}

#[test]
fn the_gateways_labels_in_a_dockerfile_are_refused() {
    let tar = archive(&[entry(
        "Dockerfile",
        b"FROM busybox\nLABEL dockgate.tenant=beta\n",
    )]);
    let err = scan(&tar, None, 512).unwrap_err();
    assert!(err.contains("the gateway's own labels"), "{err}");
}

/// A PAX header (`flag` `x` or `g`) holding `records`, with its data.
fn pax(records: &[(&str, &str)], flag: u8) -> Vec<u8> {
    let mut data = String::new();
    for (k, v) in records {
        let body = format!(" {k}={v}\n");
        let mut len = body.len() + 1;
        while format!("{len}{body}").len() != len {
            len += 1;
        }
        data.push_str(&format!("{len}{body}"));
    }
    let mut out = header("PaxHeaders/x", data.len(), flag, "");
    out.extend_from_slice(data.as_bytes());
    out.resize(out.len().div_ceil(BLOCK) * BLOCK, 0);
    out
}

/// An entry whose header says `size` but whose data is `data` (as an extension sets it).
fn entry_sized(name: &str, size: usize, flag: u8, data: &[u8]) -> Vec<u8> {
    let mut out = header(name, size, flag, "");
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(BLOCK) * BLOCK, 0);
    out
}

/// Archives in which Go's reader (dockerd's) finds the Dockerfile where a reader that gets
/// the extension headers or the data sizes slightly wrong would not: each must be checked.
#[test]
fn the_dockerfile_is_found_where_gos_reader_finds_it() {
    let evil_len = EVIL.len();
    let cases: Vec<(&str, Vec<u8>, Option<String>)> = vec![
        (
            "a later PAX header replaces the earlier one's path",
            archive(&[
                pax(&[("path", "innocent")], b'x'),
                pax(&[("mtime", "1")], b'x'),
                entry("Dockerfile", EVIL),
            ]),
            None,
        ),
        (
            "a global header ends a pending PAX path",
            archive(&[
                pax(&[("path", "innocent")], b'x'),
                pax(&[("comment", "x")], b'g'),
                entry("Dockerfile", EVIL),
            ]),
            None,
        ),
        (
            "a long link does not take the PAX path",
            archive(&[
                pax(&[("path", "Dockerfile")], b'x'),
                entry_sized("././@LongLink", 4, b'K', b"dest"),
                entry("foo", EVIL),
            ]),
            None,
        ),
        (
            "a PAX size is the entry's, not the long name's",
            archive(&[
                pax(&[("size", &evil_len.to_string())], b'x'),
                entry_sized("././@LongLink", 10, b'L', b"Dockerfile"),
                entry_sized("foo", 0, b'0', EVIL),
            ]),
            None,
        ),
        (
            "a directory's size says nothing",
            archive(&[
                entry_sized("dir/", 512, b'5', &[]),
                entry("Dockerfile", EVIL),
            ]),
            None,
        ),
        (
            "a legacy file named with a slash is a directory",
            archive(&[
                entry_sized("Dockerfile/", 512, 0, &[]),
                entry("Dockerfile", EVIL),
            ]),
            None,
        ),
        (
            "a star header's prefix is shorter",
            {
                let mut h = header("Dockerfile", evil_len, b'0', "");
                h[345..476].copy_from_slice(&[b'a'; 131]);
                h[476..481].copy_from_slice(b"12345");
                h[508..512].copy_from_slice(b"tar\0");
                h[148..156].copy_from_slice(b"        ");
                let sum: u32 = h.iter().map(|&b| b as u32).sum();
                h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
                let mut e = h;
                e.extend_from_slice(EVIL);
                e.resize(e.len().div_ceil(BLOCK) * BLOCK, 0);
                archive(&[e])
            },
            Some(format!("{}/Dockerfile", "a".repeat(131))),
        ),
    ];
    for (what, tar, dockerfile) in &cases {
        let err = scan(tar, dockerfile.as_deref(), 512).err();
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("ADD http://127.0.0.1:9/secret")),
            "{what}: {err:?}"
        );
    }
}
