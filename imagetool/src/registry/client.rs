//! One registry connection: TLS settings, the scheme (https, or http for a
//! loopback or `--tls-verify=false` registry that does not speak TLS), and
//! authentication retried once on a 401 (distribution's token.md).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use ureq::http::Response;
use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};
use ureq::{Agent, Body};

use super::auth::{self, Challenge, Credentials};
use super::reference::Reference;

/// A stalled registry fails the pull rather than hanging it.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// The first request, which also finds out whether the registry speaks TLS:
/// a plain-HTTP server that waits for a request line never answers a TLS
/// hello, and the fallback should not wait a full read timeout for it.
const PING_TIMEOUT: Duration = Duration::from_secs(10);
/// Error bodies and token answers are small.
const SMALL_BODY: u64 = 1 << 20;

pub struct ClientOptions {
    pub tls_verify: bool,
    pub cert_dir: Option<PathBuf>,
    pub authfile: Option<PathBuf>,
    pub creds: Option<Credentials>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            tls_verify: true,
            cert_dir: None,
            authfile: None,
            creds: None,
        }
    }
}

pub struct Client {
    agent: Agent,
    /// `scheme://host[:port]`.
    base: String,
    reference: Reference,
    creds: Option<Credentials>,
    /// The `Authorization` value that last worked, shared by the download threads.
    authorization: Mutex<Option<String>>,
}

