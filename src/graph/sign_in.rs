//! A person's Entra ID sign-in at a release station (the phone's QR release and "Sign in with
//! Microsoft" at the kiosk): the OpenID Connect authorization code flow with PKCE, the daemon a
//! confidential client of its own app registration.
//!
//! What it owns: the provider's metadata (`{login}/{tenant}/v2.0/.well-known/openid-configuration`,
//! read once and kept), its signing keys (the `jwks_uri`, read again when a token names a key not
//! seen yet, at most once a minute), the authorize URL, the code redemption (client secret or
//! certificate assertion, as for the app token, plus the PKCE verifier) and the ID token's checks:
//! RS256 signature by a key of the tenant's JWKS, issuer equal to the metadata's, audience equal to
//! our client id, the nonce the flow started with, and expiry and not-before judged by the injected
//! clock (five minutes of skew allowed, as Microsoft's libraries do).
//!
//! Invariants: no refresh token is ever asked for (`offline_access` is never requested) nor kept;
//! the delegated access token is handed to the caller as a `SecretString` and never logged; nothing
//! of a token appears in an error.

use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use secrecy::SecretString;
use serde::Deserialize;
use time::{Duration, OffsetDateTime};
use url::Url;

use super::auth::{OAuthErrorBody, token_error};
use super::client::GraphClient;
use super::device_code::DelegatedToken;
use super::error::GraphError;

/// The clock skew tolerated on `exp`, `nbf` and `iat`.
const SKEW: Duration = Duration::minutes(5);
/// The shortest wait between two reads of the signing keys (a token with an unknown `kid` must not
/// make every request read them).
const KEYS_REFRESH_MIN: Duration = Duration::minutes(1);

/// The provider's metadata, as far as the flow needs it.
#[derive(Debug, Clone, Deserialize)]
struct Metadata {
    issuer: String,
    authorization_endpoint: Url,
    token_endpoint: Url,
    jwks_uri: Url,
}

#[derive(Debug, Clone, Deserialize)]
struct Jwks {
    #[serde(default)]
    keys: Vec<Jwk>,
}

#[derive(Debug, Clone, Deserialize)]
struct Jwk {
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    kty: String,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
}

#[derive(Default)]
struct Cached {
    metadata: Option<Metadata>,
    keys: Vec<Jwk>,
    keys_read_at: Option<OffsetDateTime>,
}

/// The Entra ID sign-in of people, for one app registration. Cheap to share behind an `Arc`.
pub struct PersonSignIn {
    graph: GraphClient,
    cache: tokio::sync::Mutex<Cached>,
    /// The Graph scopes asked for (delegated), besides `openid profile`.
    scopes: String,
}

impl std::fmt::Debug for PersonSignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersonSignIn").finish_non_exhaustive()
    }
}

/// What the authorize request carries besides the app's own settings.
#[derive(Debug, Clone)]
pub struct AuthorizeRequest<'a> {
    /// Where Entra ID sends the person back (`{public_url}/phone/callback`).
    pub redirect_uri: &'a Url,
    /// Ties the answer to the flow that asked (random, single use).
    pub state: &'a str,
    /// Echoed in the ID token (random, single use).
    pub nonce: &'a str,
    /// The PKCE verifier; only its S256 challenge is sent.
    pub verifier: &'a str,
    /// At a shared kiosk: Entra ID must ask for the person's credentials, never reuse a sign-in.
    pub at_kiosk: bool,
}

/// The person a verified ID token names, and their delegated Graph token.
#[derive(Debug, Clone)]
pub struct SignedInPerson {
    /// The object id (`oid`).
    pub object_id: String,
    /// `preferred_username` (the UPN for work accounts).
    pub upn: String,
    /// `name`, or the UPN.
    pub display_name: String,
    /// The delegated access token, for the person's own print jobs.
    pub token: DelegatedToken,
}

/// Why a sign-in did not complete. The text names the problem and never quotes a token.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// Entra ID or the network failed (retry later).
    #[error("{0}")]
    Graph(#[from] GraphError),
    /// The ID token failed a check; the reason is safe to show and to audit.
    #[error("the ID token was refused: {0}")]
    Token(String),
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: SecretString,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
    #[serde(default)]
    id_token: Option<String>,
    #[serde(default)]
    scope: Option<String>,
}

#[derive(Debug, Deserialize)]
struct IdClaims {
    #[serde(default)]
    oid: Option<String>,
    #[serde(default)]
    preferred_username: Option<String>,
    #[serde(default)]
    upn: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    nonce: Option<String>,
    exp: i64,
    #[serde(default)]
    nbf: Option<i64>,
    #[serde(default)]
    iat: Option<i64>,
}

