//! The kiosk page (`GET /`, `/kiosk.js`, `/kiosk.css`, `/kiosk-strings.js`): touch-first, accessible,
//! in the person's language, embedded in the binary, with no external resources (no CDN, no web
//! fonts), so it works on a closed network.
//!
//! Words live in one JSON file per language (`kiosk/lang/<code>.json`, English the reference); they
//! reach the page as one script, `/kiosk-strings.js`, so the page has them before it draws anything
//! and needs no build step. A key missing in a language falls back to English in the page; the tests
//! here keep every language complete.
//!
//! The Content-Security-Policy allows only this origin: the page cannot be made to load or send
//! anything elsewhere.

use std::sync::LazyLock;

use axum::http::header;
use axum::response::IntoResponse;

const INDEX: &str = include_str!("kiosk/index.html");
const SCRIPT: &str = include_str!("kiosk/kiosk.js");
const STYLE: &str = include_str!("kiosk/kiosk.css");

/// The page's languages, English first (the fallback): code and strings.
const LANGUAGES: &[(&str, &str)] = &[
    ("en", include_str!("kiosk/lang/en.json")),
    ("de", include_str!("kiosk/lang/de.json")),
    ("fr", include_str!("kiosk/lang/fr.json")),
    ("es", include_str!("kiosk/lang/es.json")),
    ("nl", include_str!("kiosk/lang/nl.json")),
];

/// `const KIOSK_STRINGS = {"en": {...}, "de": {...}, ...};` (JSON is valid JavaScript).
static STRINGS: LazyLock<String> = LazyLock::new(|| {
    let languages: Vec<String> = LANGUAGES
        .iter()
        .map(|(code, json)| format!("\"{code}\": {}", json.trim()))
        .collect();
    format!(
        "\"use strict\";\n// The kiosk's words, one object per language (from kiosk/lang/*.json).\n\
         const KIOSK_STRINGS = {{\n{}\n}};\n",
        languages.join(",\n")
    )
});

/// Each language's words, parsed once (the phone's server-side pages use them).
static WORDS: LazyLock<Vec<(&'static str, serde_json::Map<String, serde_json::Value>)>> =
    LazyLock::new(|| {
        LANGUAGES
            .iter()
            .map(|(code, json)| (*code, serde_json::from_str(json).unwrap_or_default()))
            .collect()
    });

/// The first of the page's languages that an `Accept-Language` header names; English otherwise.
pub fn language(accept: Option<&str>) -> &'static str {
    for wanted in accept.unwrap_or_default().split(',') {
        let tag = wanted.split(';').next().unwrap_or("").trim();
        let primary = tag.split('-').next().unwrap_or("").to_ascii_lowercase();
        if let Some((code, _)) = LANGUAGES.iter().find(|(code, _)| *code == primary) {
            return code;
        }
    }
    "en"
}

/// The words for `key` in `language`, falling back to English.
pub fn word(language: &str, key: &str) -> String {
    let find = |code: &str| {
        WORDS
            .iter()
            .find(|(c, _)| *c == code)
            .and_then(|(_, words)| words.get(key))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    find(language)
        .or_else(|| find("en"))
        .unwrap_or_else(|| key.to_owned())
}

/// Only this origin: the page cannot load or send anything elsewhere.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
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

/// The kiosk page in phone mode: the same screens for the signed-in person, no station set-up
/// (the phone has no station key; its session came from the kiosk's QR code).
static PHONE: LazyLock<String> =
    LazyLock::new(|| INDEX.replacen("<body>", "<body data-mode=\"phone\">", 1));

/// `GET /phone`: the page a phone shows after signing in.
pub async fn phone() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::CACHE_CONTROL, "no-store"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            // The address carries the session in its fragment until the page removes it.
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        PHONE.as_str(),
    )
}

