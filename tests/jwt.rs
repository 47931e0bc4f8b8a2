//! JWT bearer tokens: claim checks, algorithm confusion, JWKS rotation and
//! outage against a local JWKS server, cached verification, claims forwarded
//! as upstream headers. Keys are generated per run with the openssl CLI.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use mcp_edge::auth::jwt::{JwksSource, JwtSettings, JwtVerifier};
use mcp_edge::auth::AuthError;

const ISS: &str = "https://auth.test/";
const AUD: &str = "https://mcp.test/mcp";

struct Key {
    enc: EncodingKey,
    alg: Algorithm,
    kid: String,
    pem: Vec<u8>,
}

fn genkey(kind: &str, kid: &str) -> Key {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.pem");
    let args: Vec<&str> = match kind {
        "rsa" => vec![
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ],
        _ => vec![
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ],
    };
    let ok = Command::new("openssl")
        .args(&args)
        .arg("-out")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let pem = std::fs::read(&path).unwrap();
    let (enc, alg) = match kind {
        "rsa" => (EncodingKey::from_rsa_pem(&pem).unwrap(), Algorithm::RS256),
        _ => (EncodingKey::from_ec_pem(&pem).unwrap(), Algorithm::ES256),
    };
    Key {
        enc,
        alg,
        kid: kid.into(),
        pem,
    }
}

