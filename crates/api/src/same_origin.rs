//! What servers listening on localhost do against web pages: a page on any site can make the
//! visitor's browser send requests to `127.0.0.1`, so the API answers only requests addressed to
//! itself (`Host`, which DNS rebinding cannot fake) and refuses state-changing requests that a
//! browser marks as coming from another site (`Sec-Fetch-Site`, `Origin`). The console, served
//! from the same origin, passes both; so does every non-browser client.

use crate::error::ApiError;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;

/// The request guard's settings, fixed when the server binds.
#[derive(Debug, Clone)]
pub struct SameOrigin(Arc<Rules>);

#[derive(Debug)]
struct Rules {
    /// `None`: any `Host` (a token protects the API and no allow-list was given).
    hosts: Option<HashSet<String>>,
}

impl SameOrigin {
    /// Hosts the server answers to: its listening address, `localhost` and the loopback
    /// addresses on its port, plus `extra`. Without a token the `Host` is always checked; with
    /// one, only when `extra` is given (a public server's names are not known in advance).
    pub fn new(addr: SocketAddr, extra: &[String], token_required: bool) -> Self {
        let hosts = (!token_required || !extra.is_empty()).then(|| {
            let port = addr.port();
            let mut hosts: HashSet<String> = [
                addr.to_string(),
                format!("localhost:{port}"),
                format!("127.0.0.1:{port}"),
                format!("[::1]:{port}"),
            ]
            .into_iter()
            .collect();
            if port == 80 {
                hosts.extend(["localhost", "127.0.0.1", "[::1]"].map(str::to_owned));
                hosts.insert(addr.ip().to_string());
            }
            hosts.extend(extra.iter().cloned());
            hosts
        });
        Self(Arc::new(Rules { hosts }))
    }

    fn check(&self, method: &Method, headers: &HeaderMap) -> Result<(), ApiError> {
        let host = header_text(headers, header::HOST.as_str()).map(str::to_ascii_lowercase);
        if let Some(allowed) = &self.0.hosts {
            match &host {
                Some(host) if allowed.contains(host) => {}
                Some(host) => {
                    return Err(ApiError::Forbidden(format!(
                        "Host {host:?} is not an address of this server; add it to \
                         STEPHOOK_API_ALLOWED_HOSTS if a proxy forwards it"
                    )));
                }
                None => return Err(ApiError::Forbidden("no Host header".to_owned())),
            }
        }
        if is_safe(method) {
            return Ok(());
        }
        if let Some(site) = header_text(headers, "sec-fetch-site")
            && !matches!(site, "same-origin" | "none")
        {
            return Err(ApiError::Forbidden(format!(
                "a {site} request from a web page cannot change anything here"
            )));
        }
        if let Some(origin) = header_text(headers, header::ORIGIN.as_str()) {
            let own = host.as_deref().is_some_and(|host| {
                let origin = origin.to_ascii_lowercase();
                origin == format!("http://{host}") || origin == format!("https://{host}")
            });
            if !own {
                return Err(ApiError::Forbidden(format!(
                    "a request from origin {origin:?} cannot change anything here"
                )));
            }
        }
        Ok(())
    }
}

pub async fn guard(State(rules): State<SameOrigin>, request: Request, next: Next) -> Response {
    match rules.check(request.method(), request.headers()) {
        Ok(()) => next.run(request).await,
        Err(error) => {
            tracing::warn!(method = %request.method(), path = request.uri().path(), %error,
                "request refused");
            error.into_response()
        }
    }
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    fn loopback() -> SameOrigin {
        SameOrigin::new(SocketAddr::from(([127, 0, 0, 1], 8283)), &[], false)
    }

    #[test]
    fn only_its_own_hosts_are_answered_without_a_token() {
        let rules = loopback();
        for host in [
            "127.0.0.1:8283",
            "localhost:8283",
            "LOCALHOST:8283",
            "[::1]:8283",
        ] {
            let mut map = HeaderMap::new();
            map.insert(header::HOST, HeaderValue::from_str(host).unwrap());
            assert!(rules.check(&Method::GET, &map).is_ok(), "{host}");
        }
        for host in ["evil.example:8283", "127.0.0.1:9999", "attacker.test"] {
            let mut map = HeaderMap::new();
            map.insert(header::HOST, HeaderValue::from_str(host).unwrap());
            assert!(rules.check(&Method::GET, &map).is_err(), "{host}");
        }
        assert!(rules.check(&Method::GET, &HeaderMap::new()).is_err());
    }

    #[test]
    fn cross_site_writes_are_refused_and_same_origin_ones_pass() {
        let rules = loopback();
        let host = ("host", "127.0.0.1:8283");
        let refused = [
            headers(&[host, ("sec-fetch-site", "cross-site")]),
            headers(&[host, ("sec-fetch-site", "same-site")]),
            headers(&[host, ("origin", "http://evil.example")]),
            headers(&[host, ("origin", "null")]),
            headers(&[host, ("origin", "http://localhost:3000")]),
        ];
        for map in refused {
            assert!(rules.check(&Method::POST, &map).is_err(), "{map:?}");
        }
        let allowed = [
            headers(&[host]),
            headers(&[
                host,
                ("sec-fetch-site", "same-origin"),
                ("origin", "http://127.0.0.1:8283"),
            ]),
            headers(&[host, ("sec-fetch-site", "none")]),
        ];
        for map in allowed {
            assert!(rules.check(&Method::POST, &map).is_ok(), "{map:?}");
        }
        // Reading is not writing: a cross-site GET of an allowed Host is still answered (the
        // browser keeps the answer from the other site).
        assert!(
            rules
                .check(
                    &Method::GET,
                    &headers(&[host, ("sec-fetch-site", "cross-site")])
                )
                .is_ok()
        );
    }

    #[test]
    fn with_a_token_any_host_unless_an_allow_list_is_given() {
        let public = SocketAddr::from(([0, 0, 0, 0], 8283));
        let open = SameOrigin::new(public, &[], true);
        assert!(
            open.check(&Method::GET, &headers(&[("host", "steps.example.com")]))
                .is_ok()
        );
        let listed = SameOrigin::new(public, &["steps.example.com".to_owned()], true);
        assert!(
            listed
                .check(&Method::GET, &headers(&[("host", "steps.example.com")]))
                .is_ok()
        );
        assert!(
            listed
                .check(&Method::GET, &headers(&[("host", "other.example.com")]))
                .is_err()
        );
    }
}