/// `GET /kiosk.js`.
pub async fn script() -> impl IntoResponse {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

/// `GET /kiosk.css`.
pub async fn style() -> impl IntoResponse {
    asset("text/css; charset=utf-8", STYLE)
}

/// `GET /kiosk-strings.js`: every language's words.
pub async fn strings() -> impl IntoResponse {
    asset("text/javascript; charset=utf-8", STRINGS.as_str())
}

#[cfg(test)]
mod tests_words {
    use super::*;

    #[test]
    fn the_first_known_language_of_accept_language_is_chosen_and_english_is_the_fallback() {
        assert_eq!(language(Some("de-CH,de;q=0.9,en;q=0.8")), "de");
        assert_eq!(language(Some("ja-JP, fr;q=0.5")), "fr");
        assert_eq!(language(Some("ja")), "en");
        assert_eq!(language(None), "en");
        assert_eq!(
            word("de", "phone.page.used.title"),
            "Dieser Code wurde bereits verwendet"
        );
        assert_eq!(
            word("xx", "phone.page.used.title"),
            "This code was already used"
        );
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    fn language(code: &str) -> BTreeMap<String, String> {
        let (_, json) = LANGUAGES.iter().find(|(c, _)| *c == code).unwrap();
        serde_json::from_str(json).unwrap_or_else(|e| panic!("kiosk/lang/{code}.json: {e}"))
    }

    fn placeholders(text: &str) -> BTreeSet<String> {
        let re = regex::Regex::new(r"\{[a-z]+\}").unwrap();
        re.find_iter(text).map(|m| m.as_str().to_owned()).collect()
    }

    #[test]
    fn the_page_loads_nothing_from_another_origin() {
        for asset in [INDEX, SCRIPT, STYLE, STRINGS.as_str()] {
            assert!(!asset.contains("http://") && !asset.contains("https://"));
            assert!(!asset.contains("@import") && !asset.contains("@font-face"));
        }
        assert!(INDEX.contains("src=\"/kiosk.js\"") && INDEX.contains("href=\"/kiosk.css\""));
        assert!(INDEX.contains("src=\"/kiosk-strings.js\""));
    }

    #[test]
    fn every_language_has_exactly_the_english_keys_with_the_same_placeholders() {
        let english = language("en");
        for (code, _) in LANGUAGES {
            let other = language(code);
            let missing: Vec<_> = english.keys().filter(|k| !other.contains_key(*k)).collect();
            let extra: Vec<_> = other.keys().filter(|k| !english.contains_key(*k)).collect();
            assert!(
                missing.is_empty() && extra.is_empty(),
                "kiosk/lang/{code}.json: missing {missing:?}, not in English {extra:?}"
            );
            for (key, text) in &other {
                assert!(!text.trim().is_empty(), "{code}: `{key}` is empty");
                assert_eq!(
                    placeholders(text),
                    placeholders(&english[key]),
                    "{code}: `{key}` has other placeholders than English"
                );
            }
        }
    }

    #[test]
    fn the_german_page_has_no_english_string_left() {
        // Words that are the same in both languages are named here, one by one.
        let same: &[(&str, &str)] = &[
            ("de", "pin.label"),
            ("es", "pin.label"),
            ("fr", "job.pages"),
            ("fr", "option.orientation"),
            ("fr", "option.pageRanges"),
        ];
        let english = language("en");
        for (code, _) in LANGUAGES.iter().filter(|(c, _)| *c != "en") {
            for (key, text) in language(code) {
                assert!(
                    text != english[&key] || same.contains(&(code, key.as_str())),
                    "{code}: `{key}` is still English: {text:?}"
                );
            }
        }
    }

    #[test]
    fn every_word_the_page_asks_for_is_in_english_and_every_error_code_has_its_words() {
        let english = language("en");
        // data-i18n="key" and data-i18n-label="key" in the page, t("key") in the script.
        let attribute = regex::Regex::new(r#"data-i18n(?:-label)?="([^"]+)""#).unwrap();
        let call = regex::Regex::new(r#"(?:\bt|key): "([a-zA-Z.]+)""#).unwrap();
        let direct = regex::Regex::new(r#"\bt\("([a-zA-Z.]+)"\s*[,)]"#).unwrap();
        let mut asked = BTreeSet::new();
        for found in attribute.captures_iter(INDEX) {
            asked.insert(found[1].to_owned());
        }
        for found in call
            .captures_iter(SCRIPT)
            .chain(direct.captures_iter(SCRIPT))
        {
            asked.insert(found[1].to_owned());
        }
        assert!(asked.len() > 40, "the scan found only {asked:?}");
        for key in &asked {
            assert!(
                english.contains_key(key),
                "kiosk/lang/en.json has no `{key}`"
            );
        }
        for (code, _) in super::super::error::CODES {
            assert!(
                english.contains_key(&format!("error.{code}")),
                "kiosk/lang/en.json has no words for the error code `{code}` (key `error.{code}`)"
            );
        }
    }

    #[test]
    fn the_strings_script_carries_every_language_with_english_first() {
        let script = STRINGS.as_str();
        let first = LANGUAGES
            .iter()
            .map(|(code, _)| script.find(&format!("\"{code}\": {{")).unwrap())
            .collect::<Vec<_>>();
        assert_eq!(first[0], first.iter().copied().min().unwrap());
        assert!(script.contains("const KIOSK_STRINGS = {"));
    }
}
