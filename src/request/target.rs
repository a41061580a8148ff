//! Where a call goes: the caller's path or URL resolved against `base_url`, and confined to it.

use url::Url;

use crate::error::{Error, Result};

/// Resolves what the caller passed to `get`/`post`/…: an absolute URL as is, anything else
/// relative to `base_url`, whose path is kept as a prefix (`https://api.example/v2` + `/users`
/// is `https://api.example/v2/users`). A scheme-relative `//host/…` stays on the base host.
pub(crate) fn resolve_url(base: &Url, input: &str) -> Result<Url> {
    // The common case, a plain absolute path, without parsing the base URL again.
    if let Some(rest) = input.strip_prefix('/')
        && !rest.starts_with('/')
        && !input.contains(['#', '\\'])
    {
        let (path, query) = input
            .split_once('?')
            .map_or((input, None), |(p, q)| (p, Some(q)));
        // Without a '.', '%' or ';' the path can neither be nor hide a dot segment: appended to
        // the base's path, it stays on the base's origin and under its path by construction,
        // so most calls skip the checks below.
        let plain = !path.contains(['.', '%', ';']);
        let dot_segment = !plain
            && path
                .split('/')
                .any(|s| s == "." || s == ".." || s.eq_ignore_ascii_case("%2e"));
        if !dot_segment {
            let mut url = base.clone();
            match base.path().trim_end_matches('/') {
                "" => url.set_path(path),
                prefix => url.set_path(&format!("{prefix}{path}")),
            }
            // The base has no query (the builder refuses one).
            if query.is_some() {
                url.set_query(query);
            }
            return if plain { Ok(url) } else { confine(base, url) };
        }
    }
    match Url::parse(input) {
        Ok(url) => Ok(url),
        Err(url::ParseError::RelativeUrlWithoutBase) => {
            let mut dir = base.clone();
            if !dir.path().ends_with('/') {
                let path = format!("{}/", dir.path());
                dir.set_path(&path);
            }
            let url = dir
                .join(input.trim_start_matches('/'))
                .map_err(|e| Error::builder(format!("invalid URL ({e})")))?;
            confine(base, url)
        }
        Err(e) => Err(Error::builder(format!("invalid URL ({e})"))),
    }
}

/// A relative path stays under `base_url`'s path: `../`, `%2e%2e/` and `/../` cannot climb out
/// of `https://api.example/v2` to reach another API on the same host with our credentials. Dot
/// segments hidden behind an encoded slash (`..%2f`) are refused too, since some servers decode
/// the slash before they resolve the dots.
fn confine(base: &Url, url: Url) -> Result<Url> {
    // A relative input that the URL parser still reads as scheme-relative (`\t//host/…`,
    // `/\\/host/…`) would reach another host or port: same origin, or refused.
    let same_origin = crate::gate::same_origin(&url, base);
    let prefix = base.path().trim_end_matches('/');
    let path = url.path();
    let inside = path
        .strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
    // `..;` is `..` to servers that drop path parameters (Tomcat, Jetty, Spring).
    // Without ".." no segment can be one: most paths skip the split.
    let climbs = |path: &str| {
        path.contains("..")
            && path
                .split(['/', '\\'])
                .any(|segment| segment.split(';').next() == Some(".."))
    };
    // Most paths have nothing encoded: checked as they are, without decoding a copy.
    let hidden_dots = if path.contains(['%', ';', '\\']) {
        climbs(
            &path
                .to_ascii_lowercase()
                .replace("%2e", ".")
                .replace("%2f", "/")
                .replace("%5c", "/")
                .replace("%3b", ";"),
        )
    } else {
        climbs(path)
    };
    if same_origin && inside && !hidden_dots {
        Ok(url)
    } else {
        Err(Error::builder(
            "the path climbs out of base_url's path (dot segments); use an absolute URL \
             to call another path on purpose",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(base: &str, input: &str) -> String {
        resolve_url(&Url::parse(base).expect("base"), input)
            .expect("resolves")
            .to_string()
    }

    #[test]
    fn relative_paths_keep_the_base_path_prefix() {
        assert_eq!(
            resolve("https://a.example/v2", "/users/1"),
            "https://a.example/v2/users/1"
        );
        assert_eq!(
            resolve("https://a.example/v2/", "users?x=1"),
            "https://a.example/v2/users?x=1"
        );
        assert_eq!(
            resolve("https://a.example", "/users"),
            "https://a.example/users"
        );
    }

    #[test]
    fn the_fast_path_agrees_with_joining() {
        for input in ["/users/1", "/a b/ü?q=1 2&x", "/v1/../admin", "/./x", "/x?"] {
            let base = Url::parse("https://a.example/v2").expect("base");
            let fast = resolve_url(&base, input).expect("fast");
            let mut dir = base.clone();
            dir.set_path("/v2/");
            let joined = dir.join(input.trim_start_matches('/')).expect("join");
            assert_eq!(fast, joined, "{input}");
        }
    }

    #[test]
    fn relative_paths_cannot_climb_out_of_the_base_path() {
        let base = Url::parse("https://a.example/v2").expect("base");
        for input in [
            "../admin",
            "/../admin",
            "/%2e%2e/admin",
            "%2E%2E/admin",
            "/.%2e/admin",
            "/users/../../admin",
            "/..%2fadmin",
            "/users/..%2F..%2Fadmin",
            "/..%5cadmin",
            "/users/..;/..;/admin",
            "/users/%2e%2e;/admin",
            "\t//files.example/v2/x",
            " //files.example/v2/x",
            "/\\/files.example/v2/x",
            "\t//a.example:9999/v2/x",
        ] {
            let err = resolve_url(&base, input).expect_err(input);
            assert!(err.is_builder(), "{input}: {err}");
            assert!(err.to_string().contains("base_url's path"), "{err}");
        }
        // Dot segments that stay inside are fine.
        assert_eq!(
            resolve("https://a.example/v2", "/users/../orders"),
            "https://a.example/v2/orders"
        );
        assert_eq!(
            resolve("https://a.example/v2", "/"),
            "https://a.example/v2/"
        );
    }

    #[test]
    fn scheme_relative_input_cannot_leave_the_base_host() {
        assert_eq!(
            resolve("https://a.example", "//evil.example/x"),
            "https://a.example/evil.example/x"
        );
    }

    #[test]
    fn absolute_urls_are_kept_for_the_gate_to_judge() {
        assert_eq!(
            resolve("https://a.example", "https://b.example/x"),
            "https://b.example/x"
        );
    }
}
