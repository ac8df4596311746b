//! Release from the phone, and "Sign in with Microsoft" at the kiosk (`[phone]`): the kiosk shows a
//! QR code of a short-lived, single-use code bound to its station; the phone that opens it signs in
//! with Entra ID ([`crate::graph::sign_in`]) and gets a session of that station, with the kiosk's
//! own page, jobs, options, policy and actions, releasing to that station's printer.
//!
//! The flow and its guards:
//! - `GET /api/v1/phone/code` (station key): a new code, its URL and that URL as an SVG QR code; the
//!   kiosk asks again every half lifetime, so the code on screen is never close to expiring.
//! - `GET /phone/start?code=…`: the code is used (once: one conditional update in the store), a
//!   sign-in under way is recorded (state, nonce, PKCE verifier, the station, the digest of a cookie
//!   set on this browser), and the browser is sent to Entra ID. An expired, used or unknown code
//!   gets a page saying so and what to do, never a sign-in.
//! - `GET /phone/callback`: the state is taken from the store (once), the browser must carry the
//!   cookie that started it (a sign-in link cannot be completed in someone else's browser), the code
//!   is redeemed with the verifier and the ID token checked; a phone session of the station is made,
//!   and the token handed to the page in the URL's fragment (never sent to a server, removed from the
//!   address bar by the page at once).
//!
//! Every refusal is audited (event `sign_in_refused`, with the station and the reason) and nothing
//! of a code, state or token is logged. The sign-ins under way and the codes live in the store, so
//! a callback may reach another daemon than the start did (PostgreSQL).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use url::Url;
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::state::StationState;
use crate::clock::SharedClock;
use crate::config::PhoneSettings;
use crate::graph::sign_in::{AuthorizeRequest, PersonSignIn, SignInError};
use crate::graph::{DelegatedToken, GraphClient};
use crate::secrets::{constant_time_eq, random_token, token_digest};
use crate::store::{AuditEvent, CodeUse, PendingLogin};

/// How long a person has between leaving for Entra ID and coming back.
const SIGN_IN_WINDOW: Duration = Duration::minutes(10);
/// The cookie tying a sign-in under way to the browser that started it.
const COOKIE: &str = "pullprintd_sign_in";

/// The Entra ID sign-in of a station's people: settings and the OpenID Connect client.
#[derive(Debug)]
pub struct PhoneSignIn {
    person: PersonSignIn,
    /// The delegated Graph token of each Entra ID session (by the session token's digest), with
    /// the session's end: kept in memory only, and for no longer than the session.
    tokens: Mutex<HashMap<String, (DelegatedToken, OffsetDateTime)>>,
    clock: SharedClock,
    public_url: Url,
    redirect_uri: Url,
    code_lifetime: Duration,
    secure_cookie: bool,
    /// `public_url` is this machine (the demo): no phone can open it, so the kiosk also offers the
    /// code's address as a link, to try the phone's pages in another browser window.
    loopback: bool,
}

impl PhoneSignIn {
    /// The sign-in `[phone]` describes, through `graph`'s app registration; `None` when it is off.
    pub fn new(
        settings: &PhoneSettings,
        graph: &GraphClient,
        clock: SharedClock,
    ) -> Option<Arc<Self>> {
        if !settings.enabled {
            return None;
        }
        let public_url = settings.public_url.clone()?;
        let redirect_uri = settings.redirect_uri()?;
        let scopes = graph.endpoints().scope.clone();
        Some(Arc::new(Self {
            person: PersonSignIn::new(graph.clone(), scopes),
            tokens: Mutex::new(HashMap::new()),
            clock,
            secure_cookie: public_url.scheme() == "https",
            loopback: public_url
                .host_str()
                .is_some_and(|h| h == "localhost" || h.starts_with("127.") || h == "[::1]"),
            public_url,
            redirect_uri,
            code_lifetime: Duration::try_from(settings.code_lifetime.0).unwrap_or(Duration::MINUTE),
        }))
    }

