//! The emulator's OpenID Connect sign-in (authorization code flow with PKCE), driven over HTTP with
//! reqwest as a relying party and a browser would drive it: discovery, the sign-in page, the code,
//! its redemption, the ID token checked against the published keys.
#![allow(clippy::unwrap_used)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use pullprintd::emulator::{
    AppRegistration, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DirectoryUser, Emulator, EmulatorOptions,
    ForgeKey,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// The redirect URI the tests register; never contacted (redirects are not followed).
pub(crate) const REDIRECT: &str = "http://127.0.0.1:9/auth/callback";
pub(crate) const ADA: &str = "ada.lovelace@contoso.example";
pub(crate) const GRACE: &str = "grace.hopper@contoso.example";

/// An emulator with two people and the test redirect URI registered, and a client that does not
/// follow redirects.
pub(crate) struct Bed {
    pub emulator: Emulator,
    pub http: reqwest::Client,
}

impl Bed {
    pub(crate) async fn start(options: EmulatorOptions) -> Self {
        let emulator = Emulator::start(options).await.unwrap();
        let control = emulator.control();
        for (upn, name) in [(ADA, "Ada Lovelace"), (GRACE, "Grace Hopper")] {
            control.add_user(DirectoryUser {
                id: String::new(),
                user_principal_name: upn.into(),
                display_name: name.into(),
                employee_id: None,
            });
        }
        control.add_redirect_uri(DEMO_CLIENT_ID, REDIRECT).unwrap();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self { emulator, http }
    }

    pub(crate) async fn default() -> Self {
        Self::start(EmulatorOptions::default()).await
    }

    /// `GET` the authorization endpoint with `params`.
    pub(crate) async fn authorize(&self, params: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .get(self.emulator.authorize_url())
            .query(params)
            .send()
            .await
            .unwrap()
    }

    /// Presses a person's button: posts the page's form with `upn`.
    pub(crate) async fn choose(&self, page: &str, upn: &str) -> reqwest::Response {
        let mut fields = hidden_fields(page);
        fields.push(("upn".into(), upn.into()));
        self.http
            .post(self.emulator.authorize_url())
            .form(&fields)
            .send()
            .await
            .unwrap()
    }

    /// Redeems a code at the token endpoint with the demo app's secret.
    pub(crate) async fn redeem(
        &self,
        code: &str,
        verifier: &str,
        redirect_uri: &str,
    ) -> reqwest::Response {
        self.http
            .post(self.emulator.token_url())
            .form(&[
                ("grant_type", "authorization_code"),
                ("client_id", DEMO_CLIENT_ID),
                ("client_secret", DEMO_CLIENT_SECRET),
                ("code", code),
                ("redirect_uri", redirect_uri),
                ("code_verifier", verifier),
            ])
            .send()
            .await
            .unwrap()
    }

    /// Signs `upn` in with `scope` and returns the code (and the PKCE verifier), as far as the
    /// redirect back.
    pub(crate) async fn code_for(&self, upn: &str, scope: &str) -> (String, String) {
        let (verifier, challenge) = pkce();
        let page = self
            .authorize(&request(scope, &challenge, "st-1", "n-1"))
            .await;
        assert_eq!(page.status(), 200);
        let back = self.choose(&page.text().await.unwrap(), upn).await;
        assert_eq!(back.status(), 302);
        let params = location(&back);
        assert_eq!(params["state"], "st-1");
        (params["code"].clone(), verifier)
    }

    /// The whole flow: the token response for `upn` with `scope`.
    pub(crate) async fn sign_in(&self, upn: &str, scope: &str) -> Value {
        let (code, verifier) = self.code_for(upn, scope).await;
        let r = self.redeem(&code, &verifier, REDIRECT).await;
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    async fn jwks(&self) -> Value {
        self.http
            .get(self.emulator.jwks_url())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Verifies an ID token as a relying party would: the key named by `kid` from the JWKS,
    /// RS256, the issuer, the audience, the lifetime.
    async fn verify(&self, id_token: &str) -> Result<Value, jsonwebtoken::errors::Error> {
        let jwks = self.jwks().await;
        let kid = decode_header(id_token)?.kid.unwrap_or_default();
        let key = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == kid.as_str())
            .expect("the JWKS has the key the token names");
        let decoding = DecodingKey::from_rsa_components(
            key["n"].as_str().unwrap(),
            key["e"].as_str().unwrap(),
        )?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&[DEMO_CLIENT_ID]);
        validation.set_issuer(&[self.emulator.issuer()]);
        Ok(decode::<Value>(id_token, &decoding, &validation)?.claims)
    }
}