/// The S256 challenge of a PKCE verifier (RFC 7636 §4.2).
pub fn pkce_challenge(verifier: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier))
}

fn transport(operation: &'static str) -> impl Fn(reqwest::Error) -> GraphError {
    move |error: reqwest::Error| GraphError::Transport {
        operation,
        timed_out: error.is_timeout(),
        detail: error.without_url().to_string(),
        client_request_id: "n/a".to_owned(),
    }
}

fn invalid(operation: &'static str, status: u16, detail: String) -> GraphError {
    GraphError::InvalidResponse {
        operation,
        status,
        detail,
        client_request_id: "n/a".to_owned(),
    }
}

impl PersonSignIn {
    /// Sign-in through `graph`'s app registration, asking for `scopes` (space-separated delegated
    /// Graph scopes) besides `openid profile`.
    pub fn new(graph: GraphClient, scopes: impl Into<String>) -> Self {
        Self {
            graph,
            cache: tokio::sync::Mutex::new(Cached::default()),
            scopes: scopes.into(),
        }
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        operation: &'static str,
        url: Url,
    ) -> Result<T, GraphError> {
        let response = self
            .graph
            .http()
            .get(url)
            .send()
            .await
            .map_err(transport(operation))?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(transport(operation))?;
        if !(200..300).contains(&status) {
            return Err(invalid(
                operation,
                status,
                format!("Entra ID answered HTTP {status}"),
            ));
        }
        serde_json::from_slice(&body).map_err(|error| invalid(operation, status, error.to_string()))
    }

    async fn metadata(&self) -> Result<Metadata, GraphError> {
        let mut cache = self.cache.lock().await;
        if let Some(metadata) = &cache.metadata {
            return Ok(metadata.clone());
        }
        let inner = &self.graph.inner;
        let url = super::clouds::join_segments(
            &inner.endpoints.login,
            &[
                &inner.tenant_id,
                "v2.0",
                ".well-known",
                "openid-configuration",
            ],
        )?;
        let metadata: Metadata = self.get_json("openid_configuration", url).await?;
        cache.metadata = Some(metadata.clone());
        Ok(metadata)
    }

    /// The URL to send the person to, for a flow with these `state`, `nonce` and verifier.
    pub async fn authorize_url(&self, request: &AuthorizeRequest<'_>) -> Result<Url, GraphError> {
        let metadata = self.metadata().await?;
        let mut url = metadata.authorization_endpoint;
        url.query_pairs_mut()
            .append_pair("client_id", &self.graph.inner.client_id)
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", request.redirect_uri.as_str())
            .append_pair("response_mode", "query")
            .append_pair("scope", &format!("openid profile {}", self.scopes))
            .append_pair("state", request.state)
            .append_pair("nonce", request.nonce)
            .append_pair("code_challenge", &pkce_challenge(request.verifier))
            .append_pair("code_challenge_method", "S256")
            // A shared kiosk must never sign in whoever used it last; a phone is its owner's, who
            // still picks the account.
            .append_pair(
                "prompt",
                if request.at_kiosk {
                    "login"
                } else {
                    "select_account"
                },
            );
        Ok(url)
    }

