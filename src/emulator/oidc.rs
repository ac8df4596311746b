//! OpenID Connect sign-in for the registered apps, as the Microsoft identity platform (Entra ID v2
//! endpoints) does it: the discovery document, the signing keys (JWKS), the authorization endpoint
//! with a sign-in page listing the tenant's people (rendered by `signin_page`), single-use
//! authorization codes bound to a PKCE challenge (RFC 7636), their redemption at the token endpoint
//! (`grant_type=authorization_code`) for a delegated access token and an RS256 ID token, and refresh
//! tokens (`grant_type=refresh_token`) when `offline_access` was asked for.
//!
//! Documented rules it follows: the redirect URI must be one registered for the app, and a request
//! with a bad client or redirect URI shows an error page and never redirects (AADSTS700016,
//! AADSTS50011); every other refusal is redirected back as `error`, `error_description` and `state`;
//! redirect URIs must use `https`, `http` being allowed for loopback hosts only, and carry no
//! fragment; a code lives 10 minutes and is redeemed once (a second redemption: `invalid_grant`,
//! AADSTS54005); the redemption names the same `redirect_uri` and a `code_verifier` whose SHA-256,
//! base64url-encoded, is the challenge; the client authenticates as for the other grants.
//!
//! Emulator choices where Entra's behaviour is not pinned down by the docs (or the emulator is
//! deliberately stricter):
//! - PKCE is required, with `code_challenge_method=S256`; `plain` (also the default when the method
//!   is left out) is refused, as is a challenge that is not 43 base64url characters.
//! - `scope` must contain `openid`; Graph scopes are given bare (`PrintJob.ReadWriteBasic`), as
//!   `{url}/PrintJob.ReadWriteBasic`, or as `{url}/.default` (every consented delegated
//!   permission). There is no consent screen: a Graph scope the app has not been consented is refused
//!   (`invalid_scope`, AADSTS65001), as at the device-code endpoint.
//! - Redirect URIs match exactly (case-sensitive, whole string): Entra's rule that ignores the port
//!   of a loopback redirect URI is not emulated, so a daemon must register the URI it really uses
//!   (`Control::add_redirect_uri`).
//! - `response_mode` is `query` only (`fragment` and `form_post` are refused); `prompt=none` is
//!   answered `login_required` (the emulator keeps no sign-in session); `prompt` may otherwise be
//!   `login`, `select_account` or `consent`; `state` and `nonce` are optional and echoed.
//! - A parameter given twice is refused with an error page (RFC 6749 forbids it; the request cannot
//!   be trusted enough to redirect).
//! - The sign-in page signs in any person of the emulated directory without a password; the
//!   person is not a Printer Administrator (the device-code approval is the way to get one).
//! - A redemption that finds the code burns it even if it then fails (wrong verifier, wrong
//!   redirect URI, expired): a leaked code gives one guess.
//! - The ID token always carries `name` and `preferred_username` (Entra adds them with the
//!   `profile` scope), plus `ver` 2.0, `tid`, `oid`, a pairwise `sub` (per app and person), the
//!   `nonce` when one was sent, and lives one hour; its header names the key (`kid`, the key's
//!   RFC 7638 thumbprint). The JWKS key has no `x5c`/`x5t` (there is no certificate).
//! - The RSA key pair (2048 bits) is drawn at the first request that needs it (discovery, keys, a
//!   token) rather than at start-up, so emulators that never sign anyone in do not pay for it.
//! - Refresh tokens live 90 days and are single-use: redeeming one returns a new one (Entra rotates
//!   them too, but lets the old one live on).
//! - Only the emulated tenant's id is accepted in the path (`common`, `organizations` and other
//!   tenants: AADSTS90002); the discovery document names only the endpoints the emulator serves.

use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use super::identity::{
    RequestedScopes, authenticate_client, entra_error, find_app, issue, requested_scopes,
    stable_guid,
};
use super::signin_page::{self, Person};
use super::{AppRegistration, Shared};