/// A PKCE pair: (verifier, S256 challenge).
pub(crate) fn pkce() -> (String, String) {
    let verifier = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// The parameters of an authorization request to the test redirect URI.
pub(crate) fn request<'a>(
    scope: &'a str,
    challenge: &'a str,
    state: &'a str,
    nonce: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("client_id", DEMO_CLIENT_ID),
        ("response_type", "code"),
        ("redirect_uri", REDIRECT),
        ("scope", scope),
        ("state", state),
        ("nonce", nonce),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
        ("response_mode", "query"),
        ("prompt", "select_account"),
    ]
}

fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The hidden fields of the sign-in page's form, as a browser would submit them.
pub(crate) fn hidden_fields(page: &str) -> Vec<(String, String)> {
    let re = regex::Regex::new(r#"<input type="hidden" name="([^"]*)" value="([^"]*)">"#).unwrap();
    re.captures_iter(page)
        .map(|c| (unescape(&c[1]), unescape(&c[2])))
        .collect()
}

/// The query parameters of a redirect's `Location`, and checks it goes to the test redirect URI.
pub(crate) fn location(response: &reqwest::Response) -> HashMap<String, String> {
    let location = response.headers()["location"].to_str().unwrap();
    let url = url::Url::parse(location).unwrap();
    assert_eq!(
        format!("{}://{}{}", url.scheme(), url.authority(), url.path()),
        REDIRECT
    );
    url.query_pairs().into_owned().collect()
}

const SCOPE: &str = "openid profile PrintJob.ReadWriteBasic";

#[tokio::test]
async fn discovery_names_the_issuer_the_endpoints_and_one_rsa_signing_key() {
    let bed = Bed::default().await;
    let doc: Value = bed
        .http
        .get(bed.emulator.openid_configuration_url())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let root = bed.emulator.url().as_str().trim_end_matches('/').to_owned();
    let tenant = bed.emulator.tenant_id();
    assert_eq!(doc["issuer"], format!("{root}/{tenant}/v2.0"));
    assert_eq!(doc["issuer"], bed.emulator.issuer());
    assert_eq!(doc["authorization_endpoint"], bed.emulator.authorize_url());
    assert_eq!(
        doc["authorization_endpoint"],
        format!("{root}/{tenant}/oauth2/v2.0/authorize")
    );
    assert_eq!(doc["token_endpoint"], bed.emulator.token_url());
    assert_eq!(
        doc["jwks_uri"],
        format!("{root}/{tenant}/discovery/v2.0/keys")
    );
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        json!(["RS256"])
    );
    assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
    let jwks = bed.jwks().await;
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let key = &keys[0];
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["use"], "sig");
    assert_eq!(key["alg"], "RS256");
    assert_eq!(key["e"], "AQAB");
    assert!(key["kid"].as_str().is_some_and(|k| !k.is_empty()));
    assert!(key["n"].as_str().unwrap().len() > 300, "a 2048-bit modulus");
    let other_tenant = format!("{root}/common/v2.0/.well-known/openid-configuration");
    let r = bed.http.get(other_tenant).send().await.unwrap();
    assert_eq!(
        r.status(),
        400,
        "only the emulated tenant has a discovery document"
    );
}

