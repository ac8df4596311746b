//! The HTML of the emulated sign-in: the page that lists the tenant's people as buttons (each posts
//! the authorization request back with the chosen person) and the error page Entra shows when it
//! cannot redirect.
//!
//! Self-contained: no script, no external resource, inline styles only (the answer's
//! `Content-Security-Policy` allows nothing else); laid out for a 390 px wide phone with touch targets
//! of at least 48 px. Stable hooks for browser tests: each person's button carries `data-upn`, the
//! cancel button `data-action="cancel"`, the error page's `main` carries `data-error-code`
//! (`AADSTS50011`…). Every value written into the page is HTML-escaped.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::fmt::Write as _;

/// A person the sign-in page offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Person {
    pub upn: String,
    pub name: String,
}

/// Escapes text for HTML element content and quoted attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "\
*{box-sizing:border-box}\
body{margin:0;font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;background:#f2f2f2;color:#1b1b1b}\
main{max-width:28rem;margin:0 auto;padding:1.5rem 1rem;background:#fff;min-height:100vh}\
h1{font-size:1.5rem;font-weight:600;margin:0 0 .5rem}\
p{margin:.25rem 0 1rem;line-height:1.4}\
.app{color:#555;font-size:.9rem;word-break:break-all}\
ul{list-style:none;margin:0;padding:0}\
li{margin:0 0 .75rem}\
button{display:block;width:100%;min-height:3.5rem;padding:.75rem 1rem;font:inherit;font-size:1.1rem;\
text-align:left;border:1px solid #8a8a8a;border-radius:.5rem;background:#fff;color:inherit;cursor:pointer}\
button:focus,button:hover{border-color:#0067b8;outline:2px solid #0067b8}\
.name{display:block;font-weight:600}\
.upn{display:block;font-size:.9rem;color:#555;word-break:break-all}\
.cancel{text-align:center;background:#e6e6e6;margin-top:1.5rem}\
.scopes{font-size:.9rem;color:#555;padding-left:1.25rem}\
.error{border-left:4px solid #a80000;padding:.5rem 1rem;background:#fde7e9;word-break:break-word}";

fn document(title: &str, main_attributes: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head>\
         <body><main{main_attributes}>{body}</main></body></html>\n",
        escape(title)
    )
}

/// The sign-in page: one form posting to `action` with the request's parameters as hidden fields,
/// one submit button per person (`name="upn"`), and a cancel button.
pub(crate) fn sign_in_page(
    action: &str,
    client_id: &str,
    graph_scopes: &[String],
    carried: &[(String, String)],
    people: &[Person],
) -> String {
    let mut body = String::new();
    body.push_str("<h1>Pick an account</h1>");
    let _ = write!(
        body,
        "<p class=\"app\">to continue to the app {}</p>",
        escape(client_id)
    );
    if !graph_scopes.is_empty() {
        body.push_str("<p>It will be allowed to:</p><ul class=\"scopes\">");
        for scope in graph_scopes {
            let _ = write!(body, "<li>{}</li>", escape(scope));
        }
        body.push_str("</ul>");
    }
    let _ = write!(body, "<form method=\"post\" action=\"{}\">", escape(action));
    for (name, value) in carried {
        let _ = write!(
            body,
            "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
            escape(name),
            escape(value)
        );
    }
    if people.is_empty() {
        body.push_str("<p>There is nobody in this tenant's directory to sign in as.</p>");
    } else {
        body.push_str("<ul class=\"people\">");
        for person in people {
            let upn = escape(&person.upn);
            let _ = write!(
                body,
                "<li><button type=\"submit\" name=\"upn\" value=\"{upn}\" data-upn=\"{upn}\">\
                 <span class=\"name\">{}</span><span class=\"upn\">{upn}</span></button></li>",
                escape(&person.name)
            );
        }
        body.push_str("</ul>");
    }
    body.push_str(
        "<button type=\"submit\" name=\"cancel\" value=\"1\" class=\"cancel\" data-action=\"cancel\">Cancel</button></form>",
    );
    document("Sign in to your account", "", &body)
}

/// The page Entra shows when it must not redirect (unknown app, unregistered redirect URI…).
pub(crate) fn error_page(code: u32, message: &str, trace: &str) -> String {
    let body = format!(
        "<h1>Sorry, but we\u{2019}re having trouble signing you in.</h1>\
         <p class=\"error\">AADSTS{code}: {}</p><p class=\"app\">Trace ID: {}</p>",
        escape(message),
        escape(trace)
    );
    document(
        "Sign in to your account",
        &format!(" data-error-code=\"AADSTS{code}\""),
        &body,
    )
}

/// An HTML answer that may not be cached, framed, or load anything.
pub(crate) fn html(status: StatusCode, page: String) -> Response {
    let mut response = (status, page).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_written_into_the_page_is_escaped() {
        let page = sign_in_page(
            "/t/oauth2/v2.0/authorize",
            "app\"<x>",
            &["PrintJob.ReadWriteBasic".to_owned()],
            &[(
                "state".to_owned(),
                "\"><script>alert(1)</script>".to_owned(),
            )],
            &[Person {
                upn: "o'neil@contoso.example".to_owned(),
                name: "<b>O'Neil</b>".to_owned(),
            }],
        );
        assert!(!page.contains("<script>"), "{page}");
        assert!(!page.contains("<b>O"), "{page}");
        assert!(
            page.contains("data-upn=\"o&#39;neil@contoso.example\""),
            "{page}"
        );
        assert!(page.contains("value=\"&quot;&gt;&lt;script&gt;"), "{page}");
    }

    #[test]
    fn the_error_page_names_its_code_for_tests_to_find() {
        let page = error_page(50_011, "The redirect URI 'x' does not match.", "t");
        assert!(page.contains("data-error-code=\"AADSTS50011\""));
        assert!(page.contains("AADSTS50011: The redirect URI &#39;x&#39; does not match."));
    }
}
