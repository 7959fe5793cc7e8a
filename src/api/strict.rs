//! Strict request parsing: JSON bodies and query strings.
//!
//! Bodies are read up to a named size limit (413 beyond it), checked for nesting
//! depth before parsing, and deserialized into types that deny unknown fields, so a
//! typo or a smuggled `role` is a 422 naming the field rather than silently ignored.
//! Query strings get the same treatment: unknown or repeated parameters are 422s.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest};
use futures_util::StreamExt;
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, FieldError};
use orderflow_actors::json_nesting::JsonNesting;
use orderflow_actors::limits::{
    JSON_BODY_BYTES_MAX, JSON_DEPTH_MAX, PAGE_ITEMS_DEFAULT, PAGE_ITEMS_MAX,
};

/// A JSON body parsed strictly (see the module docs).
#[derive(Debug)]
pub struct StrictJson<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for StrictJson<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        if !is_json(req) {
            return Box::pin(ready(Err(ApiError::unsupported_media_type(
                "application/json",
            ))));
        }
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > JSON_BODY_BYTES_MAX) {
            return Box::pin(ready(Err(ApiError::payload_too_large(JSON_BODY_BYTES_MAX))));
        }
        let mut payload = payload.take();
        Box::pin(async move {
            let mut body = Vec::with_capacity(declared.unwrap_or(512).min(JSON_BODY_BYTES_MAX));
            while let Some(chunk) = payload.next().await {
                let chunk =
                    chunk.map_err(|_| ApiError::bad_request("the body could not be read"))?;
                if body.len() + chunk.len() > JSON_BODY_BYTES_MAX {
                    return Err(ApiError::payload_too_large(JSON_BODY_BYTES_MAX));
                }
                body.extend_from_slice(&chunk);
            }
            parse_json_object(&body).map(StrictJson)
        })
    }
}

fn is_json(req: &HttpRequest) -> bool {
    let Some(ct) = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// Parses `bytes` as one JSON document into `T`, mapping every failure to the
/// problem a client can act on.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::malformed_json("the body is empty"));
    }
    check_depth(bytes, JSON_DEPTH_MAX)?;
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        map_serde_error(&path, e.into_inner())
    })?;
    de.end()
        .map_err(|e| ApiError::malformed_json(strip_position(&e.to_string())))?;
    Ok(value)
}

/// Every body this API takes is an object: say so, rather than let serde read a
/// struct out of an array.
pub fn parse_json_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b != b'{')
    {
        parse_json::<serde::de::IgnoredAny>(bytes)?;
        return Err(ApiError::field("body", "must be a JSON object"));
    }
    parse_json(bytes)
}

fn map_serde_error(path: &str, e: serde_json::Error) -> ApiError {
    let message = strip_position(&e.to_string());
    match e.classify() {
        serde_json::error::Category::Data => {
            // serde_path_to_error's path already ends at an unknown field, but stops at
            // the parent of a missing one.
            let under = |name: &str| match path {
                "." => name.to_owned(),
                p if p == name || p.ends_with(&format!(".{name}")) => p.to_owned(),
                p => format!("{p}.{name}"),
            };
            if let Some(name) = quoted_name(&message, "unknown field `") {
                ApiError::field(under(name), "unknown field")
            } else if let Some(name) = quoted_name(&message, "missing field `") {
                ApiError::field(under(name), "is required")
            } else {
                let field = if path == "." {
                    "body".to_owned()
                } else {
                    path.to_owned()
                };
                ApiError::field(field, message)
            }
        }
        _ => ApiError::malformed_json(message),
    }
}

fn quoted_name<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = message.strip_prefix(prefix)?;
    rest.split('`').next()
}

/// serde_json appends " at line L column C"; the client gets that as the detail of
/// a 400 anyway, so only field errors drop it.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) if message[i..].contains(" column ") => message[..i].to_owned(),
        _ => message.to_owned(),
    }
}

