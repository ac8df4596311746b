//! App-only authentication: the client-credentials grant with a secret or a certificate, and the
//! token cache.
//!
//! Invariants:
//! - one token per lifetime: the cached token is reused until it is close to expiry, judged by the
//!   injected clock; "close" is the smaller of 5 minutes and 10 % of its lifetime (so short-lived tokens
//!   from the emulator are not refreshed on every call);
//! - at most ONE refresh in flight: the cache sits behind a tokio `Mutex` held across the token request,
//!   so concurrent callers that find the token stale queue on the lock and then find the fresh token;
//! - a 401 from Graph forces one refresh, unless another caller already replaced the rejected token
//!   (tracked by a generation number);
//! - secrets, assertions and tokens are `SecretString`s and never logged.
//!
//! The certificate credential signs a client assertion as Microsoft documents it ("Microsoft identity
//! platform certificate credentials"): header `alg` PS256, `typ` JWT, `x5t#S256` = base64url of the
//! SHA-256 of the certificate's DER; claims `aud` = the token endpoint, `iss` = `sub` = client id, a
//! fresh `jti`, `nbf` = `iat` = now, `exp` = now + 10 minutes.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};
use url::Url;

use super::error::{GraphError, TokenError};
use super::observer::GraphObserver;
use crate::clock::SharedClock;

/// How the app proves its identity to Entra ID.
#[derive(Debug, Clone)]
pub enum Credential {
    /// A client secret.
    ClientSecret(SecretString),
    /// A certificate registered on the app, and its RSA private key (PKCS#1 or PKCS#8 PEM).
    Certificate {
        /// The certificate in PEM (the first `CERTIFICATE` block is used).
        certificate_pem: String,
        /// The private key in PEM.
        private_key_pem: SecretString,
    },
}

/// The validity of a client assertion; Microsoft asks for 5–10 minutes.
const ASSERTION_LIFETIME: Duration = Duration::minutes(10);
/// The longest refresh margin before expiry.
const MAX_REFRESH_MARGIN: Duration = Duration::minutes(5);

/// A credential prepared once: a certificate is parsed and hashed at start-up, so a bad file is
/// reported immediately rather than at the first token request.
enum PreparedCredential {
    Secret(SecretString),
    Certificate { key: EncodingKey, x5t_s256: String },
}

impl PreparedCredential {
    fn prepare(credential: &Credential) -> Result<Self, GraphError> {
        match credential {
            Credential::ClientSecret(secret) => Ok(Self::Secret(secret.clone())),
            Credential::Certificate {
                certificate_pem,
                private_key_pem,
            } => {
                let blocks = pem::parse_many(certificate_pem).map_err(|error| {
                    GraphError::Configuration(format!(
                        "the certificate is not valid PEM ({error}); use the PEM file of the certificate uploaded \
                         to the app registration"
                    ))
                })?;
                let der = blocks
                    .iter()
                    .find(|block| block.tag() == "CERTIFICATE")
                    .ok_or_else(|| {
                        GraphError::Configuration(
                            "the certificate file has no -----BEGIN CERTIFICATE----- block; point certificate_file \
                             at the certificate, not the key"
                                .to_owned(),
                        )
                    })?
                    .contents();
                let key = EncodingKey::from_rsa_pem(private_key_pem.expose_secret().as_bytes()).map_err(|error| {
                    GraphError::Configuration(format!(
                        "the private key is not an RSA private key in PEM (PKCS#1 or PKCS#8, unencrypted): {error}"
                    ))
                })?;
                Ok(Self::Certificate {
                    key,
                    x5t_s256: URL_SAFE_NO_PAD.encode(Sha256::digest(der)),
                })
            }
        }
    }
}

#[derive(Serialize)]
struct AssertionClaims<'a> {
    aud: &'a str,
    iss: &'a str,
    sub: &'a str,
    jti: String,
    nbf: i64,
    iat: i64,
    exp: i64,
}

