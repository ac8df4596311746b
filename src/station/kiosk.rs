//! The kiosk page (`GET /`, `/kiosk.js`, `/kiosk.css`): touch-friendly, embedded in the binary, with
//! no external resources (no CDN, no web fonts), so it works on a closed network.
//!
//! The Content-Security-Policy allows only this origin: the page cannot be made to load or send
//! anything elsewhere.

use axum::http::header;
use axum::response::IntoResponse;

const INDEX: &str = include_str!("kiosk/index.html");
const SCRIPT: &str = include_str!("kiosk/kiosk.js");
const STYLE: &str = include_str!("kiosk/kiosk.css");

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
}

/// `GET /`.
pub async fn index() -> impl IntoResponse {
    asset("text/html; charset=utf-8", INDEX)
}

/// `GET /kiosk.js`.
pub async fn script() -> impl IntoResponse {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

/// `GET /kiosk.css`.
pub async fn style() -> impl IntoResponse {
    asset("text/css; charset=utf-8", STYLE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_nothing_from_another_origin() {
        for asset in [INDEX, SCRIPT, STYLE] {
            assert!(!asset.contains("http://") && !asset.contains("https://"));
            assert!(!asset.contains("@import") && !asset.contains("@font-face"));
        }
        assert!(INDEX.contains("src=\"/kiosk.js\"") && INDEX.contains("href=\"/kiosk.css\""));
    }
}
