//! The Entra ID side: the token endpoint (client secret, client assertion with a certificate,
//! device code; the authorization code and refresh token grants are `oidc`'s), the access tokens it
//! issues, and the checks every Graph call makes on them.
//!
//! Tokens are HS256 JWTs signed with a key drawn at start-up, so only this emulator's tokens pass.
//! App-only tokens carry `roles` (the app's granted application permissions); delegated tokens carry
//! `scp`, `upn` and `wids` (role template ids; the Printer Administrator's marks an admin).
//!
//! Strict choices where Entra's behaviour is not pinned down by our sources:
//! - a client assertion must carry `x5t#S256` (SHA-256 thumbprint of the certificate DER); the
//!   SHA-1 `x5t` alone is refused;
//! - the client-credentials `scope` must be exactly `{emulator url}/.default`;
//! - the device-code flow issues no refresh token, and a device code can be redeemed once;
//! - every token and assertion time is judged by the emulator's clock (which control can advance).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, decode_header, encode,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use super::graph_error::GraphError;
use super::oidc;
use super::state::graph_time;
use super::{AppRegistration, Shared};

/// Role template id of the Printer Administrator directory role.
pub const PRINTER_ADMINISTRATOR_ROLE: &str = "644ef478-e28f-4e28-b9dc-3fdde9aa0b1f";

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// The claims of an access token the emulator issues.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct AccessClaims {
    aud: String,
    iss: String,
    tid: String,
    appid: String,
    oid: String,
    iat: i64,
    nbf: i64,
    exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    roles: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    upn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    wids: Option<Vec<String>>,
}

/// The claims of a client assertion the emulator checks.
#[derive(Debug, Deserialize)]
struct AssertionClaims {
    exp: i64,
    #[serde(default)]
    nbf: Option<i64>,
}

/// Who is calling Graph, from a verified token.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    /// The app (client id) the token was issued to.
    pub app_id: String,
    /// Application permissions (app-only tokens).
    pub roles: Vec<String>,
    /// The signed-in user (delegated tokens).
    pub delegated: Option<DelegatedUser>,
}

/// The user behind a delegated token.
#[derive(Debug, Clone)]
pub(crate) struct DelegatedUser {
    pub scopes: Vec<String>,
    pub upn: String,
    pub admin: bool,
}

/// What an operation requires of the caller (least-privileged tables of the docs).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Permission {
    /// Application permissions, any one of which suffices; `None`: "Application: Not supported".
    pub app: Option<&'static [&'static str]>,
    /// A second application permission the page also demands ("…and either Printer.Read.All or…").
    pub app_also: Option<&'static [&'static str]>,
    /// Delegated scopes, any one of which suffices; `None`: delegated not supported.
    pub delegated: Option<&'static [&'static str]>,
    /// A delegated caller must be a Printer Administrator.
    pub admin: bool,
}

/// A device code issued by `/devicecode`.
#[derive(Debug, Clone)]
pub(crate) struct DeviceCode {
    client_id: String,
    scopes: Vec<String>,
    pub user_code: String,
    expires_at: OffsetDateTime,
    interval: time::Duration,
    last_poll: Option<OffsetDateTime>,
    status: DeviceStatus,
}

#[derive(Debug, Clone)]
enum DeviceStatus {
    Pending,
    Approved { upn: String, admin: bool },
    Declined,
    Redeemed,
}

/// A GUID-shaped id derived from `seed`: stable object ids for apps and users without a directory.
pub(crate) fn stable_guid(seed: &str) -> String {
    let d = Sha256::digest(seed.as_bytes());
    let h: String = d.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Entra's error shape.
pub(crate) fn entra_error(
    status: StatusCode,
    error: &str,
    code: u32,
    description: &str,
    now: OffsetDateTime,
) -> Response {
    let trace = uuid::Uuid::new_v4().to_string();
    let correlation = uuid::Uuid::new_v4().to_string();
    let timestamp = graph_time(now);
    let body = json!({
        "error": error,
        "error_description": format!("AADSTS{code}: {description} Trace ID: {trace} Correlation ID: {correlation} Timestamp: {timestamp}"),
        "error_codes": [code],
        "timestamp": timestamp,
        "trace_id": trace,
        "correlation_id": correlation,
        "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
    });
    (status, Json(body)).into_response()
}

fn form(body: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

pub(crate) fn find_app<'a>(shared: &'a Shared, client_id: &str) -> Option<&'a AppRegistration> {
    shared.apps.iter().find(|a| a.client_id == client_id)
}