impl Client {
    pub fn connect(reference: &Reference, opts: &ClientOptions) -> Result<Arc<Self>> {
        install_crypto_provider();
        let creds = match &opts.creds {
            Some(c) => Some(c.clone()),
            None => auth::lookup(&reference.registry, opts.authfile.as_deref())?,
        };
        let agent: Agent = Agent::config_builder()
            .http_status_as_error(false)
            .tls_config(tls_config(reference, opts)?)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_per_read(Some(READ_TIMEOUT))
            // A redirect keeps the Authorization header only on the same
            // host (not to a blob store elsewhere, not down to http).
            .redirect_auth_headers(ureq::config::RedirectAuthHeaders::SameHost)
            .user_agent(concat!("patina-imagetool/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        let host = reference.api_host();
        let mut client = Self {
            agent,
            base: format!("https://{host}"),
            reference: reference.clone(),
            creds,
            authorization: Mutex::new(None),
        };
        if let Err(tls_err) = client.ping() {
            // docker and podman reach loopback registries (and any with
            // --tls-verify=false) over plain HTTP when TLS fails; a TLS
            // server does not answer plain HTTP, so certificate errors stay.
            if !reference.is_loopback() && opts.tls_verify {
                return Err(tls_err);
            }
            client.base = format!("http://{host}");
            if client.ping().is_err() {
                return Err(tls_err);
            }
        }
        Ok(Arc::new(client))
    }

    /// `GET /v2/`: reachable and speaking the distribution API (200 or 401).
    fn ping(&self) -> Result<()> {
        let url = format!("{}/v2/", self.base);
        let resp = self
            .agent
            .get(&url)
            .config()
            .timeout_global(Some(PING_TIMEOUT))
            .build()
            .call()
            .map_err(|e| match e {
                ureq::Error::Timeout(_) => anyhow!(
                    "registry {}: no answer to GET /v2/ within {} s",
                    self.reference.registry,
                    PING_TIMEOUT.as_secs()
                ),
                e => anyhow!("registry {}: {}", self.reference.registry, http_error(&e)),
            })?;
        match resp.status().as_u16() {
            200 | 401 => Ok(()),
            s => bail!(
                "registry {}: GET /v2/ answered {s}",
                self.reference.registry
            ),
        }
    }

    pub fn registry(&self) -> &str {
        &self.reference.registry
    }

    /// GET `/v2/<repo>/<path>`, authenticating once if the registry asks.
    pub fn get(&self, path: &str, headers: &[(&str, String)]) -> Result<Response<Body>> {
        let url = format!("{}/v2/{}/{path}", self.base, self.reference.repository);
        let mut authenticated = false;
        loop {
            let mut req = self.agent.get(&url);
            for (k, v) in headers {
                req = req.header(*k, v);
            }
            if let Some(a) = self.authorization.lock().expect("auth lock").clone() {
                req = req.header("Authorization", a);
            }
            let resp = req.call().map_err(|e| {
                anyhow!(
                    "registry {}: GET {path}: {}",
                    self.registry(),
                    http_error(&e)
                )
            })?;
            if resp.status() != 401 || authenticated {
                return Ok(resp);
            }
            let challenge = resp
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| anyhow!("registry {}: 401 without a challenge", self.registry()))?
                .to_string();
            self.authenticate(&challenge)?;
            authenticated = true;
        }
    }

    fn authenticate(&self, challenge: &str) -> Result<()> {
        let header = match auth::parse_challenge(challenge)
            .with_context(|| format!("registry {}", self.registry()))?
        {
            Challenge::Basic => match &self.creds {
                Some(c) => c.basic_header(),
                None => bail!(
                    "registry {}: authentication required and no credentials for it \
                     (auth files: {}; or --creds)",
                    self.registry(),
                    auth_file_list()
                ),
            },
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => format!("Bearer {}", self.fetch_token(&realm, service, scope)?),
        };
        *self.authorization.lock().expect("auth lock") = Some(header);
        Ok(())
    }

    /// token.md: GET realm?service=..&scope=repository:NAME:pull, with Basic
    /// credentials when there are some (anonymous tokens otherwise).
    fn fetch_token(
        &self,
        realm: &str,
        service: Option<String>,
        scope: Option<String>,
    ) -> Result<String> {
        if self.creds.is_some()
            && self.base.starts_with("https://")
            && !realm.starts_with("https://")
        {
            // Credentials the user gave for a TLS registry must not cross
            // the network in clear because the registry (or whoever
            // answered for it) named a plain-HTTP token endpoint.
            bail!(
                "registry {}: token endpoint {realm} is not HTTPS: not sending credentials to it",
                self.registry()
            );
        }
        let scope =
            scope.unwrap_or_else(|| format!("repository:{}:pull", self.reference.repository));
        let mut url = format!(
            "{realm}{}scope={}",
            if realm.contains('?') { '&' } else { '?' },
            encode(&scope)
        );
        if let Some(s) = service {
            url.push_str(&format!("&service={}", encode(&s)));
        }
        let mut req = self.agent.get(&url);
        if let Some(c) = &self.creds {
            req = req.header("Authorization", c.basic_header());
        }
        let mut resp = req
            .call()
            .map_err(|e| anyhow!("token endpoint {realm}: {}", http_error(&e)))?;
        let status = resp.status().as_u16();
        let body = read_small(&mut resp);
        if status != 200 {
            bail!(
                "token endpoint {realm}: answered {status}{}",
                if self.creds.is_none() {
                    " (no credentials were sent)"
                } else {
                    ""
                }
            );
        }
        let doc: serde_json::Value = serde_json::from_str(&body)
            .map_err(|e| anyhow!("token endpoint {realm}: answer is not JSON: {e}"))?;
        doc.get("token")
            .or_else(|| doc.get("access_token"))
            .and_then(|t| t.as_str())
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .ok_or_else(|| anyhow!("token endpoint {realm}: answer holds no token"))
    }
}

/// The registry's own words for a failed request: `errors[0].code: message`.
pub fn describe_failure(resp: &mut Response<Body>) -> String {
    let status = resp.status().as_u16();
    let body = read_small(resp);
    let detail = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            let e = v.get("errors")?.get(0)?;
            Some(format!(
                "{}: {}",
                e.get("code")?.as_str()?,
                e.get("message").and_then(|m| m.as_str()).unwrap_or("")
            ))
        });
    match detail {
        Some(d) => format!("{status} ({d})"),
        None => format!("{status}"),
    }
}

fn read_small(resp: &mut Response<Body>) -> String {
    resp.body_mut()
        .with_config()
        .limit(SMALL_BODY)
        .read_to_string()
        .unwrap_or_default()
}