#[tokio::test]
async fn the_whole_code_flow_signs_a_person_in_with_an_id_token_the_published_key_verifies() {
    let bed = Bed::default().await;
    let (verifier, challenge) = pkce();
    let page = bed
        .authorize(&request(SCOPE, &challenge, "state-42", "nonce-7"))
        .await;
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    let html = page.text().await.unwrap();
    for upn in [ADA, GRACE] {
        assert!(html.contains(&format!("data-upn=\"{upn}\"")), "{html}");
    }
    assert!(html.contains("name=\"viewport\""), "laid out for phones");
    assert!(!html.contains("<script"), "no script");
    let fields: HashMap<String, String> = hidden_fields(&html).into_iter().collect();
    assert_eq!(fields["state"], "state-42");
    assert_eq!(fields["code_challenge"], challenge);

    let back = bed.choose(&html, ADA).await;
    assert_eq!(back.status(), 302);
    let params = location(&back);
    assert_eq!(params["state"], "state-42");
    let code = &params["code"];

    let r = bed.redeem(code, &verifier, REDIRECT).await;
    assert_eq!(r.status(), 200);
    let tokens: Value = r.json().await.unwrap();
    assert_eq!(tokens["token_type"], "Bearer");
    assert!(tokens["expires_in"].as_u64().unwrap() > 0);
    let scope = tokens["scope"].as_str().unwrap();
    assert!(
        scope.split(' ').any(|s| s == "PrintJob.ReadWriteBasic"),
        "{scope}"
    );
    assert!(
        tokens.get("refresh_token").is_none(),
        "no offline_access asked"
    );
    assert!(tokens["access_token"].as_str().is_some());

    let id_token = tokens["id_token"].as_str().unwrap();
    let claims = bed.verify(id_token).await.expect("the ID token verifies");
    assert_eq!(claims["nonce"], "nonce-7");
    assert_eq!(claims["aud"], DEMO_CLIENT_ID);
    assert_eq!(claims["tid"], bed.emulator.tenant_id());
    assert_eq!(claims["preferred_username"], ADA);
    assert_eq!(claims["name"], "Ada Lovelace");
    assert!(claims["sub"].as_str().is_some_and(|s| !s.is_empty()));
    let exp = claims["exp"].as_i64().unwrap();
    let iat = claims["iat"].as_i64().unwrap();
    assert_eq!(exp - iat, 3600, "an ID token lives one hour");
    let directory_id = bed
        .http
        .get(format!("{}/users", bed.emulator.graph_url()))
        .query(&[("$filter", format!("userPrincipalName eq '{ADA}'"))])
        .bearer_auth(app_token(&bed).await)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["value"][0]["id"]
        .clone();
    assert_eq!(claims["oid"], directory_id);
}

async fn app_token(bed: &Bed) -> String {
    let scope = format!(
        "{}/.default",
        bed.emulator.url().as_str().trim_end_matches('/')
    );
    let r: Value = bed
        .http
        .post(bed.emulator.token_url())
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", DEMO_CLIENT_ID),
            ("client_secret", DEMO_CLIENT_SECRET),
            ("scope", &scope),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["access_token"].as_str().unwrap().to_owned()
}

fn entra_code(body: &Value) -> u64 {
    body["error_codes"][0].as_u64().unwrap_or_default()
}

#[tokio::test]
async fn a_wrong_code_verifier_is_refused_and_burns_the_code() {
    let bed = Bed::default().await;
    let (code, verifier) = bed.code_for(ADA, SCOPE).await;
    let (other_verifier, _) = pkce();
    let r = bed.redeem(&code, &other_verifier, REDIRECT).await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(entra_code(&body), 50148);
    let r = bed.redeem(&code, &verifier, REDIRECT).await;
    assert_eq!(r.status(), 400, "a failed redemption burns the code");
}

#[tokio::test]
async fn a_code_is_redeemed_once_and_a_second_redemption_is_aadsts54005() {
    let bed = Bed::default().await;
    let (code, verifier) = bed.code_for(ADA, SCOPE).await;
    assert_eq!(bed.redeem(&code, &verifier, REDIRECT).await.status(), 200);
    let r = bed.redeem(&code, &verifier, REDIRECT).await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(entra_code(&body), 54005);
}

