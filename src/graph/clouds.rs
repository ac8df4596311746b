//! National clouds: where Entra ID and Graph live for each cloud Universal Print is offered in.
//!
//! Universal Print exists in the global cloud, US Government L4 (GCC High) and L5 (DoD), and not in
//! China (21Vianet): naming that cloud gives an error saying so, rather than an obscure failure later.
//!
//! [`Endpoints`] resolves a cloud plus the optional overrides (the emulator, tests) into the three
//! things a client needs: the login root, the Graph `/v1.0/` root and the `.default` scope.
//! Choice: when `base_url` is overridden the scope is `{base_url}/.default`, because a token is
//! minted for the resource it is used against (the emulator checks this like Entra does); a real
//! Graph root always comes with its own cloud's scope.

use url::Url;

use std::str::FromStr;

use serde::Serialize;

use super::error::GraphError;

/// A Microsoft cloud that offers Universal Print (`graph.cloud`). Where its Entra ID and Graph live
/// is below ([`Endpoints`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Cloud {
    /// The worldwide service (also GCC moderate).
    #[default]
    Global,
    /// US Government L4 (GCC High).
    UsGov,
    /// US Government L5 (DoD).
    Dod,
}

impl Cloud {
    /// The name used in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Global => "global",
            Self::UsGov => "usgov",
            Self::Dod => "dod",
        }
    }
}

impl FromStr for Cloud {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name.trim().to_ascii_lowercase().as_str() {
            "global" | "public" | "worldwide" => Ok(Self::Global),
            "usgov" | "gcchigh" | "l4" => Ok(Self::UsGov),
            "dod" | "l5" => Ok(Self::Dod),
            "china" | "21vianet" | "mooncake" | "azurechina" => Err(
                "Universal Print is not available in the China cloud operated by 21Vianet, so pullprintd \
                 cannot work there; use a tenant in the global or a US Government cloud"
                    .to_owned(),
            ),
            other => Err(format!(
                "unknown cloud {other:?}: use \"global\", \"usgov\" (GCC High, L4) or \"dod\" (L5)"
            )),
        }
    }
}

/// Where each cloud's Entra ID and Graph are (the cloud itself is a setting: [`Cloud`]).
impl Cloud {
    /// The Entra ID (login) root.
    pub fn login_root(self) -> &'static str {
        match self {
            Self::Global => "https://login.microsoftonline.com",
            Self::UsGov | Self::Dod => "https://login.microsoftonline.us",
        }
    }

    /// The Graph service root (without `/v1.0`).
    pub fn graph_root(self) -> &'static str {
        match self {
            Self::Global => "https://graph.microsoft.com",
            Self::UsGov => "https://graph.microsoft.us",
            Self::Dod => "https://dod-graph.microsoft.us",
        }
    }

    /// The client-credentials scope: `{graph root}/.default`.
    pub fn default_scope(self) -> String {
        format!("{}/.default", self.graph_root())
    }
}

/// The resolved roots one client talks to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// The login root; the token endpoint is `{login}/{tenant}/oauth2/v2.0/token`.
    pub login: Url,
    /// The Graph API root, ending in `/v1.0/`.
    pub graph_v1: Url,
    /// The `.default` scope requested for tokens.
    pub scope: String,
}

impl Endpoints {
    /// Resolves `cloud` with the optional overrides (`/v1.0` is appended to `base_url`).
    pub fn resolve(
        cloud: Cloud,
        base_url: Option<&Url>,
        login_url: Option<&Url>,
    ) -> Result<Self, GraphError> {
        let parse = |what: &str, raw: &str| {
            Url::parse(raw).map_err(|error| {
                GraphError::Configuration(format!("{what} {raw:?} is not a URL: {error}"))
            })
        };
        let graph_root = match base_url {
            Some(url) => url.clone(),
            None => parse("graph root", cloud.graph_root())?,
        };
        let scope = match base_url {
            Some(url) => format!("{}/.default", url.as_str().trim_end_matches('/')),
            None => cloud.default_scope(),
        };
        let login = match login_url {
            Some(url) => url.clone(),
            None => parse("login root", cloud.login_root())?,
        };
        Ok(Self {
            login: with_trailing_slash(login),
            graph_v1: join_path(&graph_root, "v1.0/")?,
            scope,
        })
    }

