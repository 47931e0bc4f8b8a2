//! TLS termination through the real gateway binary: certificates made with
//! the openssl CLI, a TLS client (OpenSSL through Pingora's re-export), a
//! real TypeScript SDK client over HTTPS, certificate rotation under load
//! with SIGHUP, a corrupt or mismatched key that keeps the old pair, mTLS
//! (no certificate, a foreign CA, a valid one mapped to the principal), and
//! the PROXY protocol in front of TLS.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use pingora::tls::ssl::{SslConnector, SslFiletype, SslMethod, SslStream, SslVersion};

const LIST: &[u8] = br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;

// ---------------------------------------------------------------- PKI

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl CLI (scripts/deps.sh installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `openssl req` with a new P-256 key in `name.key`, output in `out`,
/// plus `extra` arguments.
fn new_key_req(dir: &Path, name: &str, out: &str, subj: &str, extra: &[&str]) {
    let key = format!("{name}.key");
    let mut args = vec![
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        &key,
        "-out",
        out,
        "-subj",
        subj,
    ];
    args.extend_from_slice(extra);
    openssl(dir, &args);
}

/// A self-signed CA `name.pem`/`name.key` in `dir`.
fn make_ca(dir: &Path, name: &str) {
    new_key_req(
        dir,
        name,
        &format!("{name}.pem"),
        &format!("/CN={name}"),
        &[
            "-x509",
            "-days",
            "2",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
}

/// A certificate `name.pem`/`name.key` signed by `ca`, with a given serial.
fn make_cert(dir: &Path, ca: &str, name: &str, subj: &str, ext: &str, serial: u32) {
    new_key_req(dir, name, &format!("{name}.csr"), subj, &[]);
    std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-set_serial",
            &serial.to_string(),
            "-days",
            "2",
            "-out",
            &format!("{name}.pem"),
            "-extfile",
            &format!("{name}.ext"),
        ],
    );
}

const SERVER_EXT: &str = "basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n";
const CLIENT_EXT: &str = "basicConstraints=CA:FALSE\nsubjectAltName=URI:spiffe://acme/agent/7\nextendedKeyUsage=clientAuth\n";

/// Root CA → intermediate → server certificates `srv{serial}` (full chain
/// files `srv{serial}.chain`), a client CA with a client certificate, and a
/// foreign CA with a client certificate.
fn pki(dir: &Path, serials: &[u32]) {
    make_ca(dir, "root");
    make_cert(
        dir,
        "root",
        "inter",
        "/CN=intermediate",
        "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n",
        2,
    );
    for s in serials {
        let name = format!("srv{s}");
        make_cert(dir, "inter", &name, "/CN=localhost", SERVER_EXT, *s);
        let chain = [
            std::fs::read(dir.join(format!("{name}.pem"))).unwrap(),
            std::fs::read(dir.join("inter.pem")).unwrap(),
        ]
        .concat();
        std::fs::write(dir.join(format!("{name}.chain")), chain).unwrap();
    }
    make_ca(dir, "clientca");
    make_cert(
        dir,
        "clientca",
        "agent",
        "/CN=agent-7/O=acme",
        CLIENT_EXT,
        77,
    );
    make_cert(
        dir,
        "clientca",
        "stranger",
        "/CN=stranger/O=other",
        CLIENT_EXT,
        78,
    );
    make_ca(dir, "foreign");
    make_cert(
        dir,
        "foreign",
        "forged",
        "/CN=agent-7/O=acme",
        CLIENT_EXT,
        79,
    );
}

/// Puts `srv{serial}` in place as the live cert/key files (rename: no torn file).
fn install(dir: &Path, serial: u32) {
    for (from, to) in [("chain", "live.pem"), ("key", "live.key")] {
        let tmp = dir.join(format!("{to}.tmp"));
        std::fs::copy(dir.join(format!("srv{serial}.{from}")), &tmp).unwrap();
        std::fs::rename(&tmp, dir.join(to)).unwrap();
    }
}

// ---------------------------------------------------------------- client

struct Tls<'a> {
    ca: PathBuf,
    client: Option<(&'a str, &'a Path)>,
    alpn: &'a [u8],
    max_version: Option<SslVersion>,
}