fn client_assertion(
    key: &EncodingKey,
    x5t_s256: &str,
    client_id: &str,
    token_endpoint: &str,
    now: OffsetDateTime,
) -> Result<SecretString, GraphError> {
    let mut header = Header::new(Algorithm::PS256);
    header.typ = Some("JWT".to_owned());
    header.x5t_s256 = Some(x5t_s256.to_owned());
    let claims = AssertionClaims {
        aud: token_endpoint,
        iss: client_id,
        sub: client_id,
        jti: uuid::Uuid::new_v4().to_string(),
        nbf: now.unix_timestamp(),
        iat: now.unix_timestamp(),
        exp: (now + ASSERTION_LIFETIME).unix_timestamp(),
    };
    jsonwebtoken::encode(&header, &claims, key)
        .map(SecretString::from)
        .map_err(|error| {
            GraphError::Configuration(format!(
                "cannot sign the client assertion with the private key: {error}"
            ))
        })
}

/// The longest token lifetime believed: Entra ID issues tokens for 60–90 minutes (up to a day with a
/// configured policy); a larger `expires_in` is a server mistake and would keep a dead token cached.
pub(crate) const MAX_TOKEN_LIFETIME: Duration = Duration::hours(24);

/// A successful token response.
#[derive(Deserialize)]
pub(crate) struct TokenResponse {
    pub(crate) access_token: SecretString,
    /// Seconds, as a number or (older endpoints) a string; read by [`TokenResponse::lifetime`].
    #[serde(default)]
    pub(crate) expires_in: Option<serde_json::Value>,
}

impl TokenResponse {
    /// `expires_in` as a lifetime between zero (negative, missing or unreadable: use it once, ask
    /// again next time) and [`MAX_TOKEN_LIFETIME`].
    pub(crate) fn lifetime(&self) -> Duration {
        token_lifetime(self.expires_in.as_ref())
    }
}

/// Reads an `expires_in` value (number or numeric string) into a lifetime within
/// `0..=`[`MAX_TOKEN_LIFETIME`]; never panics, never overflows.
pub(crate) fn token_lifetime(expires_in: Option<&serde_json::Value>) -> Duration {
    let seconds = match expires_in {
        Some(serde_json::Value::Number(number)) => number
            .as_i64()
            .or_else(|| number.as_u64().map(|_| i64::MAX))
            .or_else(|| {
                number
                    .as_f64()
                    .filter(|f| f.is_finite())
                    .map(|f| f.clamp(-1.0, 1e12) as i64)
            }),
        Some(serde_json::Value::String(text)) => text.trim().parse::<i64>().ok(),
        _ => None,
    };
    Duration::seconds(
        seconds
            .unwrap_or(0)
            .clamp(0, MAX_TOKEN_LIFETIME.whole_seconds()),
    )
}

/// Entra ID's OAuth error body.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct OAuthErrorBody {
    #[serde(default)]
    pub(crate) error: String,
    #[serde(default)]
    pub(crate) error_description: String,
    #[serde(default)]
    pub(crate) error_codes: Vec<u64>,
    #[serde(default)]
    pub(crate) trace_id: Option<String>,
}

/// Turns a token endpoint error into a [`GraphError`] naming the fix.
pub(crate) fn token_error(status: u16, body: OAuthErrorBody) -> GraphError {
    let aadsts = body
        .error_codes
        .first()
        .map(|code| format!("AADSTS{code}"))
        .or_else(|| {
            body.error_description
                .split(|c: char| !c.is_ascii_alphanumeric())
                .find(|word| word.starts_with("AADSTS"))
                .map(str::to_owned)
        });
    let fix = fix_for(&body.error, aadsts.as_deref());
    let description = body
        .error_description
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    TokenError {
        status,
        error: if body.error.is_empty() {
            "unknown_error".to_owned()
        } else {
            body.error
        },
        aadsts,
        description,
        fix,
        trace_id: body.trace_id,
    }
    .into()
}

