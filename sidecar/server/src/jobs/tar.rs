//! The one kind of archive the gateway writes into a container: symlinks (ustar).

/// A tar of symlinks `(path, target)`; paths are relative to the archive's root.
pub fn symlinks(links: &[(String, String)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (path, target) in links {
        let mut h = [0u8; 512];
        put(&mut h[0..100], path.as_bytes());
        put(&mut h[100..108], b"0000777");
        put(&mut h[108..116], b"0000000");
        put(&mut h[116..124], b"0000000");
        put(&mut h[124..136], b"00000000000");
        put(&mut h[136..148], b"00000000000");
        h[156] = b'2';
        put(&mut h[157..257], target.as_bytes());
        put(&mut h[257..263], b"ustar\0");
        put(&mut h[263..265], b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        put(&mut h[148..156], format!("{sum:06o}\0 ").as_bytes());
        out.extend_from_slice(&h);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

fn put(field: &mut [u8], value: &[u8]) {
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value[..n]);
}

/// Whether a path and a target fit ustar's fields.
pub fn fits(path: &str, target: &str) -> bool {
    path.len() < 100 && target.len() < 100
}

#[cfg(test)]
mod tests {
    #[test]
    fn tar_reads_the_symlinks_back() {
        let bytes = super::symlinks(&[
            (
                "var/run/docker.sock".into(),
                "/run/dockgate/docker.sock".into(),
            ),
            ("src".into(), "/.dockgate/v/x".into()),
        ]);
        let dir = std::env::temp_dir().join(format!("dockgate-tar-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut child = std::process::Command::new("tar")
            .args(["-tvf", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(&bytes).unwrap();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success());
        assert!(
            text.contains("var/run/docker.sock -> /run/dockgate/docker.sock"),
            "{text}"
        );
        assert!(text.contains("src -> /.dockgate/v/x"), "{text}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