impl<'a> Tls<'a> {
    fn new(dir: &Path) -> Tls<'a> {
        Tls {
            ca: dir.join("root.pem"),
            client: None,
            alpn: b"\x08http/1.1",
            max_version: None,
        }
    }

    fn connect(&self, port: u16) -> Result<SslStream<TcpStream>, String> {
        let mut b = SslConnector::builder(SslMethod::tls()).map_err(|e| e.to_string())?;
        b.set_ca_file(&self.ca).map_err(|e| e.to_string())?;
        b.set_alpn_protos(self.alpn).map_err(|e| e.to_string())?;
        b.set_max_proto_version(self.max_version)
            .map_err(|e| e.to_string())?;
        if let Some((name, dir)) = self.client {
            b.set_certificate_file(dir.join(format!("{name}.pem")), SslFiletype::PEM)
                .map_err(|e| e.to_string())?;
            b.set_private_key_file(dir.join(format!("{name}.key")), SslFiletype::PEM)
                .map_err(|e| e.to_string())?;
        }
        let tcp = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
        self.connect_over(b.build(), tcp)
    }

    fn connect_over(
        &self,
        c: SslConnector,
        tcp: TcpStream,
    ) -> Result<SslStream<TcpStream>, String> {
        tcp.set_read_timeout(Some(Duration::from_secs(10))).ok();
        c.connect("localhost", tcp).map_err(|e| e.to_string())
    }
}

fn serial(s: &SslStream<TcpStream>) -> u32 {
    let hex = s
        .ssl()
        .peer_certificate()
        .unwrap()
        .serial_number()
        .to_bn()
        .unwrap()
        .to_hex_str()
        .unwrap()
        .to_string();
    u32::from_str_radix(&hex, 16).unwrap()
}

/// One POST over a TLS stream (keep-alive unless `close`).
fn post(
    s: &mut SslStream<TcpStream>,
    body: &[u8],
    headers: &str,
    close: bool,
) -> Result<Response, String> {
    let req = format!(
        "POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\n{headers}{}\r\n",
        body.len(),
        if close { "Connection: close\r\n" } else { "" }
    );
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    s.write_all(body).map_err(|e| e.to_string())?;
    read_response(&mut BufReader::new(s)).map_err(|e| e.to_string())
}

fn tls_ready(dir: PathBuf) -> impl Fn(u16) -> bool {
    move |port| {
        Tls::new(&dir)
            .connect(port)
            .and_then(|mut s| {
                s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    .map_err(|e| e.to_string())?;
                read_response(&mut BufReader::new(&mut s)).map_err(|e| e.to_string())
            })
            .is_ok_and(|r| r.status == 200)
    }
}

/// The live certificate and key [`install`] puts in the gateway's directory.
const LIVE_TLS: &str = r#"{cert_file: "{DIR}/live.pem", key_file: "{DIR}/live.key"}"#;

/// A gateway with TLS from `live.pem`/`live.key` in a PKI directory made
/// before the start.
fn tls_gateway(up: &str, serials: &'static [u32]) -> Gateway {
    let cfg = Config::base(up).insert("tls", yaml(LIVE_TLS));
    // the PKI goes into the gateway's own directory before it starts
    let holder: Arc<std::sync::Mutex<Option<PathBuf>>> = Arc::default();
    let h = holder.clone();
    let prepare = move |dir: &Path| {
        pki(dir, serials);
        install(dir, serials[0]);
        *h.lock().unwrap() = Some(dir.to_path_buf());
    };
    let ready = move |port: u16| {
        let dir = holder.lock().unwrap().clone().unwrap();
        tls_ready(dir)(port)
    };
    Gateway::start_prepared(&cfg, &[], &prepare, &ready)
}