fn fix_for(error: &str, aadsts: Option<&str>) -> &'static str {
    match aadsts {
        Some("AADSTS7000215") => {
            "the client secret is wrong: copy the secret's Value (not its Secret ID) from Entra admin center → \
             App registrations → Certificates & secrets"
        }
        Some("AADSTS7000222") => {
            "the client secret has expired: create a new one under App registrations → Certificates & secrets"
        }
        Some("AADSTS700027") => {
            "the client assertion was not accepted: upload this certificate to the app registration and make sure \
             the private key belongs to it"
        }
        Some("AADSTS700024") => {
            "the client assertion is outside its validity window: check the system clock (NTP)"
        }
        Some("AADSTS700016") => {
            "no application with this client_id exists in the tenant: check graph.client_id and graph.tenant_id"
        }
        Some("AADSTS90002" | "AADSTS900023" | "AADSTS90072") => {
            "the tenant was not found: check graph.tenant_id and that graph.cloud matches the tenant's cloud"
        }
        Some("AADSTS7000218") => {
            "the device-code sign-in needs public client flows: enable \"Allow public client flows\" under App \
             registrations → Authentication"
        }
        Some("AADSTS65001") => {
            "admin consent is missing: grant admin consent for the app's API permissions"
        }
        Some("AADSTS70011" | "AADSTS1002012") => {
            "the requested scope is invalid: check graph.cloud and graph.base_url"
        }
        Some("AADSTS53003") => {
            "Conditional Access blocked the sign-in: exclude this app or meet the policy"
        }
        _ => match error {
            "invalid_client" => {
                "the client secret or certificate is wrong or expired: create a new one in Entra admin center → App \
                 registrations → Certificates & secrets and update the configuration"
            }
            "unauthorized_client" => {
                "the app may not use this grant in this tenant: check that the app registration exists, is enabled \
                 and has admin consent"
            }
            "invalid_scope" => {
                "the requested scope is invalid: check graph.cloud and graph.base_url"
            }
            "invalid_request" => "check graph.tenant_id, graph.client_id and graph.cloud",
            "temporarily_unavailable" => "Entra ID is temporarily unavailable: try again later",
            _ => "look the AADSTS code up at https://login.microsoftonline.com/error",
        },
    }
}

/// An app token and the generation it belongs to (to tell whether a rejected token was replaced).
#[derive(Clone)]
pub(crate) struct AppToken {
    pub(crate) secret: SecretString,
    pub(crate) generation: u64,
}

struct CachedToken {
    secret: SecretString,
    obtained: OffsetDateTime,
    expires_at: OffsetDateTime,
    generation: u64,
}

impl CachedToken {
    fn is_fresh(&self, now: OffsetDateTime) -> bool {
        let margin = ((self.expires_at - self.obtained) / 10_i32).min(MAX_REFRESH_MARGIN);
        now < self.expires_at - margin
    }
}

/// The client-credentials token source with its cache.
pub(crate) struct AppTokens {
    http: reqwest::Client,
    token_endpoint: Url,
    client_id: String,
    scope: String,
    credential: PreparedCredential,
    clock: SharedClock,
    observer: Option<Arc<dyn GraphObserver>>,
    // A tokio mutex, held across the token request: it is what makes concurrent callers share one refresh.
    cache: tokio::sync::Mutex<Option<CachedToken>>,
    // The expiry of the cached token, readable without waiting behind a refresh (readiness checks).
    expires_at: std::sync::Mutex<Option<OffsetDateTime>>,
}

impl AppTokens {
    pub(crate) fn new(
        http: reqwest::Client,
        token_endpoint: Url,
        client_id: String,
        scope: String,
        credential: &Credential,
        clock: SharedClock,
        observer: Option<Arc<dyn GraphObserver>>,
    ) -> Result<Self, GraphError> {
        Ok(Self {
            http,
            token_endpoint,
            client_id,
            scope,
            credential: PreparedCredential::prepare(credential)?,
            clock,
            observer,
            cache: tokio::sync::Mutex::new(None),
            expires_at: std::sync::Mutex::new(None),
        })
    }

    /// The cached token, or a new one if it is missing or close to expiry.
    pub(crate) async fn current(&self) -> Result<AppToken, GraphError> {
        let mut cache = self.cache.lock().await;
        if let Some(token) = cache
            .as_ref()
            .filter(|token| token.is_fresh(self.clock.now()))
        {
            return Ok(AppToken {
                secret: token.secret.clone(),
                generation: token.generation,
            });
        }
        self.refresh_locked(&mut cache).await
    }

    /// Graph rejected the token of `generation` (401): refresh unless someone already did.
    pub(crate) async fn replace_rejected(&self, generation: u64) -> Result<AppToken, GraphError> {
        let mut cache = self.cache.lock().await;
        if let Some(token) = cache
            .as_ref()
            .filter(|token| token.generation != generation)
        {
            return Ok(AppToken {
                secret: token.secret.clone(),
                generation: token.generation,
            });
        }
        self.refresh_locked(&mut cache).await
    }