    fn remember(&self, session_token: &str, token: DelegatedToken, ends_at: OffsetDateTime) {
        let now = self.clock.now();
        let mut tokens = self
            .tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        tokens.retain(|_, (token, ends)| *ends > now && token.expires_at > now);
        tokens.insert(token_digest(session_token), (token, ends_at));
    }

    /// The delegated token of the Entra ID session `session_token`, while both last.
    pub fn delegated(&self, session_token: &str) -> Option<DelegatedToken> {
        let now = self.clock.now();
        self.tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&token_digest(session_token))
            .filter(|(token, ends)| *ends > now && token.expires_at > now)
            .map(|(token, _)| token.clone())
    }

    /// Forgets the delegated token of a session that ended (signed out).
    pub fn forget(&self, session_token: &str) {
        self.tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&token_digest(session_token));
    }

    fn start_url(&self, code: &str) -> Url {
        let mut url = self.public_url.clone();
        let path = format!(
            "{}/phone/start",
            self.public_url.path().trim_end_matches('/')
        );
        url.set_path(&path);
        url.query_pairs_mut().append_pair("code", code);
        url
    }
}

/// `GET /api/v1/phone/code`: a code for the kiosk to show.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PhoneCode {
    /// What the QR code says: the address a phone opens to sign in for this station.
    pub url: String,
    /// That address as a QR code, an SVG document (black modules on white, with its quiet zone).
    pub svg: String,
    /// Seconds the code can be used.
    pub expires_in_seconds: u64,
    /// Seconds after which the kiosk should show a new code.
    pub refresh_in_seconds: u64,
    /// The address is on this machine (`[phone] public_url` is a loopback address, as in the
    /// demo): no phone can reach it, so the kiosk makes the code a link to open in another window.
    #[serde(default)]
    pub link: bool,
}

fn qr_svg(text: &str) -> Result<String, ApiError> {
    let code = qrcode::QrCode::with_error_correction_level(text, qrcode::EcLevel::M)
        .map_err(|e| ApiError::internal("drawing the QR code", &e))?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(240, 240)
        .quiet_zone(true)
        .build();
    // The page inserts the element itself; an XML declaration is not an element.
    Ok(match svg.find("<svg") {
        Some(start) => svg[start..].to_owned(),
        None => svg,
    })
}

/// A new single-use code for the kiosk's QR code.
#[utoipa::path(
    get, path = "/api/v1/phone/code", tag = "station",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A new code, its address and QR code", body = PhoneCode),
        (status = 401, description = "Unknown station key", body = ErrorBody),
        (status = 404, description = "Phone release is off (`[phone] enabled`)", body = ErrorBody),
    )
)]
pub async fn code(
    State(state): State<StationState>,
    headers: HeaderMap,
) -> Result<Json<PhoneCode>, ApiError> {
    let station = state.station_by_key(&headers)?.clone();
    let phone = state.phone().ok_or_else(ApiError::phone_disabled)?;
    let code = random_token();
    let now = state.now();
    state
        .store()
        .phone_code_issue(
            &token_digest(&code),
            &station.id,
            now + phone.code_lifetime,
            now,
        )
        .await
        .map_err(|e| ApiError::store_unavailable("recording a sign-in code", &e))?;
    let url = phone.start_url(&code);
    let lifetime = u64::try_from(phone.code_lifetime.whole_seconds()).unwrap_or(60);
    Ok(Json(PhoneCode {
        svg: qr_svg(url.as_str())?,
        url: url.into(),
        expires_in_seconds: lifetime,
        refresh_in_seconds: (lifetime / 2).max(1),
        link: phone.loopback,
    }))
}

/// `GET /phone/start` query.
#[derive(Debug, Deserialize)]
pub struct StartQuery {
    code: Option<String>,
    /// `kiosk`: started by "Sign in with Microsoft" on the kiosk itself.
    at: Option<String>,
}