/// Issues an access token: app-only (`user` is `None`) or delegated for `(upn, printer admin, scopes)`.
pub(crate) fn issue(
    shared: &Shared,
    app: &AppRegistration,
    user: Option<(&str, bool, &[String])>,
) -> Value {
    let now = shared.now();
    let lifetime = shared.token_lifetime();
    let iat = now.unix_timestamp();
    let exp = iat + i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX / 2);
    let (roles, scp, upn, wids, oid) = match user {
        None => (
            Some(app.application_permissions.clone()),
            None,
            None,
            None,
            stable_guid(&format!("sp:{}", app.client_id)),
        ),
        Some((upn, admin, scopes)) => {
            let oid = shared
                .world()
                .users
                .iter()
                .find(|u| u.user_principal_name.eq_ignore_ascii_case(upn))
                .map_or_else(|| stable_guid(&format!("user:{upn}")), |u| u.id.clone());
            let wids = if admin {
                vec![PRINTER_ADMINISTRATOR_ROLE.to_owned()]
            } else {
                Vec::new()
            };
            (
                None,
                Some(scopes.join(" ")),
                Some(upn.to_owned()),
                Some(wids),
                oid,
            )
        }
    };
    let claims = AccessClaims {
        aud: shared.base.clone(),
        iss: shared.issuer(),
        tid: shared.tenant_id.clone(),
        appid: app.client_id.clone(),
        oid,
        iat,
        nbf: iat,
        exp,
        roles,
        scp: scp.clone(),
        upn,
        wids,
    };
    let token = encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(&shared.token_key),
    )
    .unwrap_or_default();
    let mut v = json!({"token_type": "Bearer", "expires_in": lifetime.as_secs(), "ext_expires_in": lifetime.as_secs(), "access_token": token});
    if let Some(scp) = scp {
        v["scope"] = json!(scp);
    }
    v
}

/// `POST /{tenant}/oauth2/v2.0/token`.
pub(crate) async fn token(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Response {
    let now = shared.now();
    if !tenant.eq_ignore_ascii_case(&shared.tenant_id) {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            &format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
            now,
        );
    }
    if shared.fault_engine().token_fails() {
        return entra_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            90033,
            "A transient error has occurred. Please try again.",
            now,
        );
    }
    let params = form(&body);
    let get = |k: &str| params.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let Some(client_id) = get("client_id") else {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'client_id'.",
            now,
        );
    };
    let Some(app) = find_app(&shared, client_id) else {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            &format!(
                "Application with identifier '{client_id}' was not found in the directory '{tenant}'."
            ),
            now,
        );
    };
    match get("grant_type") {
        Some("client_credentials") => client_credentials(&shared, app, &tenant, &params, now),
        Some(DEVICE_CODE_GRANT) => {
            redeem_device_code(&shared, app, get("device_code").unwrap_or_default(), now)
        }
        Some("authorization_code") => oidc::redeem_code(&shared, app, &tenant, &params, now),
        Some("refresh_token") => oidc::redeem_refresh_token(&shared, app, &tenant, &params, now),
        Some(other) => entra_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            &format!("The app requested an unsupported grant type '{other}'."),
            now,
        ),
        None => entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'grant_type'.",
            now,
        ),
    }
}

fn client_credentials(
    shared: &Shared,
    app: &AppRegistration,
    tenant: &str,
    params: &HashMap<String, String>,
    now: OffsetDateTime,
) -> Response {
    let expected_scope = format!("{}/.default", shared.base);
    let scope = params.get("scope").map(String::as_str).unwrap_or_default();
    if scope != expected_scope {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1_002_012,
            &format!(
                "The provided value for scope '{scope}' is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier: '{expected_scope}'."
            ),
            now,
        );
    }
    if let Err(refusal) = authenticate_client(shared, app, tenant, params, now) {
        return *refusal;
    }
    (StatusCode::OK, Json(issue(shared, app, None))).into_response()
}

/// Checks a confidential client's credential: a client secret or a certificate assertion, the same
/// for every grant that authenticates the client (client credentials, authorization code, refresh
/// token). The refusal is Entra's answer, ready to send (boxed: it is large beside `()`).
pub(crate) fn authenticate_client(
    shared: &Shared,
    app: &AppRegistration,
    tenant: &str,
    params: &HashMap<String, String>,
    now: OffsetDateTime,
) -> Result<(), Box<Response>> {
    if let Some(secret) = params.get("client_secret") {
        let ok = app
            .client_secret
            .as_ref()
            .is_some_and(|s| bool::from(s.as_bytes().ct_eq(secret.as_bytes())));
        if !ok {
            return Err(Box::new(entra_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7_000_215,
                &format!(
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.",
                    app.client_id
                ),
                now,
            )));
        }
    } else if let Some(assertion) = params.get("client_assertion") {
        if params.get("client_assertion_type").map(String::as_str) != Some(JWT_BEARER) {
            return Err(Box::new(entra_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                700_023,
                &format!("client_assertion_type must be '{JWT_BEARER}'."),
                now,
            )));
        }
        let audience = format!("{}/{tenant}/oauth2/v2.0/token", shared.base);
        if let Err((code, message)) = verify_assertion(app, assertion, &audience, now) {
            return Err(Box::new(entra_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                code,
                &message,
                now,
            )));
        }
    } else {
        return Err(Box::new(entra_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7_000_218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            now,
        )));
    }
    Ok(())
}