fn wait_serial(g: &Gateway, want: u32) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let got = serial(&Tls::new(g.dir.path()).connect(g.port).unwrap());
        if got == want || Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

// ---------------------------------------------------------------- tests

#[test]
fn https_h1_and_h2_with_tls12_minimum() {
    let up = Upstream::start(Mode::Echo);
    let g = tls_gateway(&up.url(), &[10]);
    let dir = g.dir.path();
    let mut s = Tls::new(dir).connect(g.port).unwrap();
    assert_eq!(serial(&s), 10);
    // the full chain is served (the client only trusts the root)
    assert_eq!(s.ssl().peer_cert_chain().map(|c| c.len()), Some(2));
    for _ in 0..3 {
        let r = post(&mut s, LIST, "", false).unwrap();
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.json()["headers"]["x-forwarded-proto"], "https");
    }
    // ALPN: h2 is offered
    let mut tls = Tls::new(dir);
    tls.alpn = b"\x02h2\x08http/1.1";
    let s = tls.connect(g.port).unwrap();
    assert_eq!(s.ssl().selected_alpn_protocol(), Some(&b"h2"[..]));
    // TLS 1.1 and older are refused
    let mut old = Tls::new(dir);
    old.max_version = Some(SslVersion::TLS1_1);
    assert!(old.connect(g.port).is_err());
    // a reload that would turn TLS off is refused; TLS keeps serving
    let conf = g.dir.path().join("gw.yaml");
    Config::load(&conf).remove("tls").write(&conf);
    g.signal("HUP");
    std::thread::sleep(Duration::from_millis(400));
    assert!(
        g.log_text()
            .contains("switching TLS on or off needs a restart"),
        "{}",
        g.log_text()
    );
    assert_eq!(serial(&Tls::new(dir).connect(g.port).unwrap()), 10);
    // plaintext HTTP on the TLS port is not served
    let plain = raw(g.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(plain.map(|r| r.status).ok() != Some(200));
    assert!(!g.log_text().contains("panicked"));
}