/// Refuses documents nested deeper than `max` before the parser recurses into them.
fn check_depth(bytes: &[u8], max: usize) -> Result<(), ApiError> {
    let mut nesting = JsonNesting::default();
    for &b in bytes {
        nesting.push(b);
        if nesting.depth() > max {
            return Err(ApiError::malformed_json(format!(
                "the body is nested deeper than {max} levels"
            )));
        }
    }
    Ok(())
}

/// A query string checked against the parameters a route knows.
#[derive(Debug, Default)]
pub struct QueryParams {
    pairs: Vec<(String, String)>,
}

impl QueryParams {
    /// Decodes `query`, refusing unknown and repeated parameters.
    pub fn parse(query: &str, allowed: &[&str]) -> Result<Self, ApiError> {
        Self::parse_with_prefix(query, allowed, None)
    }

    /// [`Self::parse`], also taking every parameter whose name starts with
    /// `prefix` (`option.` of `option.Size=M`).
    pub fn parse_with_prefix(
        query: &str,
        allowed: &[&str],
        prefix: Option<&str>,
    ) -> Result<Self, ApiError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
            .map_err(|_| ApiError::bad_request("the query string is not valid URL encoding"))?;
        let mut errors = Vec::new();
        let known = |k: &str| allowed.contains(&k) || prefix.is_some_and(|p| k.starts_with(p));
        for (i, (k, _)) in pairs.iter().enumerate() {
            if !known(k) {
                errors.push(FieldError::new(k.clone(), "unknown query parameter"));
            } else if pairs[..i].iter().any(|(earlier, _)| earlier == k) {
                errors.push(FieldError::new(k.clone(), "given more than once"));
            }
        }
        if !errors.is_empty() {
            return Err(ApiError::validation(errors));
        }
        Ok(Self { pairs })
    }

    /// The parameters whose name starts with `prefix`: (rest of the name, value).
    pub fn with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.pairs
            .iter()
            .filter_map(move |(k, v)| Some((k.strip_prefix(prefix)?, v.as_str())))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// An optional integer within `min..=max`.
    pub fn integer(
        &self,
        key: &str,
        min: u64,
        max: u64,
        errors: &mut Vec<FieldError>,
    ) -> Option<u64> {
        let raw = self.get(key)?;
        match raw.parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                errors.push(FieldError::new(
                    key,
                    format!("must be an integer from {min} to {max}"),
                ));
                None
            }
        }
    }

    /// The optional `limit` of a paged list: 1 to [`PAGE_ITEMS_MAX`], by default
    /// [`PAGE_ITEMS_DEFAULT`].
    pub fn page_limit(&self, errors: &mut Vec<FieldError>) -> usize {
        let max = u64::try_from(PAGE_ITEMS_MAX).unwrap_or(u64::MAX);
        self.integer("limit", 1, max, errors)
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(PAGE_ITEMS_DEFAULT)
    }

    /// The optional `cursor` parameter, decoded.
    pub fn cursor<T: DeserializeOwned>(&self, errors: &mut Vec<FieldError>) -> Option<T> {
        let raw = self.get("cursor")?;
        let decoded = super::json::decode_cursor(raw);
        if decoded.is_none() {
            errors.push(FieldError::new("cursor", "is not a cursor this API issued"));
        }
        decoded
    }

    /// An optional `true`/`false`.
    pub fn boolean(&self, key: &str, errors: &mut Vec<FieldError>) -> Option<bool> {
        match self.get(key)? {
            "true" => Some(true),
            "false" => Some(false),
            _ => {
                errors.push(FieldError::new(key, "must be true or false"));
                None
            }
        }
    }
}

/// The raw query string, for handlers that parse it with [`QueryParams`].
#[derive(Debug)]
pub struct RawQuery(pub String);

impl FromRequest for RawQuery {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(RawQuery(req.query_string().to_owned())))
    }
}