/// `GET /phone/callback` query (Entra ID's answer).
#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// The person's pages, in their browser's language (`Accept-Language`, among the kiosk's).
#[derive(Debug, Clone, Copy)]
struct Pages {
    language: &'static str,
}

impl Pages {
    fn of(headers: &HeaderMap) -> Self {
        let accept = headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok());
        Self {
            language: super::kiosk::language(accept),
        }
    }

    /// The page `name` (`phone.page.{name}.*` in the kiosk's words): what happened, `detail` (in
    /// English: Entra ID's or the token check's own words) and what to do.
    fn page(self, status: StatusCode, name: &str, detail: Option<&str>) -> Response {
        let word =
            |part: &str| super::kiosk::word(self.language, &format!("phone.page.{name}.{part}"));
        let mut message = word("message");
        if let Some(detail) = detail {
            message = format!("{message} {detail}");
        }
        let hint_key = format!("phone.page.{name}.hint");
        let hint = if super::kiosk::word("en", &hint_key) == hint_key {
            super::kiosk::word(self.language, "phone.page.scanAgain")
        } else {
            word("hint")
        };
        page(self.language, status, &word("title"), &message, &hint)
    }
}

/// A page for the person: what happened and what to do. Words go through HTML escaping.
fn page(language: &str, status: StatusCode, title: &str, message: &str, hint: &str) -> Response {
    let body = format!(
        "<!doctype html>\n<html lang=\"{language}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><link rel=\"stylesheet\" href=\"/kiosk.css\"></head>\
         <body><main><section id=\"phone-message\" data-status=\"{status}\"><h1>{title}</h1>\
         <p class=\"muted\" id=\"phone-reason\">{message}</p><p>{hint}</p></section></main></body></html>\n",
        title = escape(title),
        message = escape(message),
        hint = escape(hint),
        status = status.as_u16(),
    );
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    no_store(headers);
    response
}