    /// The token endpoint of `tenant`.
    pub fn token_endpoint(&self, tenant: &str) -> Result<Url, GraphError> {
        join_segments(&self.login, &[tenant, "oauth2", "v2.0", "token"])
    }

    /// The device authorization endpoint of `tenant`.
    pub fn device_code_endpoint(&self, tenant: &str) -> Result<Url, GraphError> {
        join_segments(&self.login, &[tenant, "oauth2", "v2.0", "devicecode"])
    }

    /// A Graph URL from path segments below `/v1.0/`, each percent-encoded.
    pub fn graph_url(&self, segments: &[&str]) -> Result<Url, GraphError> {
        join_segments(&self.graph_v1, segments)
    }
}

fn with_trailing_slash(mut url: Url) -> Url {
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url
}

fn join_path(base: &Url, path: &str) -> Result<Url, GraphError> {
    with_trailing_slash(base.clone())
        .join(path)
        .map_err(|error| {
            GraphError::Configuration(format!("cannot append {path:?} to {base}: {error}"))
        })
}

pub(crate) fn join_segments(base: &Url, segments: &[&str]) -> Result<Url, GraphError> {
    let mut url = base.clone();
    url.path_segments_mut()
        .map_err(|()| {
            GraphError::Configuration(format!(
                "{base} cannot be a base URL; use http(s)://host[/path]"
            ))
        })?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn each_cloud_has_its_login_host_graph_root_and_scope() {
        let dod = Endpoints::resolve(Cloud::Dod, None, None).unwrap();
        assert_eq!(dod.login.as_str(), "https://login.microsoftonline.us/");
        assert_eq!(
            dod.graph_v1.as_str(),
            "https://dod-graph.microsoft.us/v1.0/"
        );
        assert_eq!(dod.scope, "https://dod-graph.microsoft.us/.default");
        assert_eq!(
            Cloud::UsGov.default_scope(),
            "https://graph.microsoft.us/.default"
        );
        assert_eq!(
            Cloud::Global.login_root(),
            "https://login.microsoftonline.com"
        );
        let token = Endpoints::resolve(Cloud::Global, None, None)
            .unwrap()
            .token_endpoint("contoso.com")
            .unwrap();
        assert_eq!(
            token.as_str(),
            "https://login.microsoftonline.com/contoso.com/oauth2/v2.0/token"
        );
    }

    #[test]
    fn clouds_parse_from_their_lowercase_names() {
        for cloud in [Cloud::Global, Cloud::UsGov, Cloud::Dod] {
            let json = serde_json::to_string(&cloud).unwrap();
            assert_eq!(json, format!("\"{}\"", cloud.as_str()));
            assert_eq!(cloud.as_str().parse::<Cloud>().unwrap(), cloud);
        }
    }

    #[test]
    fn the_china_cloud_is_refused_with_a_clear_reason() {
        for name in ["china", "21Vianet", "mooncake"] {
            let error = name.parse::<Cloud>().unwrap_err().to_string();
            assert!(
                error.contains("not available") && error.contains("21Vianet"),
                "{error}"
            );
        }
    }

    #[test]
    fn an_overridden_base_url_gets_v1_appended_and_its_own_scope() {
        let base = Url::parse("http://127.0.0.1:9000").unwrap();
        let login = Url::parse("http://127.0.0.1:9000/login").unwrap();
        let endpoints = Endpoints::resolve(Cloud::Global, Some(&base), Some(&login)).unwrap();
        assert_eq!(endpoints.graph_v1.as_str(), "http://127.0.0.1:9000/v1.0/");
        assert_eq!(endpoints.scope, "http://127.0.0.1:9000/.default");
        assert_eq!(
            endpoints.token_endpoint("t").unwrap().as_str(),
            "http://127.0.0.1:9000/login/t/oauth2/v2.0/token"
        );
    }

    #[test]
    fn path_segments_are_percent_encoded() {
        let endpoints = Endpoints::resolve(Cloud::Global, None, None).unwrap();
        let url = endpoints
            .graph_url(&["print", "printers", "a/b c", "jobs", "1?x"])
            .unwrap();
        assert_eq!(
            url.as_str(),
            "https://graph.microsoft.com/v1.0/print/printers/a%2Fb%20c/jobs/1%3Fx"
        );
    }
}