#[test]
fn certificate_rotates_ten_times_under_load_without_a_failed_request() {
    let up = Upstream::start(Mode::Echo);
    const SERIALS: &[u32] = &[100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110];
    let g = tls_gateway(&up.url(), SERIALS);
    let dir = g.dir.path().to_path_buf();
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut load = Vec::new();
    for keep_alive in [false, true, false] {
        let (stop, ok, failed, dir) = (stop.clone(), ok.clone(), failed.clone(), dir.clone());
        let port = g.port;
        load.push(std::thread::spawn(move || {
            let mut held: Option<SslStream<TcpStream>> = None;
            let mut n = 0;
            // bounded: stops on the flag or after 20 000 requests
            while !stop.load(Ordering::SeqCst) && n < 20_000 {
                n += 1;
                let conn = match held.take() {
                    Some(s) => Ok(s),
                    None => Tls::new(&dir).connect(port),
                };
                let result = conn.and_then(|mut s| {
                    let r = post(&mut s, LIST, "", !keep_alive)?;
                    if keep_alive {
                        held = Some(s);
                    }
                    Ok(r)
                });
                match result {
                    Ok(r) if r.status == 200 => {
                        ok.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(r) => failed.lock().unwrap().push(format!("status {}", r.status)),
                    Err(e) => failed.lock().unwrap().push(e),
                }
            }
        }));
    }
    for &s in &SERIALS[1..] {
        install(&dir, s);
        g.signal("HUP");
        assert_eq!(wait_serial(&g, s), s, "serial {s} not served after SIGHUP");
    }
    // a corrupt key: the reload is refused, the last pair stays
    std::fs::write(
        dir.join("live.key"),
        b"-----BEGIN PRIVATE KEY-----\ngarbage\n",
    )
    .unwrap();
    g.signal("HUP");
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(wait_serial(&g, 110), 110);
    // a key that does not belong to the certificate: refused too
    std::fs::copy(dir.join("srv100.key"), dir.join("live.key")).unwrap();
    g.signal("HUP");
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(wait_serial(&g, 110), 110);
    stop.store(true, Ordering::SeqCst);
    for t in load {
        t.join().unwrap();
    }
    let failed = failed.lock().unwrap();
    assert!(
        failed.is_empty(),
        "failed requests during rotation: {failed:?}"
    );
    assert!(ok.load(Ordering::SeqCst) > 50, "too little load: {ok:?}");
    let log = g.log_text();
    assert!(
        log.contains("tls.key_file"),
        "reload errors name the key: {log}"
    );
    assert!(log.contains("does not belong"), "{log}");
}

#[test]
fn validate_lists_tls_problems() {
    let dir = tempfile::tempdir().unwrap();
    pki(dir.path(), &[5]);
    let base = Config::base("http://127.0.0.1:1/mcp").with_port(1);
    let d = dir.path().display();
    let cases = [
        (
            json!({"cert_file": format!("{d}/srv5.pem"), "key_file": format!("{d}/agent.key")}),
            vec!["tls.key_file", "does not belong"],
        ),
        (
            json!({"cert_file": format!("{d}/missing.pem"), "key_file": format!("{d}/nothing.key"), "client_auth": "optional"}),
            vec![
                "tls.cert_file",
                "tls.key_file",
                "tls.client_auth: needs tls.client_ca",
            ],
        ),
        (
            json!({
                "cert_file": format!("{d}/srv5.pem"),
                "key_file": format!("{d}/srv5.key"),
                "client_ca": format!("{d}/root.key"),
                "client_auth": "sometimes",
            }),
            vec![
                "tls.client_ca",
                "tls.client_auth: expected required or optional",
            ],
        ),
    ];
    for (tls, want) in cases {
        let (ok, out, err) = validate(&base.clone().insert("tls", &tls));
        let text = err + &out;
        assert!(!ok, "{tls}");
        for w in want {
            assert!(text.contains(w), "missing {w:?} in:\n{text}");
        }
    }
    // a valid TLS config: validate says what the listener is and what needs a restart
    let (ok, text, err) = validate(&base.clone().insert(
        "tls",
        json!({
            "cert_file": format!("{d}/srv5.chain"),
            "key_file": format!("{d}/srv5.key"),
            "client_ca": format!("{d}/clientca.pem"),
        }),
    ));
    assert!(ok, "{text}{err}");
    assert!(text.contains("https (TLS 1.2+"), "{text}");
    assert!(text.contains("serial 05,"), "{text}");
    assert!(text.contains("client certificates required"), "{text}");
    assert!(text.contains("TLS on/off"), "{text}");
    // auth.client_cert needs a client CA
    let (_, out, err) = validate(&base.insert("auth.client_cert", json!({"client_from": "cn"})));
    assert!(
        err.contains("auth.client_cert: needs tls.client_ca")
            || out.contains("auth.client_cert: needs tls.client_ca")
    );
}

/// Client certificates (`client_auth`: required or optional) from the client
/// CA, mapped to principals; one API key besides; audited.
fn mtls_config(up: &str, client_auth: &str) -> Config {
    Config::base(up)
        .set(
            "auth",
            yaml(
                r#"
anonymous: false
api_keys: [{id: k1, key: key-one-0123, tenant: keys, client: k1}]
client_cert: {client_from: cn, tenant_from: o}
"#,
            ),
        )
        .audit()
        .insert(
            "tls",
            json!({
                "cert_file": "{DIR}/live.pem",
                "key_file": "{DIR}/live.key",
                "client_ca": "{DIR}/clientca.pem",
                "client_auth": client_auth,
            }),
        )
}

#[test]
fn mtls_required_no_cert_foreign_ca_and_valid_identity() {
    let up = Upstream::start(Mode::Echo);
    let g = Gateway::start_prepared(
        &mtls_config(&up.url(), "required"),
        &[],
        &|dir| {
            pki(dir, &[20]);
            install(dir, 20);
        },
        &|port| {
            // readiness: a TCP connect is all we can do without a client cert
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        },
    );
    std::thread::sleep(Duration::from_millis(300));
    let dir = g.dir.path();
    let attempt = |client: Option<&str>| -> Result<Response, String> {
        let mut t = Tls::new(dir);
        t.client = client.map(|c| (c, dir));
        let mut s = t.connect(g.port)?;
        post(&mut s, LIST, "", true)
    };
    // no certificate, or one from another CA: no request gets through
    assert!(attempt(None).is_err());
    assert!(attempt(Some("forged")).is_err());
    // a valid one: the principal comes from the certificate
    let r = attempt(Some("agent")).unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    // a cert whose tenant the policy allows too (policy allows every tenant here)
    let r = attempt(Some("stranger")).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(
        up.hits.load(Ordering::SeqCst),
        2,
        "only verified clients reach the upstream"
    );
    let lines = AuditLog::of(&g).settle_ms(100).strict().lines();
    let reqs: Vec<_> = lines.iter().filter(|l| l["path"] == "/mcp").collect();
    assert_eq!(reqs.len(), 2, "{lines:?}");
    assert_eq!(reqs[0]["principal"]["tenant"], "acme");
    assert_eq!(reqs[0]["principal"]["client"], "agent-7");
    assert_eq!(reqs[0]["principal"]["source"], "client_cert");
    assert_eq!(reqs[0]["client_cert"]["cn"], "agent-7");
    assert_eq!(reqs[0]["client_cert"]["serial"], "4D");
    assert_eq!(reqs[1]["principal"]["tenant"], "other");
}

#[test]
fn mtls_optional_falls_back_to_keys_and_policy_sees_cert_tenant() {
    let up = Upstream::start(Mode::Echo);
    // tenant acme (certificates) may call anything; tenant keys as before
    let cfg = mtls_config(&up.url(), "optional")
        .set("policy.rules[0].subject.tenant", "keys")
        .insert(
            "policy.rules[0]",
            yaml(r#"{subject: {tenant: acme}, allow: {methods: ["*"], tools: ["*"]}}"#),
        );
    let holder: Arc<std::sync::Mutex<Option<PathBuf>>> = Arc::default();
    let h = holder.clone();
    let g = Gateway::start_prepared(
        &cfg,
        &[],
        &move |dir| {
            pki(dir, &[30]);
            install(dir, 30);
            *h.lock().unwrap() = Some(dir.to_path_buf());
        },
        &move |port| tls_ready(holder.lock().unwrap().clone().unwrap())(port),
    );
    let dir = g.dir.path();
    let with = |client: Option<&str>, headers: &str| {
        let mut t = Tls::new(dir);
        t.client = client.map(|c| (c, dir));
        let mut s = t.connect(g.port).unwrap();
        post(&mut s, LIST, headers, true).unwrap().status
    };
    assert_eq!(with(None, ""), 401, "no cert, no key");
    assert_eq!(
        with(None, "X-API-Key: key-one-0123\r\n"),
        200,
        "key without cert"
    );
    assert_eq!(
        with(Some("agent"), ""),
        200,
        "cert of tenant acme (allowed)"
    );
    assert_eq!(
        with(Some("stranger"), ""),
        403,
        "cert of tenant other (no rule)"
    );
    // a header credential decides over the certificate
    assert_eq!(with(Some("stranger"), "X-API-Key: key-one-0123\r\n"), 200);
    // a foreign certificate is refused at the handshake even when optional
    let mut t = Tls::new(dir);
    t.client = Some(("forged", dir));
    assert!(t
        .connect(g.port)
        .and_then(|mut s| post(&mut s, LIST, "", true))
        .is_err());
}

#[test]
fn proxy_protocol_in_front_of_tls() {
    let up = Upstream::start(Mode::Echo);
    let holder: Arc<std::sync::Mutex<Option<PathBuf>>> = Arc::default();
    let h = holder.clone();
    let cfg = Config::base(&up.url())
        .insert("tls", yaml(LIVE_TLS))
        .insert(
            "proxy_protocol",
            json!({"enabled": true, "trusted_cidrs": ["127.0.0.1/32"], "header_timeout_ms": 500}),
        );
    let connect_pp =
        |dir: &Path, port: u16, header: &[u8]| -> Result<SslStream<TcpStream>, String> {
            let mut tcp = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
            tcp.write_all(header).map_err(|e| e.to_string())?;
            let t = Tls::new(dir);
            let mut b = SslConnector::builder(SslMethod::tls()).unwrap();
            b.set_ca_file(&t.ca).unwrap();
            t.connect_over(b.build(), tcp)
        };
    let g = Gateway::start_prepared(
        &cfg,
        &[],
        &move |dir| {
            pki(dir, &[40]);
            install(dir, 40);
            *h.lock().unwrap() = Some(dir.to_path_buf());
        },
        &move |port| {
            let dir = holder.lock().unwrap().clone().unwrap();
            connect_pp(&dir, port, b"\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00")
                .and_then(|mut s| post(&mut s, LIST, "", true))
                .is_ok_and(|r| r.status == 200)
        },
    );
    let dir = g.dir.path();
    let mut s = connect_pp(dir, g.port, b"PROXY TCP4 192.0.2.55 10.0.0.1 61000 443\r\n").unwrap();
    let r = post(&mut s, LIST, "", false).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["headers"]["x-forwarded-for"], "192.0.2.55");
    // a second request on the same connection keeps the client
    let r = post(&mut s, LIST, "", true).unwrap();
    assert_eq!(r.json()["headers"]["x-forwarded-for"], "192.0.2.55");
    // a trusted peer that starts TLS without the header is cut off
    assert!(Tls::new(dir)
        .connect(g.port)
        .and_then(|mut s| post(&mut s, LIST, "", true))
        .is_err());
    std::thread::sleep(Duration::from_millis(300));
    let conns: Vec<_> = g
        .log_text()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["type"] == "connection")
        .collect();
    assert!(
        conns
            .iter()
            .any(|c| c["error"] == "proxy_header_invalid" || c["error"] == "proxy_header_timeout"),
        "refusal logged: {conns:?}"
    );
}