/// The scopes OpenID Connect defines; they ask for sign-in and claims, not for Graph permissions.
pub(crate) const OIDC_SCOPES: &[&str] = &["openid", "profile", "offline_access", "email"];

/// A `scope` parameter split into the OpenID Connect scopes and the Graph (delegated) permissions it
/// asks for; `{url}/.default` stands for every delegated permission consented for the app.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RequestedScopes {
    pub oidc: Vec<String>,
    pub graph: Vec<String>,
}

/// Splits `scope`; `Err(name)` names a Graph scope the app has not been consented (AADSTS65001).
pub(crate) fn requested_scopes(
    shared: &Shared,
    app: &AppRegistration,
    scope: &str,
) -> Result<RequestedScopes, String> {
    let mut requested = RequestedScopes::default();
    for scope in scope.split_whitespace() {
        if OIDC_SCOPES.contains(&scope) {
            if !requested.oidc.iter().any(|s| s == scope) {
                requested.oidc.push(scope.to_owned());
            }
            continue;
        }
        let name = scope
            .strip_prefix(&format!("{}/", shared.base))
            .unwrap_or(scope);
        let names: Vec<&String> = if name == ".default" {
            app.delegated_permissions.iter().collect()
        } else if let Some(p) = app.delegated_permissions.iter().find(|p| *p == name) {
            vec![p]
        } else {
            return Err(name.to_owned());
        };
        for name in names {
            if !requested.graph.contains(name) {
                requested.graph.push(name.clone());
            }
        }
    }
    Ok(requested)
}

/// Checks a client assertion against the app's registered certificate.
fn verify_assertion(
    app: &AppRegistration,
    assertion: &str,
    audience: &str,
    now: OffsetDateTime,
) -> Result<(), (u32, String)> {
    let Some(certificate) = app.certificate_pem.as_deref() else {
        return Err((
            700_027,
            "No certificate is registered on the application.".to_owned(),
        ));
    };
    let der = pem::parse(certificate).map_err(|e| {
        (
            700_027,
            format!("The registered certificate cannot be read: {e}."),
        )
    })?;
    let thumbprint = URL_SAFE_NO_PAD.encode(Sha256::digest(der.contents()));
    let header = decode_header(assertion).map_err(|e| {
        (
            50_012,
            format!("The client assertion is not a valid JWT: {e}."),
        )
    })?;
    if header.x5t_s256.as_deref() != Some(thumbprint.as_str()) {
        return Err((700_027, "The certificate with identifier used to sign the client assertion is not registered on application (x5t#S256 does not match).".to_owned()));
    }
    if !matches!(header.alg, Algorithm::RS256 | Algorithm::PS256) {
        return Err((
            700_027,
            "Client assertion must be signed with RS256 or PS256.".to_owned(),
        ));
    }
    let key = DecodingKey::from_rsa_pem(certificate.as_bytes()).map_err(|e| {
        (
            700_027,
            format!("The registered certificate holds no usable RSA key: {e}."),
        )
    })?;
    let mut validation = Validation::new(header.alg);
    validation.validate_exp = false;
    validation.set_audience(&[audience]);
    validation.set_issuer(&[&app.client_id]);
    validation.sub = Some(app.client_id.clone());
    validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
    let data = decode::<AssertionClaims>(assertion, &key, &validation).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind;
        match e.kind() {
            ErrorKind::InvalidAudience => (
                50_013,
                format!("Assertion audience claim does not match the required value '{audience}'."),
            ),
            ErrorKind::InvalidIssuer | ErrorKind::InvalidSubject => (
                700_021,
                "Client assertion iss and sub must both be the client id.".to_owned(),
            ),
            _ => (
                700_027,
                format!("Client assertion failed signature validation: {e}."),
            ),
        }
    })?;
    let t = now.unix_timestamp();
    if data.claims.exp <= t || data.claims.nbf.is_some_and(|nbf| nbf > t + 300) {
        return Err((
            700_024,
            "Client assertion is not within its valid time range.".to_owned(),
        ));
    }
    Ok(())
}