/// ureq's message; a certificate refusal says what would fix it.
fn http_error(e: &ureq::Error) -> String {
    let msg = match e {
        ureq::Error::Io(io) => format!("{io}"),
        other => format!("{other}"),
    };
    if msg.contains("certificate") {
        format!("{msg} (--cert-dir DIR with the registry's CA as *.crt, or --tls-verify=false)")
    } else {
        msg
    }
}

fn auth_file_list() -> String {
    auth::auth_files(None)
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Percent-encodes a query value (RFC 3986 unreserved characters pass).
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[allow(deprecated)]
fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // ring rather than aws-lc-rs: no C/cmake toolchain in the build and a
        // smaller binary; rustls deprecates it only for lacking post-quantum
        // key exchange. Fails only if a provider was installed first.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// System CA bundles, first found wins (Debian's first).
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

/// Roots: the system bundle (or `$SSL_CERT_FILE`) plus the `*.crt` files of
/// the cert dir; a `*.cert`/`*.key` pair there is the client certificate.
/// The cert dir is `--cert-dir`, else containers-certs.d(5)'s
/// `/etc/containers/certs.d/HOST:PORT` and docker's `/etc/docker/certs.d/HOST:PORT`.
fn tls_config(reference: &Reference, opts: &ClientOptions) -> Result<TlsConfig> {
    let builder = TlsConfig::builder();
    if !opts.tls_verify {
        return Ok(builder.disable_verification(true).build());
    }
    let mut roots: Vec<Certificate<'static>> = Vec::new();
    let bundle = std::env::var_os("SSL_CERT_FILE")
        .map(PathBuf::from)
        .or_else(|| {
            SYSTEM_BUNDLES
                .iter()
                .map(PathBuf::from)
                .find(|p| p.exists())
        });
    if let Some(b) = &bundle {
        roots.extend(read_pem(b)?.0);
    }
    let dirs: Vec<PathBuf> = match &opts.cert_dir {
        Some(d) => vec![d.clone()],
        None => ["/etc/containers/certs.d", "/etc/docker/certs.d"]
            .iter()
            .map(|d| Path::new(d).join(&reference.registry))
            .filter(|d| d.is_dir())
            .collect(),
    };
    let mut client_cert = None;
    for dir in &dirs {
        let (certs, cc) = read_cert_dir(dir)?;
        roots.extend(certs);
        client_cert = client_cert.or(cc);
    }
    if roots.is_empty() {
        bail!(
            "no CA certificates: no system bundle ({}) and nothing in --cert-dir",
            SYSTEM_BUNDLES.join(", ")
        );
    }
    Ok(builder
        .root_certs(RootCerts::new_with_certs(&roots))
        .client_cert(client_cert)
        .build())
}

type CertDir = (Vec<Certificate<'static>>, Option<ClientCert>);

fn read_cert_dir(dir: &Path) -> Result<CertDir> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("--cert-dir {}", dir.display()))?;
    let mut roots = Vec::new();
    let mut client = None;
    for e in entries {
        let path = e?.path();
        match path.extension().and_then(|x| x.to_str()) {
            Some("crt") => roots.extend(read_pem(&path)?.0),
            Some("cert") => {
                let key_path = path.with_extension("key");
                let chain = read_pem(&path)?.0;
                let key = read_pem(&key_path)?.1.ok_or_else(|| {
                    anyhow!(
                        "{}: no private key for {}",
                        key_path.display(),
                        path.display()
                    )
                })?;
                client = Some(ClientCert::new_with_certs(&chain, key));
            }
            _ => {}
        }
    }
    Ok((roots, client))
}

fn read_pem(path: &Path) -> Result<(Vec<Certificate<'static>>, Option<PrivateKey<'static>>)> {
    let data = std::fs::read(path).with_context(|| format!("{}", path.display()))?;
    let mut certs = Vec::new();
    let mut key = None;
    for item in ureq::tls::parse_pem(&data) {
        match item.with_context(|| format!("{}: bad PEM", path.display()))? {
            PemItem::Certificate(c) => certs.push(c),
            PemItem::PrivateKey(k) => key = Some(k),
            _ => {}
        }
    }
    Ok((certs, key))
}
