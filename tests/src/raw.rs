//! A raw Docker API client over TCP or a unix socket, for what the CLI never does: hijacks
//! without `Upgrade` (older SDKs, curl scripts), byte-exact checks of the answer head, and
//! clients that vanish mid-stream.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

/// Where a raw client connects.
#[derive(Clone, Debug)]
pub enum Target {
    Tcp(u16),
    Unix(PathBuf),
}

/// One connection to the API.
pub enum Conn {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Conn {
    pub fn connect(target: &Target) -> io::Result<Conn> {
        let conn = match target {
            Target::Tcp(port) => Conn::Tcp(TcpStream::connect(("127.0.0.1", *port))?),
            Target::Unix(path) => Conn::Unix(UnixStream::connect(path)?),
        };
        conn.set_timeout(Some(Duration::from_secs(60)))?;
        Ok(conn)
    }

    pub fn set_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Conn::Tcp(s) => s.set_read_timeout(t),
            Conn::Unix(s) => s.set_read_timeout(t),
        }
    }

    /// Half-close: no more bytes from us.
    pub fn shutdown_write(&self) -> io::Result<()> {
        match self {
            Conn::Tcp(s) => s.shutdown(Shutdown::Write),
            Conn::Unix(s) => s.shutdown(Shutdown::Write),
        }
    }

    /// Sends a request with a JSON body (or none) and extra header lines.
    pub fn send_request(
        &mut self,
        method: &str,
        path: &str,
        extra_headers: &[&str],
        body: &str,
    ) -> io::Result<()> {
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: docker\r\n");
        for h in extra_headers {
            req += h;
            req += "\r\n";
        }
        if !body.is_empty() {
            req += "Content-Type: application/json\r\n";
        }
        req += &format!("Content-Length: {}\r\n\r\n{body}", body.len());
        self.write_all(req.as_bytes())
    }

    /// Reads the status line and headers (byte by byte: what follows is the raw stream).
    pub fn read_head(&mut self) -> io::Result<Head> {
        let mut raw = Vec::new();
        let mut byte = [0u8; 1];
        while !raw.ends_with(b"\r\n\r\n") {
            // A signal to this process (a child exiting) is no answer: read again.
            let n = match self.read(&mut byte) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => other?,
            };
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "connection closed in the answer head: {:?}",
                        String::from_utf8_lossy(&raw)
                    ),
                ));
            }
            raw.push(byte[0]);
        }
        Ok(Head::parse(String::from_utf8_lossy(&raw).into_owned()))
    }

    /// Reads until EOF.
    pub fn read_all(&mut self) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        self.read_to_end(&mut out)?;
        Ok(out)
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.read(buf),
            Conn::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.write(buf),
            Conn::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// An answer's status line and headers.
#[derive(Clone, Debug)]
pub struct Head {
    pub raw: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

impl Head {
    fn parse(raw: String) -> Head {
        let mut lines = raw.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Head {
            raw,
            status,
            headers,
        }
    }

    /// A header's value (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A complete small request/answer (no hijack): status and body.
pub fn call(target: &Target, method: &str, path: &str, body: &str) -> io::Result<(u16, String)> {
    call_with(target, method, path, &[], body)
}

/// As [`call`], with extra header lines.
pub fn call_with(
    target: &Target,
    method: &str,
    path: &str,
    headers: &[&str],
    body: &str,
) -> io::Result<(u16, String)> {
    let mut c = Conn::connect(target)?;
    let mut all = headers.to_vec();
    all.push("Connection: close");
    c.send_request(method, path, &all, body)?;
    let head = c.read_head()?;
    let rest = c.read_all()?;
    let body = if head.header("transfer-encoding") == Some("chunked") {
        dechunk(&rest)
    } else {
        rest
    };
    Ok((head.status, String::from_utf8_lossy(&body).into_owned()))
}

/// Decodes a chunked body (enough for test answers).
pub fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size_field = String::from_utf8_lossy(&data[..eol]);
        let size_hex = size_field.split(';').next().unwrap_or("").trim();
        let Ok(size) = usize::from_str_radix(size_hex, 16) else {
            return out;
        };
        if size == 0 || data.len() < eol + 2 + size {
            return out;
        }
        out.extend_from_slice(&data[eol + 2..eol + 2 + size]);
        data = &data[(eol + 4 + size).min(data.len())..];
    }
}

/// Creates an exec instance; returns its ID.
pub fn exec_create(target: &Target, container: &str, cmd: &[&str], stdin: bool) -> String {
    let cmd_json = cmd
        .iter()
        .map(|a| format!("\"{}\"", a.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect::<Vec<_>>()
        .join(",");
    let body = format!(
        "{{\"AttachStdin\":{stdin},\"AttachStdout\":true,\"AttachStderr\":true,\"Cmd\":[{cmd_json}]}}"
    );
    let (status, answer) = call(
        target,
        "POST",
        &format!("/v1.41/containers/{container}/exec"),
        &body,
    )
    .expect("exec create");
    assert_eq!(status, 201, "exec create: {answer}");
    json_string_field(&answer, "Id").expect("exec Id")
}

/// Starts an exec instance and returns the connection positioned after the answer head.
pub fn exec_start(target: &Target, exec_id: &str, upgrade: bool) -> (Conn, Head) {
    let mut c = Conn::connect(target).expect("connect");
    let headers: &[&str] = if upgrade {
        &["Connection: Upgrade", "Upgrade: tcp"]
    } else {
        &[]
    };
    c.send_request(
        "POST",
        &format!("/v1.41/exec/{exec_id}/start"),
        headers,
        "{\"Detach\":false,\"Tty\":false}",
    )
    .expect("exec start");
    let head = c.read_head().expect("exec start head");
    (c, head)
}

/// The string value of `"field":"..."` in a flat JSON object.
pub fn json_string_field(json: &str, field: &str) -> Option<String> {
    let key = format!("\"{field}\":\"");
    let start = json.find(&key)? + key.len();
    let end = json[start..].find('"')? + start;
    Some(json[start..end].to_string())
}

/// Splits Docker's multiplexed stream into (stdout, stderr).
pub fn demux(mut data: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    while data.len() >= 8 {
        let len = u32::from_be_bytes([data[4], data[5], data[6], data[7]]) as usize;
        let end = (8 + len).min(data.len());
        match data[0] {
            2 => err.extend_from_slice(&data[8..end]),
            _ => out.extend_from_slice(&data[8..end]),
        }
        data = &data[end..];
    }
    (out, err)
}