/// `POST /{tenant}/oauth2/v2.0/devicecode`.
pub(crate) async fn devicecode(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Response {
    let now = shared.now();
    if !tenant.eq_ignore_ascii_case(&shared.tenant_id) {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            &format!("Tenant '{tenant}' not found."),
            now,
        );
    }
    let params = form(&body);
    let client_id = params.get("client_id").cloned().unwrap_or_default();
    let Some(app) = find_app(&shared, &client_id) else {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700_016,
            &format!(
                "Application with identifier '{client_id}' was not found in the directory '{tenant}'."
            ),
            now,
        );
    };
    let scopes = match requested_scopes(
        &shared,
        app,
        params.get("scope").map(String::as_str).unwrap_or_default(),
    ) {
        Ok(requested) => requested.graph,
        Err(name) => {
            return entra_error(
                StatusCode::BAD_REQUEST,
                "invalid_scope",
                65_001,
                &format!(
                    "The user or administrator has not consented to use the application with ID '{client_id}' for scope '{name}'."
                ),
                now,
            );
        }
    };
    if scopes.is_empty() {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            70_011,
            "The provided value for the input parameter 'scope' is not valid: name a delegated permission or {resource}/.default.",
            now,
        );
    }
    let user_code: String = {
        let mut engine = shared.fault_engine();
        const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
        (0..9)
            .map(|_| {
                ALPHABET[usize::try_from(engine.next_u64() % ALPHABET.len() as u64).unwrap_or(0)]
                    as char
            })
            .collect()
    };
    let device_code = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let interval = shared.device_code_interval;
    let expires_in = 900;
    shared.world().device_codes.insert(
        device_code.clone(),
        DeviceCode {
            client_id,
            scopes,
            user_code: user_code.clone(),
            expires_at: now + time::Duration::seconds(expires_in),
            interval: time::Duration::try_from(interval).unwrap_or(time::Duration::seconds(5)),
            last_poll: None,
            status: DeviceStatus::Pending,
        },
    );
    let verification_uri = format!("{}/devicelogin", shared.base);
    Json(json!({
        "device_code": device_code,
        "user_code": user_code,
        "verification_uri": verification_uri,
        "expires_in": expires_in,
        "interval": interval.as_secs(),
        "message": format!("To sign in, use a web browser to open the page {verification_uri} and enter the code {user_code} to authenticate."),
    }))
    .into_response()
}

fn redeem_device_code(
    shared: &Shared,
    app: &AppRegistration,
    device_code: &str,
    now: OffsetDateTime,
) -> Response {
    let outcome = {
        let mut world = shared.world();
        let Some(code) = world
            .device_codes
            .get_mut(device_code)
            .filter(|c| c.client_id == app.client_id)
        else {
            return entra_error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                70_000,
                "The provided value for the input parameter 'device_code' is not valid.",
                now,
            );
        };
        let too_fast = code
            .last_poll
            .is_some_and(|last| now - last < code.interval);
        code.last_poll = Some(now);
        if now >= code.expires_at {
            Err((
                "expired_token",
                70_020,
                "The provided value for the input parameter 'device_code' is not valid. This device code has expired.",
            ))
        } else if too_fast {
            Err((
                "slow_down",
                70_016,
                "OAuth 2.0 device flow error: polled faster than the interval. Slow down.",
            ))
        } else {
            match code.status.clone() {
                DeviceStatus::Pending => Err((
                    "authorization_pending",
                    70_016,
                    "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
                )),
                DeviceStatus::Declined => Err((
                    "authorization_declined",
                    70_000,
                    "The end user denied the authorization request.",
                )),
                DeviceStatus::Redeemed => Err((
                    "invalid_grant",
                    70_000,
                    "The device code was already redeemed.",
                )),
                DeviceStatus::Approved { upn, admin } => {
                    code.status = DeviceStatus::Redeemed;
                    Ok((upn, admin, code.scopes.clone()))
                }
            }
        }
    };
    match outcome {
        Ok((upn, admin, scopes)) => (
            StatusCode::OK,
            Json(issue(shared, app, Some((&upn, admin, &scopes)))),
        )
            .into_response(),
        Err((error, code, message)) => {
            entra_error(StatusCode::BAD_REQUEST, error, code, message, now)
        }
    }
}