/// How long an authorization code can be redeemed (Entra: about 10 minutes).
const CODE_LIFETIME: time::Duration = time::Duration::minutes(10);
/// How long an ID token is valid.
const ID_TOKEN_LIFETIME: time::Duration = time::Duration::hours(1);
/// How long a refresh token is valid (Entra's default for confidential clients).
const REFRESH_LIFETIME: time::Duration = time::Duration::days(90);
/// The longest redirect URI Entra registers.
const MAX_REDIRECT_URI: usize = 256;

/// The parameters of an authorization request that the sign-in page carries to its POST.
const CARRIED: &[&str] = &[
    "client_id",
    "response_type",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "response_mode",
    "prompt",
    "login_hint",
    "domain_hint",
];

/// An RSA key pair that signs tokens, with its public half as a JWK.
pub(crate) struct SigningKey {
    pair: KeyPair,
    /// RFC 7638 thumbprint of the public key: the `kid`.
    pub kid: String,
    /// Modulus, base64url.
    n: String,
    /// Public exponent, base64url.
    e: String,
}

impl SigningKey {
    fn generate() -> Result<Self, String> {
        let pair = KeyPair::generate(KeySize::Rsa2048)
            .map_err(|_| "the RSA signing key could not be generated".to_owned())?;
        let public = pair.public_key();
        let n = URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero());
        let e = URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero());
        // RFC 7638: the members in lexicographic order, no white space.
        let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
        Ok(Self { pair, kid, n, e })
    }

    /// The key as the JWKS lists it.
    fn jwk(&self, issuer: &str) -> Value {
        json!({"kty": "RSA", "use": "sig", "kid": self.kid, "n": self.n, "e": self.e,
            "alg": "RS256", "issuer": issuer})
    }

    /// A compact RS256 JWS of `claims`, its header naming `kid`.
    fn sign(&self, kid: &str, claims: &Value) -> Result<String, String> {
        let header = json!({"typ": "JWT", "alg": "RS256", "kid": kid});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0u8; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &RSA_PKCS1_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| "the token could not be signed".to_owned())?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}

/// The emulator's signing key, and a second key that is not published (for forged tokens).
#[derive(Default)]
pub(crate) struct SigningKeys {
    own: OnceLock<Result<Arc<SigningKey>, String>>,
    other: OnceLock<Result<Arc<SigningKey>, String>>,
}

impl SigningKeys {
    /// The key the JWKS publishes, drawn on first use.
    pub fn own(&self) -> Result<Arc<SigningKey>, String> {
        self.own
            .get_or_init(|| SigningKey::generate().map(Arc::new))
            .clone()
    }

    /// A key nobody publishes: tokens it signs fail signature checks against the JWKS.
    pub fn other(&self) -> Result<Arc<SigningKey>, String> {
        self.other
            .get_or_init(|| SigningKey::generate().map(Arc::new))
            .clone()
    }
}

/// Signs `claims` with the emulator's key (`forged: false`) or with the unpublished one; either way
/// the header names the published key's `kid`, as a forger would.
pub(crate) fn sign_id_token(
    shared: &Shared,
    claims: &Value,
    forged: bool,
) -> Result<String, String> {
    let own = shared.signing_keys.own()?;
    let key = if forged {
        shared.signing_keys.other()?
    } else {
        Arc::clone(&own)
    };
    key.sign(&own.kid, claims)
}

/// An authorization code issued by the sign-in page.
#[derive(Debug, Clone)]
pub(crate) struct AuthCode {
    client_id: String,
    redirect_uri: String,
    upn: String,
    scopes: RequestedScopes,
    nonce: Option<String>,
    code_challenge: String,
    expires_at: OffsetDateTime,
    redeemed: bool,
}

/// A refresh token issued with `offline_access`.
#[derive(Debug, Clone)]
pub(crate) struct RefreshGrant {
    client_id: String,
    upn: String,
    scopes: RequestedScopes,
    expires_at: OffsetDateTime,
    used: bool,
}

