//! The OAuth device authorization grant, for the one-time administrator sign-in of `setup`.
//!
//! Task triggers can only be created with a delegated token of a Printer Administrator, issued to the
//! same app registration that created the task definition. The daemon has no browser, so `setup` asks
//! Entra ID for a device code, shows the URL and code to the administrator (through the caller's
//! `on_prompt`), and polls the token endpoint until the sign-in completes:
//! `authorization_pending` → keep polling; `slow_down` → poll 5 s less often from now on;
//! `authorization_declined` and `expired_token` → clear errors; anything else → a [`GraphError::Token`]
//! naming the fix. The app registration must allow public client flows.
//!
//! Invariant: the delegated token is only held in memory (a `SecretString`), never stored or logged.

use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;
use time::OffsetDateTime;

use super::auth::{OAuthErrorBody, token_error};
use super::client::GraphClient;
use super::error::GraphError;

/// What the administrator must do to sign in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCodePrompt {
    /// The code to enter.
    pub user_code: String,
    /// Where to enter it.
    pub verification_uri: String,
    /// Entra ID's ready-made sentence saying both.
    pub message: String,
    /// How long the code stays valid.
    pub expires_in: Duration,
}

/// A signed-in administrator's access token (delegated), for the task trigger operations.
#[derive(Debug, Clone)]
pub struct DelegatedToken {
    /// The access token.
    pub access_token: SecretString,
    /// When it expires.
    pub expires_at: OffsetDateTime,
    /// The scopes Entra ID granted (its answer's `scope`, e.g. `Printer.ReadWrite.All
    /// PrintJob.ReadWriteBasic`): what the app's consented delegated permissions allow.
    pub scopes: Vec<String>,
}

/// The scopes of a token answer's `scope`, without a resource prefix (`https://graph…/X` → `X`).
pub(crate) fn granted_scopes(scope: Option<&str>) -> Vec<String> {
    scope
        .unwrap_or_default()
        .split_whitespace()
        .map(|s| s.rsplit('/').next().unwrap_or(s).to_owned())
        .collect()
}

#[derive(Deserialize)]
struct DeviceCodeResponse {
    device_code: SecretString,
    user_code: String,
    verification_uri: String,
    expires_in: u64,
    #[serde(default)]
    interval: Option<u64>,
    #[serde(default)]
    message: Option<String>,
}

/// The polling interval when Entra ID does not say.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// The longest poll interval honoured: a server-given interval beyond it is a mistake.
const MAX_INTERVAL: Duration = Duration::from_secs(60);
/// How much `slow_down` adds to the interval (RFC 8628 §3.5).
const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);

impl GraphClient {
    /// Signs an administrator in with the device code flow: requests a code, calls `on_prompt` once
    /// with what to show, then polls until the sign-in completes, is declined or expires.
    /// The scope is the Graph root's `.default` (the app's consented delegated permissions, which must
    /// include `Printer.ReadWrite.All` for task triggers).
    pub async fn sign_in_with_device_code(
        &self,
        on_prompt: impl FnOnce(&DeviceCodePrompt),
    ) -> Result<DelegatedToken, GraphError> {
        let inner = &self.inner;
        let endpoints = &inner.endpoints;
        let code_url = endpoints.device_code_endpoint(&inner.tenant_id)?;
        let token_url = endpoints.token_endpoint(&inner.tenant_id)?;
        let form = [
            ("client_id", inner.client_id.clone()),
            ("scope", endpoints.scope.clone()),
        ];
        let transport = |error: reqwest::Error| {
            let timed_out = error.is_timeout();
            GraphError::Transport {
                operation: "device_code",
                detail: error.without_url().to_string(),
                client_request_id: "n/a".to_owned(),
                timed_out,
            }
        };
        let response = self
            .http()
            .post(code_url)
            .form(&form)
            .send()
            .await
            .map_err(transport)?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(transport)?;
        if !(200..300).contains(&status) {
            return Err(token_error(
                status,
                serde_json::from_slice(&body).unwrap_or_default(),
            ));
        }
        let code: DeviceCodeResponse =
            serde_json::from_slice(&body).map_err(|error| GraphError::InvalidResponse {
                operation: "device_code",
                status,
                detail: format!("not a device code response: {error}"),
                client_request_id: "n/a".to_owned(),
            })?;
        let prompt = DeviceCodePrompt {
            message: code.message.clone().unwrap_or_else(|| {
                format!(
                    "To sign in, open {} and enter the code {}",
                    code.verification_uri, code.user_code
                )
            }),
            user_code: code.user_code,
            verification_uri: code.verification_uri,
            expires_in: Duration::from_secs(code.expires_in),
        };
        on_prompt(&prompt);

        let mut interval = code
            .interval
            .map_or(DEFAULT_INTERVAL, Duration::from_secs)
            .min(MAX_INTERVAL);
        let form = [
            ("client_id", inner.client_id.clone()),
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:device_code".to_owned(),
            ),
            (
                "device_code",
                secrecy::ExposeSecret::expose_secret(&code.device_code).to_owned(),
            ),
        ];
        loop {
            (inner.sleeper)(interval).await;
            let response = self
                .http()
                .post(token_url.clone())
                .form(&form)
                .send()
                .await
                .map_err(transport)?;
            let status = response.status().as_u16();
            let body = response.bytes().await.map_err(transport)?;
            if (200..300).contains(&status) {
                #[derive(Deserialize)]
                struct Token {
                    access_token: SecretString,
                    #[serde(default)]
                    expires_in: Option<serde_json::Value>,
                    #[serde(default)]
                    scope: Option<String>,
                }
                let token: Token =
                    serde_json::from_slice(&body).map_err(|error| GraphError::InvalidResponse {
                        operation: "device_code",
                        status,
                        detail: format!("not a token response: {error}"),
                        client_request_id: "n/a".to_owned(),
                    })?;
                let lifetime = super::auth::token_lifetime(token.expires_in.as_ref());
                return Ok(DelegatedToken {
                    access_token: token.access_token,
                    expires_at: inner.clock.now().saturating_add(lifetime),
                    scopes: granted_scopes(token.scope.as_deref()),
                });
            }
            let error: OAuthErrorBody = serde_json::from_slice(&body).unwrap_or_default();
            match error.error.as_str() {
                "authorization_pending" => {}
                "slow_down" => interval = interval.saturating_add(SLOW_DOWN_STEP).min(MAX_INTERVAL),
                "authorization_declined" | "access_denied" => {
                    return Err(GraphError::DeviceCodeDeclined);
                }
                "expired_token" | "code_expired" => return Err(GraphError::DeviceCodeExpired),
                _ => return Err(token_error(status, error)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::graph::test_support::{Recorder, client_for};
    use secrecy::ExposeSecret;
    use wiremock::matchers::{body_string_contains, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    async fn device_code_endpoint(server: &MockServer) {
        Mock::given(method("POST"))
            .and(path("/login/tenant/oauth2/v2.0/devicecode"))
            .and(body_string_contains("client_id=client-1"))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "device_code": "dc-1", "user_code": "ABCD-EFGH",
                "verification_uri": "https://microsoft.com/devicelogin",
                "expires_in": 900, "interval": 5,
                "message": "To sign in, use a web browser to open the page https://microsoft.com/devicelogin and enter the code ABCD-EFGH to authenticate."
            })))
            .mount(server)
            .await;
    }