    async fn refresh_locked(
        &self,
        cache: &mut Option<CachedToken>,
    ) -> Result<AppToken, GraphError> {
        let generation = cache.as_ref().map_or(1, |token| token.generation + 1);
        let fresh = self.request_token(generation).await?;
        let token = AppToken {
            secret: fresh.secret.clone(),
            generation,
        };
        *self
            .expires_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(fresh.expires_at);
        *cache = Some(fresh);
        Ok(token)
    }

    /// The form fields that prove the app's identity to the token endpoint `audience` (a client
    /// secret, or a fresh certificate assertion): shared by every grant the app redeems.
    pub(crate) fn client_authentication(
        &self,
        audience: &str,
    ) -> Result<Vec<(&'static str, String)>, GraphError> {
        self.authentication(audience, self.clock.now())
    }

    fn authentication(
        &self,
        audience: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<(&'static str, String)>, GraphError> {
        Ok(match &self.credential {
            PreparedCredential::Secret(secret) => {
                vec![("client_secret", secret.expose_secret().to_owned())]
            }
            PreparedCredential::Certificate { key, x5t_s256 } => {
                let assertion = client_assertion(key, x5t_s256, &self.client_id, audience, now)?;
                vec![
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
                    ),
                    ("client_assertion", assertion.expose_secret().to_owned()),
                ]
            }
        })
    }

    async fn request_token(&self, generation: u64) -> Result<CachedToken, GraphError> {
        if let Some(observer) = &self.observer {
            observer.on_token_refresh();
        }
        let now = self.clock.now();
        let mut form: Vec<(&str, String)> = vec![
            ("client_id", self.client_id.clone()),
            ("scope", self.scope.clone()),
            ("grant_type", "client_credentials".to_owned()),
        ];
        form.extend(self.authentication(self.token_endpoint.as_str(), now)?);
        tracing::debug!(endpoint = %self.token_endpoint, generation, "requesting an app token");
        let response = post_token_form(&self.http, &self.token_endpoint, &form).await?;
        let lifetime = response.lifetime();
        Ok(CachedToken {
            secret: response.access_token,
            obtained: now,
            expires_at: now.saturating_add(lifetime),
            generation,
        })
    }

    /// The `roles` claim of the current app token: the application permissions Graph will honour.
    /// Decoded without verification: the token is for Graph to verify, the client only reads it.
    /// When the cached token expires; `None` before the first token.
    pub(crate) fn expires_at(&self) -> Option<OffsetDateTime> {
        *self
            .expires_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) async fn roles(&self) -> Result<Vec<String>, GraphError> {
        let token = self.current().await?;
        roles_of(token.secret.expose_secret())
    }
}

/// Posts a form to a token endpoint and reads a token or an OAuth error.
pub(crate) async fn post_token_form(
    http: &reqwest::Client,
    endpoint: &Url,
    form: &[(&str, String)],
) -> Result<TokenResponse, GraphError> {
    let transport = |error: reqwest::Error| {
        let timed_out = error.is_timeout();
        GraphError::Transport {
            operation: "token",
            detail: error.without_url().to_string(),
            client_request_id: "n/a".to_owned(),
            timed_out,
        }
    };
    let response = http
        .post(endpoint.clone())
        .form(form)
        .send()
        .await
        .map_err(transport)?;
    let status = response.status().as_u16();
    let body = response.bytes().await.map_err(transport)?;
    if (200..300).contains(&status) {
        serde_json::from_slice(&body).map_err(|error| GraphError::InvalidResponse {
            operation: "token",
            status,
            detail: format!("not a token response: {error}"),
            client_request_id: "n/a".to_owned(),
        })
    } else {
        Err(token_error(
            status,
            serde_json::from_slice(&body).unwrap_or_default(),
        ))
    }
}