fn no_store(headers: &mut axum::http::HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(super::kiosk::CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

fn escape(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '&' => "&amp;".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&#39;".to_owned(),
            c if c.is_control() => " ".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

/// Records a refused sign-in in the audit log (what and where, never a code or token).
async fn refused(state: &StationState, station: Option<&str>, upn: Option<&str>, reason: &str) {
    tracing::info!(station, reason, "an Entra ID sign-in was refused");
    if let Err(error) = state
        .store()
        .audit_sign_in(state.now(), AuditEvent::SignInRefused, station, upn, reason)
        .await
    {
        tracing::warn!(%error, "a refused sign-in could not be audited");
    }
}

/// `GET /phone/start?code=…`: uses the kiosk's code and sends the browser to Entra ID.
pub async fn start(
    State(state): State<StationState>,
    Query(query): Query<StartQuery>,
    headers: HeaderMap,
) -> Response {
    let pages = Pages::of(&headers);
    let Some(phone) = state.phone() else {
        return pages.page(StatusCode::NOT_FOUND, "off", None);
    };
    let Some(code) = query.code.filter(|c| !c.is_empty() && c.len() <= 128) else {
        refused(&state, None, None, "a sign-in link without a code").await;
        return pages.page(StatusCode::BAD_REQUEST, "noCode", None);
    };
    let at_kiosk = query.at.as_deref() == Some("kiosk");
    let login_state = random_token();
    let nonce = random_token();
    let verifier = random_token();
    // Entra ID's address is read before the code is used: if Entra ID is unreachable, the code on
    // screen stays good for another try.
    let authorize = phone
        .person
        .authorize_url(&AuthorizeRequest {
            redirect_uri: &phone.redirect_uri,
            state: &login_state,
            nonce: &nonce,
            verifier: &verifier,
            at_kiosk,
        })
        .await;
    let authorize = match authorize {
        Ok(url) => url,
        Err(error) => {
            tracing::warn!(%error, "Entra ID's sign-in address could not be read");
            return pages.page(StatusCode::SERVICE_UNAVAILABLE, "unreachable", None);
        }
    };
    let now = state.now();
    let used = match state
        .store()
        .phone_code_use(&token_digest(&code), now)
        .await
    {
        Ok(used) => used,
        Err(error) => {
            tracing::error!(%error, "a sign-in code could not be checked");
            return pages.page(StatusCode::SERVICE_UNAVAILABLE, "busy", None);
        }
    };
    let station_id = match used {
        CodeUse::Valid { station_id } => station_id,
        CodeUse::Used => {
            refused(&state, None, None, "a QR code used a second time").await;
            return pages.page(StatusCode::GONE, "used", None);
        }
        CodeUse::Expired => {
            refused(&state, None, None, "an expired QR code").await;
            return pages.page(StatusCode::GONE, "expired", None);
        }
        CodeUse::Unknown => {
            refused(
                &state,
                None,
                None,
                "an unknown (forged or forgotten) QR code",
            )
            .await;
            return pages.page(StatusCode::NOT_FOUND, "unknown", None);
        }
    };
    if state.station(&station_id).is_none() {
        return pages.page(StatusCode::GONE, "stationGone", None);
    }
    let browser = random_token();
    let pending = PendingLogin {
        station_id,
        browser: token_digest(&browser),
        nonce,
        verifier,
        at_kiosk,
        expires_at: now + SIGN_IN_WINDOW,
    };
    if let Err(error) = state
        .store()
        .phone_login_begin(&token_digest(&login_state), &pending, now)
        .await
    {
        tracing::error!(%error, "a sign-in under way could not be recorded");
        return pages.page(StatusCode::SERVICE_UNAVAILABLE, "busy", None);
    }
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(authorize.as_str()) {
        headers.insert(header::LOCATION, location);
    }
    let cookie = format!(
        "{COOKIE}={browser}; Path=/phone; HttpOnly; SameSite=Lax; Max-Age={}{}",
        SIGN_IN_WINDOW.whole_seconds(),
        if phone.secure_cookie { "; Secure" } else { "" }
    );
    if let Ok(cookie) = HeaderValue::from_str(&cookie) {
        headers.insert(header::SET_COOKIE, cookie);
    }
    no_store(headers);
    response
}

fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

/// `GET /phone/callback`: Entra ID's answer; makes the session.
pub async fn callback(
    State(state): State<StationState>,
    Query(query): Query<CallbackQuery>,
    headers: HeaderMap,
) -> Response {
    let pages = Pages::of(&headers);
    let Some(phone) = state.phone() else {
        return pages.page(StatusCode::NOT_FOUND, "off", None);
    };
    let Some(login_state) = query.state.filter(|s| !s.is_empty() && s.len() <= 128) else {
        refused(&state, None, None, "a sign-in answer without a state").await;
        return pages.page(StatusCode::BAD_REQUEST, "noState", None);
    };
    let pending = match state
        .store()
        .phone_login_take(&token_digest(&login_state))
        .await
    {
        Ok(Some(pending)) => pending,
        Ok(None) => {
            refused(
                &state,
                None,
                None,
                "a sign-in answer with an unknown state (tampered, or completed already)",
            )
            .await;
            return pages.page(StatusCode::BAD_REQUEST, "badState", None);
        }
        Err(error) => {
            tracing::error!(%error, "a sign-in under way could not be read");
            return pages.page(StatusCode::SERVICE_UNAVAILABLE, "busy", None);
        }
    };
    let station = Some(pending.station_id.as_str());
    if pending.expires_at <= state.now() {
        refused(&state, station, None, "a sign-in completed too late").await;
        return pages.page(StatusCode::GONE, "late", None);
    }
    let same_browser =
        cookie(&headers).is_some_and(|c| constant_time_eq(&token_digest(c), &pending.browser));
    if !same_browser {
        refused(
            &state,
            station,
            None,
            "a sign-in completed in another browser than the one that started it",
        )
        .await;
        return pages.page(StatusCode::BAD_REQUEST, "otherBrowser", None);
    }
    if let Some(error) = query.error {
        let detail = query.error_description.unwrap_or_default();
        // Entra ID's description starts with its AADSTS code, which is what an administrator needs.
        let first_line: String = detail
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(300)
            .collect();
        refused(
            &state,
            station,
            None,
            &format!("Entra ID answered {error}: {first_line}"),
        )
        .await;
        return pages.page(
            StatusCode::FORBIDDEN,
            "entraError",
            Some(&format!("{error}: {first_line}")),
        );
    }
    let Some(code) = query.code.filter(|c| !c.is_empty()) else {
        refused(&state, station, None, "a sign-in answer without a code").await;
        return pages.page(StatusCode::BAD_REQUEST, "noAuthCode", None);
    };
    let person = match phone
        .person
        .redeem(
            &code,
            &phone.redirect_uri,
            &pending.verifier,
            &pending.nonce,
        )
        .await
    {
        Ok(person) => person,
        Err(SignInError::Token(reason)) => {
            refused(
                &state,
                station,
                None,
                &format!("the ID token was refused: {reason}"),
            )
            .await;
            return pages.page(
                StatusCode::FORBIDDEN,
                "tokenRefused",
                Some(&format!("{reason}.")),
            );
        }
        Err(SignInError::Graph(error)) => {
            tracing::warn!(%error, "an Entra ID sign-in could not be completed");
            refused(
                &state,
                station,
                None,
                &format!("the code could not be redeemed: {error}"),
            )
            .await;
            return pages.page(StatusCode::BAD_GATEWAY, "redeemFailed", None);
        }
    };
    let display_name = state
        .users()
        .by_upn(&person.upn)
        .map_or_else(|| person.display_name.clone(), |u| u.display_name.clone());
    let sessions = state.sessions();
    let made = if pending.at_kiosk {
        sessions
            .create(&person.upn, &display_name, &pending.station_id)
            .await
    } else {
        sessions
            .create_phone(&person.upn, &display_name, &pending.station_id)
            .await
    };
    let token = match made {
        Ok((token, session)) => {
            phone.remember(&token, person.token.clone(), session.ends_at);
            token
        }
        Err(error) => {
            tracing::error!(%error, "a session could not be recorded");
            return pages.page(StatusCode::SERVICE_UNAVAILABLE, "busy", None);
        }
    };
    tracing::info!(
        station = pending.station_id,
        upn = person.upn,
        phone = !pending.at_kiosk,
        "signed in with Entra ID"
    );
    let target = if pending.at_kiosk { "/" } else { "/phone" };
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(&format!("{target}#session={token}")) {
        headers.insert(header::LOCATION, location);
    }
    if let Ok(clear) = HeaderValue::from_str(&format!(
        "{COOKIE}=; Path=/phone; HttpOnly; SameSite=Lax; Max-Age=0"
    )) {
        headers.insert(header::SET_COOKIE, clear);
    }
    no_store(headers);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_on_a_page_is_escaped() {
        assert_eq!(
            escape("<script>\"x\" & 'y'</script>"),
            "&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/script&gt;"
        );
    }

    #[test]
    fn the_sign_in_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; pullprintd_sign_in=abc; b=2"),
        );
        assert_eq!(cookie(&headers), Some("abc"));
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("pullprintd_sign_inx=1"),
        );
        assert_eq!(cookie(&headers), None);
    }

    #[test]
    fn the_qr_code_is_an_svg_element() {
        let svg = qr_svg("https://print.example.org/phone/start?code=abc").unwrap_or_default();
        assert!(svg.starts_with("<svg"), "{svg}");
    }
}