/// Approves (`Some(user)`) or declines (`None`) the device code with `user_code`.
pub(crate) fn settle_device_code(
    shared: &Shared,
    user_code: &str,
    approval: Option<(&str, bool)>,
) -> Result<(), String> {
    let mut world = shared.world();
    let Some(code) = world
        .device_codes
        .values_mut()
        .find(|c| c.user_code.eq_ignore_ascii_case(user_code))
    else {
        return Err(format!("no device code with user code '{user_code}'"));
    };
    if !matches!(code.status, DeviceStatus::Pending) {
        return Err(format!(
            "the device code '{user_code}' is no longer pending"
        ));
    }
    code.status = match approval {
        Some((upn, admin)) => DeviceStatus::Approved {
            upn: upn.to_owned(),
            admin,
        },
        None => DeviceStatus::Declined,
    };
    Ok(())
}

/// Verifies the bearer token of a Graph request.
pub(crate) fn authenticate(shared: &Shared, headers: &HeaderMap) -> Result<Caller, GraphError> {
    let header = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let token = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| GraphError::unauthenticated("Access token is empty."))?;
    let mut validation = Validation::new(Algorithm::HS256);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.set_required_spec_claims(&["exp", "aud"]);
    let data = decode::<AccessClaims>(
        token,
        &DecodingKey::from_secret(&shared.token_key),
        &validation,
    )
    .map_err(|e| GraphError::unauthenticated(format!("Access token validation failure: {e}.")))?;
    let claims = data.claims;
    if claims.aud != shared.base {
        return Err(GraphError::unauthenticated(
            "Access token validation failure. Invalid audience.",
        ));
    }
    if claims.tid != shared.tenant_id {
        return Err(GraphError::unauthenticated(
            "Access token validation failure. Wrong tenant.",
        ));
    }
    let now = shared.now().unix_timestamp();
    if claims.exp <= now {
        return Err(GraphError::unauthenticated(
            "Lifetime validation failed, the token is expired.",
        ));
    }
    if claims.nbf > now + 300 {
        return Err(GraphError::unauthenticated(
            "Lifetime validation failed, the token is not yet valid.",
        ));
    }
    let delegated = claims.scp.map(|scp| DelegatedUser {
        scopes: scp.split_whitespace().map(str::to_owned).collect(),
        upn: claims.upn.unwrap_or_default(),
        admin: claims
            .wids
            .unwrap_or_default()
            .iter()
            .any(|w| w == PRINTER_ADMINISTRATOR_ROLE),
    });
    Ok(Caller {
        app_id: claims.appid,
        roles: claims.roles.unwrap_or_default(),
        delegated,
    })
}

/// Checks the caller against what the operation requires.
pub(crate) fn authorize(
    caller: &Caller,
    need: &Permission,
    operation: &str,
) -> Result<(), GraphError> {
    match &caller.delegated {
        None => {
            let Some(app) = need.app else {
                return Err(GraphError::access_denied(format!(
                    "{operation} does not support application permissions (Application: Not supported); call it with a delegated token."
                )));
            };
            for required in std::iter::once(app).chain(need.app_also) {
                if !required.iter().any(|p| caller.roles.iter().any(|r| r == p)) {
                    return Err(GraphError::access_denied(format!(
                        "Missing application permission for {operation}: one of {} (least privileged: {}).",
                        required.join(", "),
                        required.first().copied().unwrap_or_default()
                    )));
                }
            }
        }
        Some(user) => {
            let Some(scopes) = need.delegated else {
                return Err(GraphError::access_denied(format!(
                    "{operation} does not support delegated permissions (Delegated: Not supported); call it with an app-only token."
                )));
            };
            if !scopes.iter().any(|p| user.scopes.iter().any(|s| s == p)) {
                return Err(GraphError::access_denied(format!(
                    "Missing delegated permission for {operation}: one of {} (least privileged: {}).",
                    scopes.join(", "),
                    scopes.first().copied().unwrap_or_default()
                )));
            }
            if need.admin && !user.admin {
                return Err(GraphError::access_denied(format!(
                    "{operation} requires the signed-in user to be a Printer Administrator."
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stable_guid_is_stable_and_guid_shaped() {
        let a = stable_guid("x");
        assert_eq!(a, stable_guid("x"));
        assert_eq!(a.len(), 36);
        assert_ne!(a, stable_guid("y"));
    }

    #[test]
    fn an_app_token_without_the_role_is_refused_naming_it() {
        let caller = Caller {
            app_id: "a".into(),
            roles: vec!["Printer.Read.All".into()],
            delegated: None,
        };
        let need = Permission {
            app: Some(&["PrintJob.Manage.All"]),
            app_also: None,
            delegated: None,
            admin: false,
        };
        let err = authorize(&caller, &need, "redirect").expect_err("role missing");
        assert!(err.message.contains("PrintJob.Manage.All"));
    }
}