fn roles_of(token: &str) -> Result<Vec<String>, GraphError> {
    #[derive(Deserialize)]
    struct Claims {
        #[serde(default)]
        roles: Vec<String>,
    }
    let invalid = |detail: String| GraphError::InvalidResponse {
        operation: "app_token_roles",
        status: 200,
        detail,
        client_request_id: "n/a".to_owned(),
    };
    let payload = token
        .split('.')
        .nth(1)
        .ok_or_else(|| invalid("the access token is not a JWT".to_owned()))?;
    let json = URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|error| invalid(format!("the token payload is not base64url: {error}")))?;
    let claims: Claims = serde_json::from_slice(&json)
        .map_err(|error| invalid(format!("the token payload is not JSON: {error}")))?;
    Ok(claims.roles)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::clock::ManualClock;
    use time::macros::datetime;
    use wiremock::matchers::{body_string_contains, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    fn tokens(server: &MockServer, credential: &Credential, clock: SharedClock) -> AppTokens {
        let endpoint = Url::parse(&format!("{}/tenant/oauth2/v2.0/token", server.uri())).unwrap();
        AppTokens::new(
            reqwest::Client::new(),
            endpoint,
            "client-1".into(),
            "https://graph.microsoft.com/.default".into(),
            credential,
            clock,
            None,
        )
        .unwrap()
    }

    fn secret() -> Credential {
        Credential::ClientSecret(SecretString::from("s3cret"))
    }

    fn token_body(token: &str, expires_in: u64) -> ResponseTemplate {
        ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "token_type": "Bearer", "expires_in": expires_in, "ext_expires_in": expires_in, "access_token": token
        }))
    }

    #[tokio::test]
    async fn a_huge_or_negative_expires_in_gives_a_bounded_token_lifetime_without_panicking() {
        for expires_in in [
            serde_json::json!(u64::MAX),
            serde_json::json!(i64::MIN),
            serde_json::json!(-3600),
            serde_json::json!("1e400"),
            serde_json::json!(1e300),
        ] {
            let server = MockServer::start().await;
            Mock::given(method("POST"))
                .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
                    "token_type": "Bearer", "expires_in": expires_in, "access_token": "t"
                })))
                .mount(&server)
                .await;
            let tokens = tokens(&server, &secret(), crate::clock::SystemClock::shared());
            tokens.current().await.unwrap();
            let expires_at = tokens.expires_at().unwrap();
            assert!(
                expires_at <= OffsetDateTime::now_utc() + MAX_TOKEN_LIFETIME,
                "{expires_in}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn any_expires_in_reads_as_a_lifetime_between_zero_and_a_day(seconds in proptest::num::i64::ANY, big in proptest::num::u64::ANY, float in proptest::num::f64::ANY, text in ".{0,24}") {
            for value in [serde_json::json!(seconds), serde_json::json!(big), serde_json::json!(float), serde_json::json!(text)] {
                let lifetime = token_lifetime(Some(&value));
                proptest::prop_assert!(lifetime >= Duration::ZERO && lifetime <= MAX_TOKEN_LIFETIME, "{value}");
            }
        }
    }

    #[tokio::test]
    async fn a_client_secret_is_sent_as_a_client_credentials_form() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/tenant/oauth2/v2.0/token"))
            .and(body_string_contains("grant_type=client_credentials"))
            .and(body_string_contains("client_id=client-1"))
            .and(body_string_contains("client_secret=s3cret"))
            .and(body_string_contains(
                "scope=https%3A%2F%2Fgraph.microsoft.com%2F.default",
            ))
            .respond_with(token_body("t1", 3599))
            .expect(1)
            .mount(&server)
            .await;
        let clock = ManualClock::new(datetime!(2026-01-01 00:00 UTC));
        let token = tokens(&server, &secret(), clock).current().await.unwrap();
        assert_eq!(token.secret.expose_secret(), "t1");
    }

    #[tokio::test]
    async fn the_token_is_refreshed_shortly_before_expiry_by_the_injected_clock() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(token_body("t", 3600))
            .expect(2)
            .mount(&server)
            .await;
        let clock = ManualClock::new(datetime!(2026-01-01 00:00 UTC));
        let tokens = tokens(&server, &secret(), clock.clone());
        let first = tokens.current().await.unwrap();
        clock.advance(Duration::minutes(54));
        assert_eq!(
            tokens.current().await.unwrap().generation,
            first.generation,
            "6 minutes left: reused"
        );
        clock.advance(Duration::minutes(2));
        assert_eq!(
            tokens.current().await.unwrap().generation,
            first.generation + 1,
            "4 minutes left: refreshed"
        );
    }

    #[tokio::test]
    async fn a_rejected_token_is_replaced_once_even_when_reported_twice() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(token_body("t", 3600))
            .expect(2)
            .mount(&server)
            .await;
        let clock = ManualClock::new(datetime!(2026-01-01 00:00 UTC));
        let tokens = tokens(&server, &secret(), clock);
        let first = tokens.current().await.unwrap();
        let second = tokens.replace_rejected(first.generation).await.unwrap();
        let again = tokens.replace_rejected(first.generation).await.unwrap();
        assert_eq!(second.generation, again.generation);
    }

    #[tokio::test]
    async fn an_invalid_client_error_names_the_fix_and_hides_the_secret() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(401).set_body_json(serde_json::json!({
                "error": "invalid_client",
                "error_description": "AADSTS7000215: Invalid client secret provided.\r\nTrace ID: x\r\nCorrelation ID: y",
                "error_codes": [7000215],
                "trace_id": "trace-1"
            })))
            .mount(&server)
            .await;
        let clock = ManualClock::new(datetime!(2026-01-01 00:00 UTC));
        let error = tokens(&server, &secret(), clock)
            .current()
            .await
            .err()
            .unwrap();
        let text = error.to_string();
        assert!(
            text.contains("AADSTS7000215") && text.contains("Certificates & secrets"),
            "{text}"
        );
        assert!(text.contains("trace-1"), "{text}");
        assert!(!text.contains("s3cret") && !format!("{error:?}").contains("s3cret"));
    }

    #[test]
    fn a_generic_invalid_client_says_the_secret_or_certificate_is_wrong() {
        let error = token_error(
            400,
            OAuthErrorBody {
                error: "invalid_client".into(),
                ..OAuthErrorBody::default()
            },
        );
        assert!(
            error
                .to_string()
                .contains("the client secret or certificate is wrong or expired"),
            "{error}"
        );
    }

    #[test]
    fn roles_are_read_from_the_token_payload_without_verification() {
        let payload =
            URL_SAFE_NO_PAD.encode(r#"{"roles":["PrintJob.Manage.All","Printer.Read.All"]}"#);
        let roles = roles_of(&format!("eyJhbGciOiJSUzI1NiJ9.{payload}.sig")).unwrap();
        assert_eq!(roles, ["PrintJob.Manage.All", "Printer.Read.All"]);
        assert!(roles_of("opaque").is_err());
    }

    /// A throwaway RSA key and self-signed certificate made with the `openssl` CLI in a temp dir.
    fn throwaway_certificate() -> Option<(String, String)> {
        let dir = tempfile::tempdir().ok()?;
        let key = dir.path().join("key.pem");
        let cert = dir.path().join("cert.pem");
        let status = std::process::Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=pullprintd-test",
                "-days",
                "1",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stderr(std::process::Stdio::null())
            .status()
            .ok()?;
        status.success().then_some(())?;
        Some((
            std::fs::read_to_string(cert).ok()?,
            std::fs::read_to_string(key).ok()?,
        ))
    }

    #[tokio::test]
    async fn a_certificate_credential_sends_a_ps256_assertion_with_x5t_s256_and_the_documented_claims()
     {
        let (cert_pem, key_pem) =
            throwaway_certificate().expect("the openssl CLI makes a test certificate");
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(body_string_contains(
                "client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer",
            ))
            .respond_with(token_body("t", 3600))
            .expect(1)
            .mount(&server)
            .await;
        let now = datetime!(2026-01-01 00:00 UTC);
        let credential = Credential::Certificate {
            certificate_pem: cert_pem.clone(),
            private_key_pem: SecretString::from(key_pem),
        };
        tokens(&server, &credential, ManualClock::new(now))
            .current()
            .await
            .unwrap();

        let requests = server.received_requests().await.unwrap();
        let form: std::collections::HashMap<String, String> =
            url::form_urlencoded::parse(&requests[0].body)
                .into_owned()
                .collect();
        assert!(!form.contains_key("client_secret"));
        let assertion = &form["client_assertion"];
        let header = jsonwebtoken::decode_header(assertion).unwrap();
        assert_eq!(header.alg, Algorithm::PS256);
        assert_eq!(header.typ.as_deref(), Some("JWT"));
        let der = pem::parse(&cert_pem).unwrap();
        assert_eq!(
            header.x5t_s256,
            Some(URL_SAFE_NO_PAD.encode(Sha256::digest(der.contents())))
        );

        let claims: serde_json::Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(assertion.split('.').nth(1).unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            claims["aud"],
            format!("{}/tenant/oauth2/v2.0/token", server.uri())
        );
        assert_eq!(claims["iss"], "client-1");
        assert_eq!(claims["sub"], "client-1");
        assert!(uuid::Uuid::parse_str(claims["jti"].as_str().unwrap()).is_ok());
        assert_eq!(claims["nbf"], now.unix_timestamp());
        assert_eq!(claims["iat"], now.unix_timestamp());
        assert_eq!(claims["exp"], now.unix_timestamp() + 600);
    }

    #[test]
    fn a_key_file_given_as_the_certificate_is_a_clear_configuration_error() {
        let credential = Credential::Certificate {
            certificate_pem: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
                .into(),
            private_key_pem: SecretString::from("x"),
        };
        let error = PreparedCredential::prepare(&credential)
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("BEGIN CERTIFICATE"), "{error}");
    }
}