/// A required field, parsed into its domain value: `None` (and its error, or "is
/// required", recorded under the field's name) when it is absent or invalid.
pub(crate) fn required<V, T, E: std::fmt::Display>(
    field: &str,
    raw: Option<V>,
    parse: impl FnOnce(V) -> Result<T, E>,
    errors: &mut Vec<FieldError>,
) -> Option<T> {
    match raw {
        None => {
            errors.push(FieldError::new(field, "is required"));
            None
        }
        Some(raw) => parse(raw)
            .map_err(|e| errors.push(FieldError::new(field, e.to_string())))
            .ok(),
    }
}

/// An optional field: `Some(None)` when absent, `Some(Some(value))` when valid,
/// `None` (its error recorded under the field's name) when invalid.
pub(crate) fn optional<V, T, E: std::fmt::Display>(
    field: &str,
    raw: Option<V>,
    parse: impl FnOnce(V) -> Result<T, E>,
    errors: &mut Vec<FieldError>,
) -> Option<Option<T>> {
    match raw {
        None => Some(None),
        Some(raw) => parse(raw)
            .map(Some)
            .map_err(|e| errors.push(FieldError::new(field, e.to_string())))
            .ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Line {
        sku: String,
        quantity: u32,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        items: Vec<Line>,
    }

    fn field_of(e: &ApiError) -> String {
        e.body()["errors"][0]["field"].as_str().unwrap().to_owned()
    }

    #[test]
    fn names_unknown_and_mistyped_fields() {
        let e = parse_json::<Body>(br#"{"items":[{"sku":"A","quantity":1,"price_cents":1}]}"#)
            .unwrap_err();
        assert_eq!(e.status().as_u16(), 422);
        assert_eq!(field_of(&e), "items[0].price_cents");
        let e = parse_json::<Body>(br#"{"items":[{"sku":"A","quantity":1.5}]}"#).unwrap_err();
        assert_eq!(field_of(&e), "items[0].quantity");
        let e = parse_json::<Body>(br#"{"items":[{"sku":"A"}]}"#).unwrap_err();
        assert_eq!(field_of(&e), "items[0].quantity");
        let e = parse_json::<Body>(br#"{"items":[], "role":"admin"}"#).unwrap_err();
        assert_eq!(field_of(&e), "role");
    }

    #[test]
    fn malformed_and_deep_documents_are_400() {
        for bad in [
            &b"{"[..],
            b"",
            b"{\"items\":[]} x",
            b"\xff",
            b"{\"items\":[{\"sku\":\"\xff\"}]}",
        ] {
            assert_eq!(
                parse_json::<Body>(bad).unwrap_err().status().as_u16(),
                400,
                "{bad:?}"
            );
        }
        let deep = format!("{}{}", "[".repeat(17), "]".repeat(17));
        assert_eq!(
            parse_json::<serde_json::Value>(deep.as_bytes())
                .unwrap_err()
                .slug(),
            "malformed-json"
        );
        let ok = format!("{}{}", "[".repeat(16), "]".repeat(16));
        assert!(parse_json::<serde_json::Value>(ok.as_bytes()).is_ok());
        // Brackets inside strings do not count.
        assert!(
            parse_json::<serde_json::Value>(format!("\"{}\"", "[".repeat(100)).as_bytes()).is_ok()
        );
    }

    #[test]
    fn query_params_are_strict() {
        assert!(QueryParams::parse("limit=5&q=x", &["limit", "q"]).is_ok());
        let e = QueryParams::parse("limt=5", &["limit"]).unwrap_err();
        assert_eq!(field_of(&e), "limt");
        let e = QueryParams::parse("limit=5&limit=6", &["limit"]).unwrap_err();
        assert_eq!(field_of(&e), "limit");
        let q = QueryParams::parse("limit=0", &["limit"]).unwrap();
        let mut errors = Vec::new();
        assert_eq!(q.integer("limit", 1, 200, &mut errors), None);
        assert_eq!(errors[0].field, "limit");
    }
}
