//! A real registry for the pull tests: Debian's `docker-registry` on
//! 127.0.0.1 with a per-test config and storage dir (stopped by PID on
//! drop), images pushed by skopeo, and the small servers a test puts in
//! front of it: a byte-altering proxy and a bearer-token endpoint.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;

use super::{sh, Scratch};

pub const SERVICE: &str = "patina-test-registry";
pub const ISSUER: &str = "patina-test-issuer";

/// Is Debian's registry here? A test that cannot run says so by name.
pub fn available(test: &str) -> bool {
    for tool in ["docker-registry", "skopeo", "openssl", "htpasswd"] {
        if Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .map_or(true, |s| !s.success())
        {
            eprintln!("{test}: SKIPPED: {tool} missing (imagetool/apt-packages.txt)");
            return false;
        }
    }
    true
}

#[derive(Default)]
pub struct Config {
    /// (cert.pem, key.pem) to serve TLS with.
    pub tls: Option<(PathBuf, PathBuf)>,
    pub htpasswd: Option<PathBuf>,
    /// (realm URL, cert bundle that signs tokens).
    pub token: Option<(String, PathBuf)>,
}

pub struct Registry {
    child: Child,
    pub port: u16,
    pub dir: PathBuf,
}

impl Registry {
    /// Starts the registry in `scratch/registry` and waits until it answers.
    pub fn start(scratch: &Scratch, cfg: &Config) -> Registry {
        let dir = scratch.join("registry");
        fs::create_dir_all(dir.join("storage")).unwrap();
        for _try in 0..5 {
            let port = free_port();
            let mut yml = format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.join("storage").display()
            );
            if let Some((cert, key)) = &cfg.tls {
                yml += &format!(
                    "  tls:\n    certificate: {}\n    key: {}\n",
                    cert.display(),
                    key.display()
                );
            }
            if let Some(h) = &cfg.htpasswd {
                yml += &format!(
                    "auth:\n  htpasswd:\n    realm: patina-test\n    path: {}\n",
                    h.display()
                );
            }
            if let Some((realm, bundle)) = &cfg.token {
                yml += &format!(
                    "auth:\n  token:\n    realm: {realm}\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
                    bundle.display()
                );
            }
            fs::write(dir.join("config.yml"), yml).unwrap();
            let log = fs::File::create(dir.join("registry.log")).unwrap();
            let mut child = Command::new("docker-registry")
                .args(["serve", dir.join("config.yml").to_str().unwrap()])
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("starting docker-registry");
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(30) {
                if child.try_wait().unwrap().is_some() {
                    break; // port taken meanwhile: try another
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Registry { child, port, dir };
                }
                thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!(
            "docker-registry did not start: {}",
            fs::read_to_string(dir.join("registry.log")).unwrap_or_default()
        );
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Pushes `layout:latest` as NAME:TAG with skopeo (`extra`: its dest flags).
    pub fn push(&self, layout: &Path, name_tag: &str, extra: &[&str]) {
        let src = format!("oci:{}:latest", layout.display());
        let dst = format!("docker://{}/{name_tag}", self.host());
        let mut args = vec!["copy", "--quiet"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[&src, &dst]);
        sh("skopeo", &args);
    }

    /// The registry's stored copy of a blob (to corrupt it in place).
    pub fn blob_file(&self, hex: &str) -> PathBuf {
        self.dir.join(format!(
            "storage/docker/registry/v2/blobs/sha256/{}/{hex}/data",
            &hex[..2]
        ))
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        // Our own child, by PID.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A self-signed leaf certificate for 127.0.0.1 (cert.pem, key.pem) in `dir`.
pub fn self_signed(dir: &Path, cn: &str) -> (PathBuf, PathBuf) {
    fs::create_dir_all(dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    sh(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={cn}"),
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            // A leaf, not a CA: webpki refuses CA certificates as server certificates.
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-keyout",
            key.to_str().unwrap(),
            "-out",
            cert.to_str().unwrap(),
        ],
    );
    (cert, key)
}

/// An auths file for `host` with user:password.
pub fn auth_file(path: &Path, host: &str, user: &str, password: &str) {
    let enc = STANDARD.encode(format!("{user}:{password}"));
    fs::write(
        path,
        format!(r#"{{"auths": {{"{host}": {{"auth": "{enc}"}}}}}}"#),
    )
    .unwrap();
}

// ------------------------------------------------------------------ HTTP bits

/// Reads a request or response head (through the blank line).
fn read_head(r: &mut BufReader<TcpStream>) -> Option<String> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        head.push_str(&line);
        if line == "\r\n" {
            return Some(head);
        }
    }
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

// ------------------------------------------------------------------ proxy

/// What the proxy does to the body of the blob it watches.
#[derive(Clone, Debug)]
pub enum Alter {
    Pass,
    /// Flip the byte at this body offset.
    Flip(usize),
    /// Send this many body bytes, then stall (the client is killed meanwhile).
    StallAfter(usize),
}

/// An HTTP forwarder in front of the registry, one request per connection,
/// that logs `METHOD PATH [Range]` and alters one blob's body as told.
pub struct Proxy {
    pub port: u16,
    pub log: Arc<Mutex<Vec<String>>>,
    pub alter: Arc<Mutex<(String, Alter)>>,
}

impl Proxy {
    pub fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let alter = Arc::new(Mutex::new((String::new(), Alter::Pass)));
        let (l2, a2) = (log.clone(), alter.clone());
        thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (l3, a3) = (l2.clone(), a2.clone());
                thread::spawn(move || forward(conn, upstream, &l3, &a3));
            }
        });
        Proxy { port, log, alter }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn set(&self, blob_hex: &str, alter: Alter) {
        *self.alter.lock().unwrap() = (blob_hex.to_string(), alter);
    }

    pub fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

fn forward(
    client: TcpStream,
    upstream: u16,
    log: &Mutex<Vec<String>>,
    alter: &Mutex<(String, Alter)>,
) {
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let Some(head) = read_head(&mut reader) else {
        return;
    };
    let request_line = head.lines().next().unwrap_or_default().to_string();
    let range = header(&head, "range")
        .map(|r| format!(" [{r}]"))
        .unwrap_or_default();
    log.lock().unwrap().push(format!("{request_line}{range}"));
    let rewritten: String = head
        .lines()
        .filter(|l| !l.is_empty() && !l.to_ascii_lowercase().starts_with("connection:"))
        .map(|l| format!("{l}\r\n"))
        .collect::<String>()
        + "Connection: close\r\n\r\n";
    let Ok(mut up) = TcpStream::connect(("127.0.0.1", upstream)) else {
        return;
    };
    if up.write_all(rewritten.as_bytes()).is_err() {
        return;
    }
    let (watch, how) = alter.lock().unwrap().clone();
    let watched = !watch.is_empty() && request_line.contains(&format!("/blobs/sha256:{watch}"));
    let mut up_reader = BufReader::new(up.try_clone().unwrap());
    let Some(resp_head) = read_head(&mut up_reader) else {
        return;
    };
    let mut client = client;
    if client.write_all(resp_head.as_bytes()).is_err() {
        return;
    }
    let mut sent = 0usize;
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match up_reader.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let chunk = &mut buf[..n];
        if watched {
            match how {
                Alter::Flip(at) if at >= sent && at < sent + n => chunk[at - sent] ^= 0xff,
                Alter::StallAfter(limit) if sent + n >= limit => {
                    let _ = client.write_all(&chunk[..limit - sent]);
                    let _ = client.flush();
                    // Hold the connection until the client goes away.
                    thread::sleep(Duration::from_secs(120));
                    return;
                }
                _ => {}
            }
        }
        if client.write_all(chunk).is_err() {
            break;
        }
        sent += n;
    }
    let _ = client.shutdown(Shutdown::Both);
}

// ------------------------------------------------------------------ tokens

/// token.md's endpoint: grants what the scope asks to `user:password`
/// (Basic), refuses anyone else; tokens are RS256 JWTs signed by `key`
/// with the certificate in `x5c`, as the registry's token auth checks them.
pub struct TokenServer {
    pub port: u16,
    /// `scope=... service=... authorized=bool` per request.
    pub log: Arc<Mutex<Vec<String>>>,
}

impl TokenServer {
    pub fn start(cert: &Path, key: &Path, user: &str, password: &str) -> TokenServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let der_path = cert.with_extension("der");
        sh(
            "openssl",
            &[
                "x509",
                "-in",
                cert.to_str().unwrap(),
                "-outform",
                "DER",
                "-out",
                der_path.to_str().unwrap(),
            ],
        );
        let x5c = STANDARD.encode(fs::read(&der_path).unwrap());
        let key = key.to_path_buf();
        let expected = format!("Basic {}", STANDARD.encode(format!("{user}:{password}")));
        let l2 = log.clone();
        thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let Some(head) = read_head(&mut reader) else {
                    continue;
                };
                let target = head
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_string();
                let query = target.split_once('?').map(|(_, q)| q).unwrap_or_default();
                let params: Vec<(String, String)> = query
                    .split('&')
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.to_string(), percent_decode(v)))
                    .collect();
                let scopes: Vec<&str> = params
                    .iter()
                    .filter(|(k, _)| k == "scope")
                    .map(|(_, v)| v.as_str())
                    .collect();
                let service = params
                    .iter()
                    .find(|(k, _)| k == "service")
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default();
                let authorized = header(&head, "authorization") == Some(expected.as_str());
                l2.lock().unwrap().push(format!(
                    "scope={} service={service} authorized={authorized}",
                    scopes.join(" ")
                ));
                let mut conn = conn;
                let response = if authorized {
                    let token = jwt(&x5c, &key, &scopes);
                    let body = format!(r#"{{"token":"{token}","expires_in":300}}"#);
                    format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
                } else {
                    "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        .to_string()
                };
                let _ = conn.write_all(response.as_bytes());
            }
        });
        TokenServer { port, log }
    }

    pub fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `repository:NAME:a,b` scopes -> the token's `access` claim.
fn jwt(x5c: &str, key: &Path, scopes: &[&str]) -> String {
    let access: Vec<serde_json::Value> = scopes
        .iter()
        .filter_map(|s| {
            let mut parts = s.splitn(3, ':');
            let (t, n, a) = (parts.next()?, parts.next()?, parts.next()?);
            Some(serde_json::json!({"type": t, "name": n, "actions": a.split(',').collect::<Vec<_>>()}))
        })
        .collect();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "x5c": [x5c]});
    let claims = serde_json::json!({
        "iss": ISSUER, "sub": "tester", "aud": SERVICE,
        "exp": now + 300, "nbf": now - 10, "iat": now,
        "jti": format!("{now}-{}", rand_id()), "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign", key.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(signing_input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "openssl dgst -sign failed");
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(out.stdout))
}

fn rand_id() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}