/// A URL-safe random token of `bytes` random bytes.
fn random_token(bytes: usize) -> String {
    let mut raw = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut raw);
    URL_SAFE_NO_PAD.encode(raw)
}

fn wrong_tenant(tenant: &str, now: OffsetDateTime) -> Response {
    entra_error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        90_002,
        &format!(
            "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
        ),
        now,
    )
}

/// `GET /{tenant}/v2.0/.well-known/openid-configuration`.
pub(crate) async fn openid_configuration(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
) -> Response {
    if !tenant.eq_ignore_ascii_case(&shared.tenant_id) {
        return wrong_tenant(&tenant, shared.now());
    }
    let base = &shared.base;
    let t = &shared.tenant_id;
    Json(json!({
        "issuer": shared.issuer(),
        "authorization_endpoint": format!("{base}/{t}/oauth2/v2.0/authorize"),
        "token_endpoint": format!("{base}/{t}/oauth2/v2.0/token"),
        "device_authorization_endpoint": format!("{base}/{t}/oauth2/v2.0/devicecode"),
        "jwks_uri": format!("{base}/{t}/discovery/v2.0/keys"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials",
            "urn:ietf:params:oauth:grant-type:device_code"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "nonce", "name",
            "preferred_username", "oid", "tid", "ver"],
        "request_uri_parameter_supported": false,
        "tenant_region_scope": null,
        "cloud_instance_name": "emulator",
    }))
    .into_response()
}

/// `GET /{tenant}/discovery/v2.0/keys`.
pub(crate) async fn keys(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
) -> Response {
    let now = shared.now();
    if !tenant.eq_ignore_ascii_case(&shared.tenant_id) {
        return wrong_tenant(&tenant, now);
    }
    match shared.signing_keys.own() {
        Ok(key) => Json(json!({"keys": [key.jwk(&shared.issuer())]})).into_response(),
        Err(message) => server_error(&message, now),
    }
}

fn server_error(message: &str, now: OffsetDateTime) -> Response {
    entra_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "server_error",
        90_033,
        message,
        now,
    )
}

/// Why an authorization request was refused.
#[derive(Debug)]
enum Refusal {
    /// Shown as an error page: the redirect URI cannot be trusted (or the person must see it).
    Page { code: u32, message: String },
    /// Sent back to the (registered) redirect URI.
    Redirect {
        redirect_uri: String,
        error: &'static str,
        code: u32,
        message: String,
        state: Option<String>,
    },
}

/// A checked authorization request.
#[derive(Debug)]
struct AuthorizeRequest {
    client_id: String,
    redirect_uri: String,
    scopes: RequestedScopes,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: String,
    /// The recognised parameters, for the page's hidden fields.
    carried: Vec<(String, String)>,
}

/// Whether a redirect URI may be registered: Entra's restrictions.
pub(crate) fn check_redirect_uri(uri: &str) -> Result<(), String> {
    if uri.len() > MAX_REDIRECT_URI {
        return Err(format!(
            "a redirect URI has at most {MAX_REDIRECT_URI} characters"
        ));
    }
    if let Some(c) = uri.chars().find(|c| "!$'(),;".contains(*c)) {
        return Err(format!("a redirect URI cannot contain the character '{c}'"));
    }
    let url = url::Url::parse(uri).map_err(|e| format!("'{uri}' is not an absolute URI: {e}"))?;
    if url.fragment().is_some() {
        return Err("a redirect URI cannot carry a fragment".to_owned());
    }
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        "http" => Err(format!(
            "'{uri}': redirect URIs must use https (http is allowed for localhost and loopback addresses only)"
        )),
        other => Err(format!(
            "'{uri}': the scheme '{other}' is not a web redirect URI (https, or http on loopback)"
        )),
    }
}