/// Tokens as a whole Graph call meets them (against wiremock): cached across calls, refreshed once
/// on a 401 or for many concurrent calls, and the token endpoint's transient failures retried.
#[cfg(test)]
mod client_calls {
    #![allow(clippy::unwrap_used)]
    use crate::graph::client::GraphClient;
    use crate::graph::test_support::{
        JOB_PATH, Recorder, TOKEN_PATH, client_for, graph_error, job_json, options_for, token,
        token_endpoint,
    };
    use serde_json::json;
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    #[tokio::test]
    async fn a_401_forces_one_token_refresh_and_one_retry() {
        let server = MockServer::start().await;
        token_endpoint(&server, 2).await;
        Mock::given(method("GET"))
            .and(path(JOB_PATH))
            .respond_with(graph_error(401, "InvalidAuthenticationToken"))
            .expect(2)
            .mount(&server)
            .await;
        let recorder = Recorder::default();
        let error = client_for(&server, &recorder)
            .get_job("p1", "j1", &[])
            .await
            .unwrap_err();
        assert_eq!(
            error.status(),
            Some(401),
            "the second 401 is returned, not retried again"
        );
        assert_eq!(recorder.refreshes(), 2);
    }

    #[tokio::test]
    async fn the_token_is_cached_and_reused_across_calls() {
        let server = MockServer::start().await;
        token_endpoint(&server, 1).await;
        Mock::given(method("GET"))
            .and(path(JOB_PATH))
            .respond_with(ResponseTemplate::new(200).set_body_json(job_json()))
            .expect(5)
            .mount(&server)
            .await;
        let recorder = Recorder::default();
        let client = client_for(&server, &recorder);
        for _ in 0..5 {
            client.get_job("p1", "j1", &[]).await.unwrap();
        }
        assert_eq!(recorder.refreshes(), 1);
    }