fn jwks(keys: &[&Key]) -> String {
    let keys = keys
        .iter()
        .map(|k| {
            let mut jwk = Jwk::from_encoding_key(&k.enc, k.alg).unwrap();
            jwk.common.key_id = Some(k.kid.clone());
            jwk
        })
        .collect();
    serde_json::to_string(&JwkSet { keys }).unwrap()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn token(k: &Key, claims: serde_json::Value) -> String {
    let mut h = Header::new(k.alg);
    h.kid = Some(k.kid.clone());
    encode(&h, &claims, &k.enc).unwrap()
}

fn good_claims() -> serde_json::Value {
    serde_json::json!({"iss": ISS, "aud": AUD, "sub": "user-42", "tenant": "acme", "plan": "gold", "exp": now() + 600})
}

fn settings(source: JwksSource) -> JwtSettings {
    JwtSettings {
        issuer: ISS.into(),
        audiences: vec![AUD.into()],
        algorithms: vec![Algorithm::RS256, Algorithm::ES256],
        leeway_secs: 5,
        tenant_claim: "tenant".into(),
        client_claim: "sub".into(),
        forward_claims: vec![
            ("sub".into(), http::HeaderName::from_static("x-user-id")),
            ("plan".into(), http::HeaderName::from_static("x-user-plan")),
        ],
        source,
        refresh: std::time::Duration::from_secs(300),
        unknown_kid_refetch: std::time::Duration::from_secs(30),
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn claims_are_checked_and_algorithms_cannot_be_confused() {
    let rsa = genkey("rsa", "r1");
    let ec = genkey("ec", "e1");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("jwks.json");
    std::fs::write(&file, jwks(&[&rsa, &ec])).unwrap();
    let v = JwtVerifier::new(settings(JwksSource::File(file.display().to_string()))).unwrap();
    block_on(async {
        for k in [&rsa, &ec] {
            let p = v.verify(token(k, good_claims()).as_bytes()).await.unwrap();
            assert_eq!(&*p.tenant, "acme");
            assert_eq!(&*p.client, "user-42");
            assert_eq!(p.subject.as_deref(), Some("user-42"));
            assert_eq!(p.forward.len(), 2);
        }
        let bad = |patch: serde_json::Value| {
            let mut c = good_claims();
            for (k, val) in patch.as_object().unwrap() {
                c[k] = val.clone();
            }
            token(&rsa, c)
        };
        for t in [
            bad(serde_json::json!({"exp": now() - 100})),
            bad(serde_json::json!({"nbf": now() + 100})),
            bad(serde_json::json!({"aud": "https://other/"})),
            bad(serde_json::json!({"iss": "https://evil/"})),
        ] {
            assert_eq!(v.verify(t.as_bytes()).await, Err(AuthError::Invalid));
        }
        // missing exp
        let mut c = good_claims();
        c.as_object_mut().unwrap().remove("exp");
        assert_eq!(
            v.verify(token(&rsa, c).as_bytes()).await,
            Err(AuthError::Invalid)
        );
        // alg "none"
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let none = format!(
            "{}.{}.",
            b64(r#"{"alg":"none","kid":"r1"}"#),
            b64(&good_claims().to_string())
        );
        assert_eq!(v.verify(none.as_bytes()).await, Err(AuthError::Invalid));
        // HS256 signed with the RSA key material as the shared secret
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some("r1".into());
        let confused = encode(&h, &good_claims(), &EncodingKey::from_secret(&rsa.pem)).unwrap();
        assert_eq!(v.verify(confused.as_bytes()).await, Err(AuthError::Invalid));
        // a kid nobody published, a tampered payload
        let stranger = genkey("rsa", "zz");
        assert_eq!(
            v.verify(token(&stranger, good_claims()).as_bytes()).await,
            Err(AuthError::Invalid)
        );
        let t = token(&rsa, good_claims());
        let mut parts: Vec<&str> = t.split('.').collect();
        let forged = b64(
            &serde_json::json!({"iss": ISS, "aud": AUD, "sub": "admin", "exp": now() + 600})
                .to_string(),
        );
        parts[1] = &forged;
        assert_eq!(
            v.verify(parts.join(".").as_bytes()).await,
            Err(AuthError::Invalid)
        );
    });
}

/// A JWKS server the test can rotate and take down.
struct JwksServer {
    port: u16,
    body: Arc<Mutex<(u16, String)>>,
    hits: Arc<Mutex<usize>>,
}

impl JwksServer {
    fn start(body: String) -> JwksServer {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let body = Arc::new(Mutex::new((200u16, body)));
        let hits = Arc::new(Mutex::new(0));
        let (b, h) = (body.clone(), hits.clone());
        std::thread::spawn(move || {
            for conn in l.incoming().flatten() {
                let mut r = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                while r.read_line(&mut line).unwrap_or(0) > 2 {
                    line.clear();
                }
                *h.lock().unwrap() += 1;
                let (status, text) = b.lock().unwrap().clone();
                let mut w = conn;
                let _ = write!(
                    w,
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                    text.len()
                );
            }
        });
        JwksServer { port, body, hits }
    }
    fn set(&self, status: u16, body: String) {
        *self.body.lock().unwrap() = (status, body);
    }
    fn hits(&self) -> usize {
        *self.hits.lock().unwrap()
    }
}

fn gateway(up: &Upstream, jwks: &JwksServer) -> Gateway {
    let cfg = Config::base(&up.url())
        .set(
            "auth",
            json!({"jwt": {
                "issuer": ISS,
                "audiences": [AUD],
                "jwks_url": format!("http://127.0.0.1:{}/jwks.json", jwks.port),
                "algorithms": ["RS256", "ES256"],
                "forward_claims": {"sub": "X-User-Id", "plan": "X-User-Plan"},
                "jwks_refresh_secs": 3600,
                "jwks_unknown_kid_refetch_secs": 1,
            }}),
        )
        // only tokens carrying plan=gold may use anything
        .insert("policy.rules[0].subject.claims", json!({"plan": "gold"}));
    assert_eq!(
        cfg.get("policy.rules[0].subject"),
        &yaml(r#"{tenant: "*", claims: {plan: gold}}"#)
    );
    Gateway::start(&cfg)
}

const CALL: &[u8] = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}"#;

#[test]
fn gateway_fetches_rotates_and_survives_jwks_outage() {
    let a = genkey("rsa", "key-a");
    let b = genkey("ec", "key-b");
    let server = JwksServer::start(jwks(&[&a]));
    let up = Upstream::start(Mode::Echo);
    let g = gateway(&up, &server);
    let ta = format!("Bearer {}", token(&a, good_claims()));
    // valid token: claims forwarded, the client's own copies of those headers dropped
    let r = post_json(
        g.port,
        CALL,
        &[
            ("Authorization", &ta),
            ("X-User-Id", "spoofed"),
            ("X-User-Plan", "platinum"),
        ],
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let h = &r.json()["headers"];
    assert_eq!(h["x-user-id"], "user-42");
    assert_eq!(h["x-user-plan"], "gold");
    assert!(h.get("authorization").is_none());
    let fetched = server.hits();
    assert_eq!(fetched, 1);
    // cached: the same token again does not refetch or re-verify
    assert_eq!(
        post_json(g.port, CALL, &[("Authorization", &ta)]).status,
        200
    );
    assert_eq!(server.hits(), 1);
    // rotation: a token with a new kid makes the gateway refetch once
    server.set(200, jwks(&[&a, &b]));
    let tb = format!("Bearer {}", token(&b, good_claims()));
    assert_eq!(
        post_json(g.port, CALL, &[("Authorization", &tb)]).status,
        200
    );
    assert_eq!(server.hits(), 2);
    // outage: known keys keep working (served stale); unknown kids are refused
    server.set(500, "down".into());
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let c = genkey("rsa", "key-c");
    let tc = format!("Bearer {}", token(&c, good_claims()));
    assert_eq!(
        post_json(g.port, CALL, &[("Authorization", &tc)]).status,
        401
    );
    assert_eq!(
        server.hits(),
        3,
        "the unknown kid triggered one (failed) refetch"
    );
    let fresh_b = format!(
        "Bearer {}",
        token(
            &b,
            serde_json::json!({"iss": ISS, "aud": AUD, "sub": "other", "plan": "gold", "exp": now() + 300})
        )
    );
    assert_eq!(
        post_json(g.port, CALL, &[("Authorization", &fresh_b)]).status,
        200
    );
    // unknown-kid refetches are rate-limited (here: one per second)
    assert_eq!(
        post_json(g.port, CALL, &[("Authorization", &tc)]).status,
        401
    );
    assert_eq!(server.hits(), 3);
    // a valid token without the claim the policy asks for: refused like an unknown tool
    let silver = format!(
        "Bearer {}",
        token(
            &a,
            serde_json::json!({"iss": ISS, "aud": AUD, "sub": "s", "plan": "silver", "exp": now() + 300})
        )
    );
    let r = post_json(g.port, CALL, &[("Authorization", &silver)]);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["error"]["code"], -32602);
    // a bad token is a 401 with invalid_token
    let r = post_json(g.port, CALL, &[("Authorization", "Bearer a.b.c")]);
    assert_eq!(r.status, 401);
    assert!(r
        .header("www-authenticate")
        .unwrap()
        .contains("invalid_token"));
    // the token never shows up in the logs
    assert!(!g.log_text().contains(&ta[7..]));
}