/// Whether `uri` is registered for the app (at start or at run time).
fn is_registered(shared: &Shared, app: &AppRegistration, uri: &str) -> bool {
    app.redirect_uris.iter().any(|u| u == uri)
        || shared
            .world()
            .redirect_uris
            .get(&app.client_id)
            .is_some_and(|uris| uris.iter().any(|u| u == uri))
}

/// Checks an authorization request in Entra's order: what makes the redirect URI trustworthy first
/// (refused with a page), then the rest (refused with a redirect).
fn check_request(
    shared: &Shared,
    tenant: &str,
    pairs: &[(String, String)],
) -> Result<AuthorizeRequest, Refusal> {
    let page = |code: u32, message: String| Refusal::Page { code, message };
    if !tenant.eq_ignore_ascii_case(&shared.tenant_id) {
        return Err(page(
            90_002,
            format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
        ));
    }
    let mut params: HashMap<&str, &str> = HashMap::new();
    for (key, value) in pairs {
        if params.insert(key.as_str(), value.as_str()).is_some() {
            return Err(page(
                9_002_313,
                format!("Invalid request. The parameter '{key}' is given more than once."),
            ));
        }
    }
    let get = |k: &str| params.get(k).copied().filter(|v| !v.is_empty());
    let Some(client_id) = get("client_id") else {
        return Err(page(
            900_144,
            "The request body must contain the following parameter: 'client_id'.".to_owned(),
        ));
    };
    let Some(app) = find_app(shared, client_id) else {
        return Err(page(
            700_016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant."
            ),
        ));
    };
    let Some(redirect_uri) = get("redirect_uri") else {
        return Err(page(
            900_144,
            "The request body must contain the following parameter: 'redirect_uri'.".to_owned(),
        ));
    };
    if !is_registered(shared, app, redirect_uri) {
        return Err(page(
            50_011,
            format!(
                "The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs configured for the application '{client_id}'. Make sure the redirect URI sent in the request matches one added to your application in the Azure portal."
            ),
        ));
    }
    let state = get("state").map(str::to_owned);
    let back = |error: &'static str, code: u32, message: String| Refusal::Redirect {
        redirect_uri: redirect_uri.to_owned(),
        error,
        code,
        message,
        state: state.clone(),
    };
    match get("response_mode") {
        None | Some("query") => {}
        Some(mode) => {
            return Err(back(
                "invalid_request",
                9_002_313,
                format!("The response_mode '{mode}' is not supported by the emulator: use query."),
            ));
        }
    }
    match get("response_type") {
        Some("code") => {}
        Some(other) => {
            return Err(back(
                "unsupported_response_type",
                70_005,
                format!("The response_type '{other}' is not supported: use 'code'."),
            ));
        }
        None => {
            return Err(back(
                "invalid_request",
                900_144,
                "The request body must contain the following parameter: 'response_type'."
                    .to_owned(),
            ));
        }
    }
    let Some(scope) = get("scope") else {
        return Err(back(
            "invalid_request",
            900_144,
            "The request body must contain the following parameter: 'scope'.".to_owned(),
        ));
    };
    let scopes = requested_scopes(shared, app, scope).map_err(|name| {
        back(
            "invalid_scope",
            65_001,
            format!("The user or administrator has not consented to use the application with ID '{client_id}' for scope '{name}'."),
        )
    })?;
    if !scopes.oidc.iter().any(|s| s == "openid") {
        return Err(back(
            "invalid_scope",
            70_011,
            format!(
                "The provided value for the input parameter 'scope' is not valid: '{scope}' must contain openid (the emulator signs people in with OpenID Connect only)."
            ),
        ));
    }
    let Some(code_challenge) = get("code_challenge") else {
        return Err(back(
            "invalid_request",
            9_002_325,
            "Proof Key for Code Exchange is required: send code_challenge and code_challenge_method=S256.".to_owned(),
        ));
    };
    if get("code_challenge_method") != Some("S256") {
        return Err(back(
            "invalid_request",
            9_002_313,
            format!(
                "Invalid request. code_challenge_method must be S256 (got '{}'; the emulator refuses plain).",
                get("code_challenge_method").unwrap_or("plain")
            ),
        ));
    }
    if code_challenge.len() != 43
        || !code_challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(back(
            "invalid_request",
            9_002_313,
            "Invalid request. code_challenge must be the base64url (no padding) SHA-256 of the code verifier: 43 characters.".to_owned(),
        ));
    }
    match get("prompt") {
        None | Some("login" | "select_account" | "consent") => {}
        Some("none") => {
            return Err(back(
                "login_required",
                50_058,
                "A silent sign-in request was sent but no user is signed in.".to_owned(),
            ));
        }
        Some(other) => {
            return Err(back(
                "invalid_request",
                9_002_313,
                format!("Invalid request. The prompt value '{other}' is not valid."),
            ));
        }
    }
    let carried = CARRIED
        .iter()
        .filter_map(|k| get(k).map(|v| ((*k).to_owned(), v.to_owned())))
        .collect();
    Ok(AuthorizeRequest {
        client_id: client_id.to_owned(),
        redirect_uri: redirect_uri.to_owned(),
        scopes,
        state,
        nonce: get("nonce").map(str::to_owned),
        code_challenge: code_challenge.to_owned(),
        carried,
    })
}