#[test]
fn typescript_sdk_client_over_https() {
    assert!(have("node"), "node is needed (.ci/run installs it)");
    let peer = Peer::everything();
    let g = tls_gateway(&peer.url(), &[50]);
    let url = format!("https://localhost:{}/mcp", g.port);
    let steps = run_client(
        Command::new("node")
            .args(["ts_client.mjs", &url, "--server", "everything"])
            .env("NODE_EXTRA_CA_CERTS", g.dir.path().join("root.pem")),
    );
    assert!(steps.iter().any(|s| s["step"] == "tools/call"), "{steps:?}");
}

/// An `https://` upstream signed by a private CA: trusted through
/// `upstreams[].tls.ca_file`, refused (502) with the system store.
#[test]
fn https_upstream_with_a_private_ca() {
    let up = Upstream::start(Mode::Echo);
    // the HTTPS upstream: another gateway with a certificate from the test CA
    let back = tls_gateway(&up.url(), &[70]);
    let ca = back.dir.path().join("root.pem");
    let url = format!("https://localhost:{}/mcp", back.port);
    let front = |tls: Option<serde_json::Value>| {
        let cfg = Config::base(&url);
        Gateway::start(&match tls {
            Some(tls) => cfg.insert("upstreams[0].tls", tls),
            None => cfg,
        })
    };
    let trusted = front(Some(json!({"ca_file": ca.display().to_string()})));
    let r = post_json(trusted.port, LIST, &[]);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["headers"]["x-forwarded-proto"], "https");
    let untrusted = front(None);
    let r = post_json(untrusted.port, LIST, &[]);
    assert_eq!(r.status, 502, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        up.hits.load(Ordering::SeqCst),
        1,
        "only the trusted call got through"
    );
}