#[tokio::test]
async fn the_redemption_needs_the_same_redirect_uri_and_the_clients_own_credential() {
    let bed = Bed::default().await;
    let (code, verifier) = bed.code_for(ADA, SCOPE).await;
    let r = bed
        .http
        .post(bed.emulator.token_url())
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", DEMO_CLIENT_ID),
            ("client_secret", "not-the-secret"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_client");
    // A refused client does not burn the code; a different redirect URI does.
    let r = bed
        .redeem(&code, &verifier, "http://127.0.0.1:9/other")
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_grant");
}

#[tokio::test]
async fn a_code_expires_ten_minutes_after_it_was_issued_by_the_emulators_clock() {
    let bed = Bed::default().await;
    let (code, verifier) = bed.code_for(ADA, SCOPE).await;
    bed.emulator
        .control()
        .advance_clock(time::Duration::minutes(11));
    let r = bed.redeem(&code, &verifier, REDIRECT).await;
    assert_eq!(r.status(), 400);
    assert_eq!(entra_code(&r.json().await.unwrap()), 70008);
}

#[tokio::test]
async fn an_unregistered_redirect_uri_or_unknown_app_shows_an_error_page_and_never_redirects() {
    let bed = Bed::default().await;
    let (_, challenge) = pkce();
    let mut params = request(SCOPE, &challenge, "s", "n");
    params[2] = ("redirect_uri", "http://127.0.0.1:9/not-registered");
    let r = bed.authorize(&params).await;
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
    let html = r.text().await.unwrap();
    assert!(html.contains("data-error-code=\"AADSTS50011\""), "{html}");

    let mut params = request(SCOPE, &challenge, "s", "n");
    params[0] = ("client_id", "00000000-0000-0000-0000-000000000000");
    let r = bed.authorize(&params).await;
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("data-error-code=\"AADSTS700016\"")
    );

    // The POST checks the same: a forged form cannot redirect anywhere either.
    let form = [
        ("client_id", DEMO_CLIENT_ID),
        ("response_type", "code"),
        ("redirect_uri", "https://evil.example/cb"),
        ("scope", SCOPE),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("upn", ADA),
    ];
    let r = bed
        .http
        .post(bed.emulator.authorize_url())
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
}

#[tokio::test]
async fn other_authorize_errors_go_back_to_the_redirect_uri_with_the_state() {
    let bed = Bed::default().await;
    let (_, challenge) = pkce();
    let cases: Vec<(&str, &str, &str)> = vec![
        ("code_challenge_method", "plain", "invalid_request"),
        ("scope", "profile PrintJob.ReadWriteBasic", "invalid_scope"),
        ("scope", "openid Printer.FullControl.All", "invalid_scope"),
        ("response_type", "token", "unsupported_response_type"),
        ("prompt", "none", "login_required"),
        ("response_mode", "fragment", "invalid_request"),
        ("code_challenge", "too-short", "invalid_request"),
    ];
    for (name, value, error) in cases {
        let mut params = request(SCOPE, &challenge, "keep-me", "n");
        for p in &mut params {
            if p.0 == name {
                p.1 = value;
            }
        }
        let r = bed.authorize(&params).await;
        assert_eq!(r.status(), 302, "{name}={value}");
        let back = location(&r);
        assert_eq!(back["error"], error, "{name}={value}");
        assert_eq!(back["state"], "keep-me");
        assert!(back["error_description"].starts_with("AADSTS"), "{back:?}");
    }
    let without_pkce: Vec<(&str, &str)> = request(SCOPE, &challenge, "s", "n")
        .into_iter()
        .filter(|(k, _)| !k.starts_with("code_challenge"))
        .collect();
    let r = bed.authorize(&without_pkce).await;
    assert_eq!(r.status(), 302);
    assert_eq!(location(&r)["error"], "invalid_request", "PKCE is required");
}

#[tokio::test]
async fn cancel_on_the_page_answers_access_denied_and_an_unknown_person_is_refused() {
    let bed = Bed::default().await;
    let (_, challenge) = pkce();
    let page = bed
        .authorize(&request(SCOPE, &challenge, "s-9", "n"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("data-action=\"cancel\""));
    let mut fields = hidden_fields(&page);
    fields.push(("cancel".into(), "1".into()));
    let r = bed
        .http
        .post(bed.emulator.authorize_url())
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let back = location(&r);
    assert_eq!(back["error"], "access_denied");
    assert_eq!(back["state"], "s-9");

    let r = bed.choose(&page, "nobody@contoso.example").await;
    assert_eq!(r.status(), 400);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("data-error-code=\"AADSTS50034\"")
    );
}