    fn oauth_error(error: &str) -> ResponseTemplate {
        ResponseTemplate::new(400)
            .set_body_json(serde_json::json!({"error": error, "error_description": error}))
    }

    #[tokio::test]
    async fn pending_then_slow_down_then_success_returns_the_delegated_token() {
        let server = MockServer::start().await;
        device_code_endpoint(&server).await;
        let token_path = || path("/login/tenant/oauth2/v2.0/token");
        Mock::given(method("POST"))
            .and(token_path())
            .respond_with(oauth_error("authorization_pending"))
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(token_path())
            .respond_with(oauth_error("slow_down"))
            .up_to_n_times(1)
            .with_priority(2)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(token_path())
            .and(body_string_contains(
                "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code",
            ))
            .and(body_string_contains("device_code=dc-1"))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                serde_json::json!({"access_token": "admin-token", "expires_in": 3600}),
            ))
            .with_priority(3)
            .mount(&server)
            .await;
        let recorder = Recorder::default();
        let client = client_for(&server, &recorder);
        let mut shown = None;
        let token = client
            .sign_in_with_device_code(|prompt| shown = Some(prompt.clone()))
            .await
            .unwrap();
        assert_eq!(token.access_token.expose_secret(), "admin-token");
        let shown = shown.unwrap();
        assert_eq!(shown.user_code, "ABCD-EFGH");
        assert_eq!(shown.verification_uri, "https://microsoft.com/devicelogin");
        let secs = |s| Duration::from_secs(s);
        assert_eq!(
            recorder.sleeps(),
            [secs(5), secs(5), secs(10)],
            "slow_down adds 5 s to the interval"
        );
    }

    #[tokio::test]
    async fn a_declined_sign_in_is_a_clear_error() {
        let server = MockServer::start().await;
        device_code_endpoint(&server).await;
        Mock::given(method("POST"))
            .and(path("/login/tenant/oauth2/v2.0/token"))
            .respond_with(oauth_error("authorization_declined"))
            .mount(&server)
            .await;
        let recorder = Recorder::default();
        let error = client_for(&server, &recorder)
            .sign_in_with_device_code(|_| {})
            .await
            .unwrap_err();
        assert!(matches!(error, GraphError::DeviceCodeDeclined), "{error}");
    }

    #[tokio::test]
    async fn an_expired_code_is_a_clear_error() {
        let server = MockServer::start().await;
        device_code_endpoint(&server).await;
        Mock::given(method("POST"))
            .and(path("/login/tenant/oauth2/v2.0/token"))
            .respond_with(oauth_error("expired_token"))
            .mount(&server)
            .await;
        let recorder = Recorder::default();
        let error = client_for(&server, &recorder)
            .sign_in_with_device_code(|_| {})
            .await
            .unwrap_err();
        assert!(matches!(error, GraphError::DeviceCodeExpired), "{error}");
        assert!(error.to_string().contains("expired"));
    }
}