    #[tokio::test]
    async fn concurrent_calls_with_an_expired_token_cause_exactly_one_refresh() {
        let server = MockServer::start().await;
        token_endpoint(&server, 2).await;
        Mock::given(method("GET"))
            .and(path(JOB_PATH))
            .respond_with(ResponseTemplate::new(200).set_body_json(job_json()))
            .mount(&server)
            .await;
        let recorder = Recorder::default();
        let clock = crate::clock::ManualClock::new(time::macros::datetime!(2026-03-01 12:00 UTC));
        let mut options = options_for(&server, &recorder);
        options.clock = clock.clone();
        let client = GraphClient::new(options).unwrap();
        client.get_job("p1", "j1", &[]).await.unwrap();
        clock.advance(time::Duration::hours(2));
        let calls = (0..10).map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.get_job("p1", "j1", &[]).await })
        });
        for call in futures::future::join_all(calls).await {
            call.unwrap().unwrap();
        }
        assert_eq!(
            recorder.refreshes(),
            2,
            "one initial token, one refresh for ten concurrent calls"
        );
    }

    #[tokio::test]
    async fn a_transient_token_endpoint_failure_is_retried_like_a_graph_call() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(TOKEN_PATH))
            .respond_with(
                ResponseTemplate::new(503)
                    .set_body_json(json!({"error": "temporarily_unavailable"})),
            )
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path(TOKEN_PATH))
            .respond_with(token("app-token", 3600))
            .with_priority(2)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(JOB_PATH))
            .and(header("authorization", "Bearer app-token"))
            .respond_with(ResponseTemplate::new(200).set_body_json(job_json()))
            .expect(1)
            .mount(&server)
            .await;
        let recorder = Recorder::default();
        client_for(&server, &recorder)
            .get_job("p1", "j1", &[])
            .await
            .unwrap();
        assert_eq!(recorder.refreshes(), 2);
        assert_eq!(recorder.sleeps().len(), 1);
    }
}