    /// Redeems the authorization `code` and checks the ID token against `nonce`.
    pub async fn redeem(
        &self,
        code: &str,
        redirect_uri: &Url,
        verifier: &str,
        nonce: &str,
    ) -> Result<SignedInPerson, SignInError> {
        const OPERATION: &str = "redeem_code";
        let metadata = self.metadata().await?;
        let inner = &self.graph.inner;
        let mut form: Vec<(&str, String)> = vec![
            ("client_id", inner.client_id.clone()),
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.to_owned()),
            ("redirect_uri", redirect_uri.to_string()),
            ("code_verifier", verifier.to_owned()),
            ("scope", format!("openid profile {}", self.scopes)),
        ];
        form.extend(
            inner
                .tokens
                .client_authentication(metadata.token_endpoint.as_str())?,
        );
        let response = self
            .graph
            .http()
            .post(metadata.token_endpoint.clone())
            .form(&form)
            .send()
            .await
            .map_err(transport(OPERATION))?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(transport(OPERATION))?;
        if !(200..300).contains(&status) {
            let error: OAuthErrorBody = serde_json::from_slice(&body).unwrap_or_default();
            return Err(token_error(status, error).into());
        }
        let answer: TokenAnswer = serde_json::from_slice(&body).map_err(|error| {
            invalid(OPERATION, status, format!("not a token response: {error}"))
        })?;
        let id_token = answer.id_token.ok_or_else(|| {
            SignInError::Token("Entra ID sent no ID token (was `openid` consented?)".to_owned())
        })?;
        let claims = self.verify(&id_token, &metadata, nonce).await?;
        let upn = claims
            .preferred_username
            .or(claims.upn)
            .filter(|u| !u.trim().is_empty())
            .ok_or_else(|| {
                SignInError::Token(
                    "it names no person (no preferred_username); add the optional claim".to_owned(),
                )
            })?;
        let object_id = claims
            .oid
            .ok_or_else(|| SignInError::Token("it carries no oid".to_owned()))?;
        let lifetime = super::auth::token_lifetime(answer.expires_in.as_ref());
        Ok(SignedInPerson {
            object_id,
            display_name: claims.name.unwrap_or_else(|| upn.clone()),
            upn,
            token: DelegatedToken {
                access_token: answer.access_token,
                expires_at: inner.clock.now().saturating_add(lifetime),
                scopes: super::device_code::granted_scopes(answer.scope.as_deref()),
            },
        })
    }

    /// Checks an ID token: signature, issuer, audience, nonce, time.
    async fn verify(
        &self,
        id_token: &str,
        metadata: &Metadata,
        nonce: &str,
    ) -> Result<IdClaims, SignInError> {
        let header = decode_header(id_token)
            .map_err(|_| SignInError::Token("it is not a JWT".to_owned()))?;
        if header.alg != Algorithm::RS256 {
            return Err(SignInError::Token(format!(
                "it is signed with {:?}, not RS256",
                header.alg
            )));
        }
        let kid = header
            .kid
            .ok_or_else(|| SignInError::Token("its header names no key (kid)".to_owned()))?;
        let key = self.key(&kid, metadata).await?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&[&self.graph.inner.client_id]);
        validation.set_issuer(&[&metadata.issuer]);
        // Time is judged below by the injected clock, not the system's.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let claims = decode::<IdClaims>(id_token, &key, &validation)
            .map_err(|error| {
                use jsonwebtoken::errors::ErrorKind;
                SignInError::Token(
                    match error.kind() {
                        ErrorKind::InvalidAudience => "it was issued to another app (audience)",
                        ErrorKind::InvalidIssuer => "it was issued by another tenant (issuer)",
                        ErrorKind::InvalidSignature => "its signature does not verify",
                        ErrorKind::MissingRequiredClaim(_) => "a required claim is missing",
                        _ => "it is malformed",
                    }
                    .to_owned(),
                )
            })?
            .claims;
        let now = self.graph.inner.clock.now().unix_timestamp();
        let skew = SKEW.whole_seconds();
        if claims.exp + skew <= now {
            return Err(SignInError::Token("it has expired".to_owned()));
        }
        if claims
            .nbf
            .or(claims.iat)
            .is_some_and(|nbf| nbf - skew > now)
        {
            return Err(SignInError::Token("it is not valid yet".to_owned()));
        }
        let nonce_ok = claims
            .nonce
            .as_deref()
            .is_some_and(|n| crate::secrets::constant_time_eq(n, nonce));
        if !nonce_ok {
            return Err(SignInError::Token(
                "its nonce is not this sign-in's (replayed or tampered)".to_owned(),
            ));
        }
        Ok(claims)
    }

    /// The signing key `kid`, reading the keys again if it is not known yet.
    async fn key(&self, kid: &str, metadata: &Metadata) -> Result<DecodingKey, SignInError> {
        let mut cache = self.cache.lock().await;
        let now = self.graph.inner.clock.now();
        let find = |keys: &[Jwk]| keys.iter().find(|k| k.kid.as_deref() == Some(kid)).cloned();
        let mut found = find(&cache.keys);
        let may_read = cache
            .keys_read_at
            .is_none_or(|at| now - at >= KEYS_REFRESH_MIN);
        if found.is_none() && may_read {
            let jwks: Jwks = self.get_json("jwks", metadata.jwks_uri.clone()).await?;
            cache.keys = jwks.keys;
            cache.keys_read_at = Some(now);
            found = find(&cache.keys);
        }
        let jwk = found.ok_or_else(|| {
            SignInError::Token("it is signed by a key the tenant does not publish".to_owned())
        })?;
        match (jwk.kty.as_str(), jwk.n.as_deref(), jwk.e.as_deref()) {
            ("RSA", Some(n), Some(e)) => DecodingKey::from_rsa_components(n, e).map_err(|_| {
                SignInError::Token("the tenant's key for it is not a usable RSA key".to_owned())
            }),
            _ => Err(SignInError::Token(
                "the tenant's key for it is not an RSA key".to_owned(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pkce_challenge_is_the_rfc_7636_example() {
        // RFC 7636, Appendix B.
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }
}