/// A `302` to the redirect URI with `params` added to its query.
fn redirect(redirect_uri: &str, params: &[(&str, &str)]) -> Response {
    // The URI was registered and parsed when checked; a failure here cannot redirect safely.
    let Ok(mut url) = url::Url::parse(redirect_uri) else {
        return (StatusCode::BAD_REQUEST, "the redirect URI is not a URL").into_response();
    };
    {
        let mut query = url.query_pairs_mut();
        for (k, v) in params {
            query.append_pair(k, v);
        }
    }
    let mut response = StatusCode::FOUND.into_response();
    if let Ok(location) = HeaderValue::from_str(url.as_str()) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn refusal_response(shared: &Shared, refusal: Refusal) -> Response {
    let trace = uuid::Uuid::new_v4().to_string();
    match refusal {
        Refusal::Page { code, message } => signin_page::html(
            StatusCode::BAD_REQUEST,
            signin_page::error_page(code, &message, &trace),
        ),
        Refusal::Redirect {
            redirect_uri,
            error,
            code,
            message,
            state,
        } => {
            let description = format!(
                "AADSTS{code}: {message} Trace ID: {trace} Timestamp: {}",
                super::state::graph_time(shared.now())
            );
            let uri = format!("https://login.microsoftonline.com/error?code={code}");
            let mut params = vec![
                ("error", error),
                ("error_description", description.as_str()),
                ("error_uri", uri.as_str()),
            ];
            if let Some(state) = state.as_deref() {
                params.push(("state", state));
            }
            redirect(&redirect_uri, &params)
        }
    }
}

/// The people of the emulated directory, as the sign-in page lists them.
fn people(shared: &Shared) -> Vec<Person> {
    let mut people: Vec<Person> = shared
        .world()
        .users
        .iter()
        .map(|u| Person {
            upn: u.user_principal_name.clone(),
            name: u.display_name.clone(),
        })
        .collect();
    people.sort_by_key(|p| p.name.to_lowercase());
    people
}

/// `GET /{tenant}/oauth2/v2.0/authorize`: the sign-in page, or a refusal.
pub(crate) async fn authorize_page(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    match check_request(&shared, &tenant, &pairs) {
        Ok(request) => {
            let action = format!("/{}/oauth2/v2.0/authorize", shared.tenant_id);
            signin_page::html(
                StatusCode::OK,
                signin_page::sign_in_page(
                    &action,
                    &request.client_id,
                    &request.scopes.graph,
                    &request.carried,
                    &people(&shared),
                ),
            )
        }
        Err(refusal) => refusal_response(&shared, refusal),
    }
}

/// `POST /{tenant}/oauth2/v2.0/authorize`: the person chosen on the page (`upn`), or `cancel`.
/// The request is checked again: the hidden fields are no more trusted than the query was.
pub(crate) async fn authorize_sign_in(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Response {
    let all: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let (choice, pairs): (Vec<_>, Vec<_>) = all
        .into_iter()
        .partition(|(k, _)| k == "upn" || k == "cancel");
    let request = match check_request(&shared, &tenant, &pairs) {
        Ok(request) => request,
        Err(refusal) => return refusal_response(&shared, refusal),
    };
    if choice.iter().any(|(k, _)| k == "cancel") {
        return refusal_response(
            &shared,
            Refusal::Redirect {
                redirect_uri: request.redirect_uri,
                error: "access_denied",
                code: 65_004,
                message: "User declined to consent to access the app.".to_owned(),
                state: request.state,
            },
        );
    }
    let upn = choice
        .iter()
        .find(|(k, _)| k == "upn")
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    let known = shared
        .world()
        .users
        .iter()
        .find(|u| !upn.is_empty() && u.user_principal_name.eq_ignore_ascii_case(upn))
        .map(|u| u.user_principal_name.clone());
    let Some(upn) = known else {
        return refusal_response(
            &shared,
            Refusal::Page {
                code: 50_034,
                message: format!(
                    "The user account '{upn}' does not exist in the '{}' directory. To sign into this application, the account must be added to the directory.",
                    shared.tenant_id
                ),
            },
        );
    };
    let now = shared.now();
    let code = random_token(48);
    {
        let mut world = shared.world();
        // Codes long past their lifetime are forgotten; a recent one is kept to answer "expired".
        world
            .auth_codes
            .retain(|_, c| c.expires_at + time::Duration::hours(1) > now);
        world.auth_codes.insert(
            code.clone(),
            AuthCode {
                client_id: request.client_id,
                redirect_uri: request.redirect_uri.clone(),
                upn,
                scopes: request.scopes,
                nonce: request.nonce,
                code_challenge: request.code_challenge,
                expires_at: now + CODE_LIFETIME,
                redeemed: false,
            },
        );
    }
    let session_state = uuid::Uuid::new_v4().to_string();
    let mut params = vec![("code", code.as_str())];
    if let Some(state) = request.state.as_deref() {
        params.push(("state", state));
    }
    params.push(("session_state", session_state.as_str()));
    redirect(&request.redirect_uri, &params)
}

/// The directory's object id and display name for `upn` (stable made-up ones when it has none).
fn directory_person(shared: &Shared, upn: &str) -> (String, String) {
    shared
        .world()
        .users
        .iter()
        .find(|u| u.user_principal_name.eq_ignore_ascii_case(upn))
        .map_or_else(
            || (stable_guid(&format!("user:{upn}")), upn.to_owned()),
            |u| (u.id.clone(), u.display_name.clone()),
        )
}

/// The claims of an ID token issued now to `client_id` for `upn`.
pub(crate) fn id_token_claims(
    shared: &Shared,
    client_id: &str,
    upn: &str,
    nonce: Option<&str>,
) -> Value {
    let (oid, name) = directory_person(shared, upn);
    let iat = shared.now().unix_timestamp();
    // Entra's `sub` is pairwise: the same person has a different one in every app.
    let sub = URL_SAFE_NO_PAD.encode(Sha256::digest(format!("sub:{client_id}:{oid}").as_bytes()));
    let mut claims = json!({
        "ver": "2.0",
        "iss": shared.issuer(),
        "aud": client_id,
        "iat": iat,
        "nbf": iat,
        "exp": iat + ID_TOKEN_LIFETIME.whole_seconds(),
        "tid": shared.tenant_id,
        "oid": oid,
        "sub": sub,
        "name": name,
        "preferred_username": upn,
    });
    if let Some(nonce) = nonce {
        claims["nonce"] = json!(nonce);
    }
    claims
}

/// The token response for a person: access token, ID token (with `openid`), refresh token (with
/// `offline_access`).
fn tokens_for(
    shared: &Shared,
    app: &AppRegistration,
    upn: &str,
    scopes: &RequestedScopes,
    nonce: Option<&str>,
    now: OffsetDateTime,
) -> Response {
    let mut body = issue(shared, app, Some((upn, false, &scopes.graph)));
    let granted: Vec<&str> = scopes
        .graph
        .iter()
        .map(String::as_str)
        .chain(
            scopes
                .oidc
                .iter()
                .map(String::as_str)
                .filter(|s| *s != "offline_access"),
        )
        .collect();
    body["scope"] = json!(granted.join(" "));
    let forged = shared.world().next_id_token.take();
    if let Some(forged) = forged {
        body["id_token"] = json!(forged);
    } else if scopes.oidc.iter().any(|s| s == "openid") {
        let claims = id_token_claims(shared, &app.client_id, upn, nonce);
        match sign_id_token(shared, &claims, false) {
            Ok(token) => body["id_token"] = json!(token),
            Err(message) => return server_error(&message, now),
        }
    }
    if scopes.oidc.iter().any(|s| s == "offline_access") {
        let token = random_token(64);
        let mut world = shared.world();
        world.refresh_tokens.retain(|_, g| g.expires_at > now);
        world.refresh_tokens.insert(
            token.clone(),
            RefreshGrant {
                client_id: app.client_id.clone(),
                upn: upn.to_owned(),
                scopes: scopes.clone(),
                expires_at: now + REFRESH_LIFETIME,
                used: false,
            },
        );
        body["refresh_token"] = json!(token);
    }
    let mut response = (StatusCode::OK, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn missing(parameter: &str, now: OffsetDateTime) -> Response {
    entra_error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        900_144,
        &format!("The request body must contain the following parameter: '{parameter}'."),
        now,
    )
}

fn invalid_grant(code: u32, message: &str, now: OffsetDateTime) -> Response {
    entra_error(StatusCode::BAD_REQUEST, "invalid_grant", code, message, now)
}

/// `grant_type=authorization_code` at the token endpoint.
pub(crate) fn redeem_code(
    shared: &Shared,
    app: &AppRegistration,
    tenant: &str,
    params: &HashMap<String, String>,
    now: OffsetDateTime,
) -> Response {
    if let Err(refusal) = authenticate_client(shared, app, tenant, params, now) {
        return *refusal;
    }
    let get = |k: &str| params.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let Some(code) = get("code") else {
        return missing("code", now);
    };
    let found = {
        let mut world = shared.world();
        match world
            .auth_codes
            .get_mut(code)
            .filter(|c| c.client_id == app.client_id)
        {
            None => None,
            Some(c) if c.redeemed => Some(Err(())),
            Some(c) => {
                c.redeemed = true;
                Some(Ok(c.clone()))
            }
        }
    };
    let grant = match found {
        None => {
            return invalid_grant(
                70_000,
                "The provided value for the 'code' parameter is not valid.",
                now,
            );
        }
        Some(Err(())) => {
            return invalid_grant(
                54_005,
                "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.",
                now,
            );
        }
        Some(Ok(grant)) => grant,
    };
    if now >= grant.expires_at {
        return invalid_grant(
            70_008,
            "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.",
            now,
        );
    }
    let Some(redirect_uri) = get("redirect_uri") else {
        return missing("redirect_uri", now);
    };
    if redirect_uri != grant.redirect_uri {
        return invalid_grant(
            70_000,
            &format!(
                "The redirect_uri '{redirect_uri}' is not the one the authorization code was issued for."
            ),
            now,
        );
    }
    let Some(verifier) = get("code_verifier") else {
        return missing("code_verifier", now);
    };
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let verifier_ok = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
        && bool::from(computed.as_bytes().ct_eq(grant.code_challenge.as_bytes()));
    if !verifier_ok {
        return invalid_grant(
            50_148,
            "The code_verifier does not match the code_challenge supplied in the authorization request for PKCE.",
            now,
        );
    }
    tokens_for(
        shared,
        app,
        &grant.upn,
        &grant.scopes,
        grant.nonce.as_deref(),
        now,
    )
}

/// `grant_type=refresh_token` at the token endpoint.
pub(crate) fn redeem_refresh_token(
    shared: &Shared,
    app: &AppRegistration,
    tenant: &str,
    params: &HashMap<String, String>,
    now: OffsetDateTime,
) -> Response {
    if let Err(refusal) = authenticate_client(shared, app, tenant, params, now) {
        return *refusal;
    }
    let Some(token) = params
        .get("refresh_token")
        .map(String::as_str)
        .filter(|v| !v.is_empty())
    else {
        return missing("refresh_token", now);
    };
    let narrowed = match params.get("scope").map(String::as_str) {
        Some(scope) if !scope.trim().is_empty() => match requested_scopes(shared, app, scope) {
            Ok(scopes) => Some(scopes),
            Err(name) => {
                return entra_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_scope",
                    65_001,
                    &format!(
                        "The user or administrator has not consented to use the application with ID '{}' for scope '{name}'.",
                        app.client_id
                    ),
                    now,
                );
            }
        },
        _ => None,
    };
    let grant = {
        let mut world = shared.world();
        let Some(grant) = world
            .refresh_tokens
            .get_mut(token)
            .filter(|g| g.client_id == app.client_id)
        else {
            return invalid_grant(70_000, "The refresh token is not valid.", now);
        };
        if grant.used {
            return invalid_grant(
                70_000,
                "The refresh token was already redeemed (the emulator's refresh tokens are single-use: use the one returned with it).",
                now,
            );
        }
        if now >= grant.expires_at {
            return invalid_grant(
                700_082,
                "The refresh token has expired due to inactivity.",
                now,
            );
        }
        grant.used = true;
        grant.clone()
    };
    let scopes = match narrowed {
        Some(asked) => {
            let within = asked.graph.iter().all(|s| grant.scopes.graph.contains(s))
                && asked.oidc.iter().all(|s| grant.scopes.oidc.contains(s));
            if !within {
                return entra_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_scope",
                    70_011,
                    "The provided value for the input parameter 'scope' is not valid: a refresh can only narrow the scopes of the sign-in.",
                    now,
                );
            }
            asked
        }
        None => grant.scopes.clone(),
    };
    tokens_for(shared, app, &grant.upn, &scopes, None, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_follow_entras_restrictions() {
        assert!(check_redirect_uri("https://kiosk.contoso.example/auth/callback").is_ok());
        assert!(check_redirect_uri("http://127.0.0.1:8080/callback").is_ok());
        assert!(check_redirect_uri("http://localhost/callback").is_ok());
        assert!(check_redirect_uri("http://[::1]:9/cb").is_ok());
        assert!(check_redirect_uri("http://192.168.1.20:8080/callback").is_err());
        assert!(check_redirect_uri("https://a.example/cb#frag").is_err());
        assert!(check_redirect_uri("https://a.example/cb;x").is_err());
        assert!(check_redirect_uri("/relative").is_err());
        assert!(check_redirect_uri(&format!("https://a.example/{}", "x".repeat(300))).is_err());
    }

    #[test]
    fn a_signing_key_has_its_rfc7638_thumbprint_as_kid_and_signs_verifiable_tokens() {
        let key = SigningKey::generate().expect("key");
        let token = key
            .sign(&key.kid, &json!({"aud": "x", "exp": 4_102_444_800_i64}))
            .expect("signed");
        let header = jsonwebtoken::decode_header(&token).expect("header");
        assert_eq!(header.kid.as_deref(), Some(key.kid.as_str()));
        let decoding = jsonwebtoken::DecodingKey::from_rsa_components(&key.n, &key.e).expect("jwk");
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.set_audience(&["x"]);
        jsonwebtoken::decode::<Value>(&token, &decoding, &validation).expect("verifies");
        assert_eq!(key.kid.len(), 43);
    }
}