#[tokio::test]
async fn offline_access_brings_a_refresh_token_that_is_single_use() {
    let bed = Bed::default().await;
    let tokens = bed
        .sign_in(GRACE, "openid offline_access PrintJob.ReadWriteBasic")
        .await;
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let redeem = |token: String| {
        let bed = &bed;
        async move {
            bed.http
                .post(bed.emulator.token_url())
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("client_id", DEMO_CLIENT_ID),
                    ("client_secret", DEMO_CLIENT_SECRET),
                    ("refresh_token", token.as_str()),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    let r = redeem(refresh.clone()).await;
    assert_eq!(r.status(), 200);
    let renewed: Value = r.json().await.unwrap();
    assert!(renewed["access_token"].as_str().is_some());
    let claims = bed
        .verify(renewed["id_token"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(claims["preferred_username"], GRACE);
    assert!(
        renewed["refresh_token"]
            .as_str()
            .is_some_and(|t| *t != refresh)
    );
    assert_eq!(redeem(refresh).await.status(), 400, "single use");
}

#[tokio::test]
async fn forged_id_tokens_fail_verification_for_the_reason_they_were_forged() {
    let bed = Bed::default().await;
    let control = bed.emulator.control();
    let good = control.id_token_claims(DEMO_CLIENT_ID, ADA, Some("n-1"));
    let token = control.forge_id_token(&good, ForgeKey::Emulator).unwrap();
    let claims = bed
        .verify(&token)
        .await
        .expect("the emulator's key verifies");
    assert_eq!(claims["nonce"], "n-1");

    let wrong_key = control.forge_id_token(&good, ForgeKey::Other).unwrap();
    let err = bed.verify(&wrong_key).await.expect_err("wrong signature");
    assert!(
        matches!(
            err.kind(),
            jsonwebtoken::errors::ErrorKind::InvalidSignature
        ),
        "{err:?}"
    );

    let mut other_audience = good.clone();
    other_audience["aud"] = json!("11111111-2222-3333-4444-555555555555");
    let err = bed
        .verify(
            &control
                .forge_id_token(&other_audience, ForgeKey::Emulator)
                .unwrap(),
        )
        .await
        .expect_err("other audience");
    assert!(matches!(
        err.kind(),
        jsonwebtoken::errors::ErrorKind::InvalidAudience
    ));

    let mut expired = good.clone();
    expired["exp"] = json!(good["iat"].as_i64().unwrap() - 3600);
    let err = bed
        .verify(
            &control
                .forge_id_token(&expired, ForgeKey::Emulator)
                .unwrap(),
        )
        .await
        .expect_err("expired");
    assert!(matches!(
        err.kind(),
        jsonwebtoken::errors::ErrorKind::ExpiredSignature
    ));

    // Over HTTP too.
    let forged: Value = bed
        .http
        .post(format!("{}_emulator/id-tokens", bed.emulator.url()))
        .json(&json!({"claims": good, "key": "other"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        bed.verify(forged["idToken"].as_str().unwrap())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn redirect_uris_are_registered_over_http_and_plain_http_is_for_loopback_only() {
    let app = AppRegistration {
        redirect_uris: vec!["https://kiosk.contoso.example/signed-in".into()],
        ..AppRegistration::demo()
    };
    let bed = Bed::start(EmulatorOptions {
        apps: vec![app],
        ..EmulatorOptions::default()
    })
    .await;
    let add = |uri: &'static str, client: &'static str| {
        let bed = &bed;
        async move {
            bed.http
                .post(format!(
                    "{}_emulator/apps/{client}/redirect-uris",
                    bed.emulator.url()
                ))
                .json(&json!({"uri": uri}))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(add("http://localhost:8443/cb", DEMO_CLIENT_ID).await, 204);
    assert_eq!(add("http://192.168.1.5:8080/cb", DEMO_CLIENT_ID).await, 400);
    assert_eq!(add("https://a.example/cb#x", DEMO_CLIENT_ID).await, 400);
    assert_eq!(add("https://a.example/cb", "no-such-app").await, 400);
    let (_, challenge) = pkce();
    for uri in [
        "https://kiosk.contoso.example/signed-in",
        "http://localhost:8443/cb",
    ] {
        let mut params = request(SCOPE, &challenge, "s", "n");
        params[2] = ("redirect_uri", uri);
        assert_eq!(bed.authorize(&params).await.status(), 200, "{uri}");
    }
    let mut params = request(SCOPE, &challenge, "s", "n");
    params[2] = ("redirect_uri", "http://localhost:9999/cb");
    assert_eq!(
        bed.authorize(&params).await.status(),
        400,
        "the port of a loopback URI is matched too"
    );
}
