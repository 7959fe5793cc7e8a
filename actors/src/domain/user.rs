use serde::{Deserialize, Serialize};

use super::InvalidValue;
use crate::limits::{
    EMAIL_BYTES_MAX, PASSWORD_CHARS_MAX, PASSWORD_CHARS_MIN, USERNAME_CHARS_MAX, USERNAME_CHARS_MIN,
};

/// A user's numeric id, assigned by the user store and never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct UserId(pub u64);

impl std::fmt::Display for UserId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    Customer,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Admin => "admin",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "customer" => Some(Role::Customer),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// A username: 3–32 of `[A-Za-z0-9_.-]`; unique without regard to case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let n = raw.chars().count();
        if !(USERNAME_CHARS_MIN..=USERNAME_CHARS_MAX).contains(&n) {
            return Err(InvalidValue::new(format!(
                "must be {USERNAME_CHARS_MIN} to {USERNAME_CHARS_MAX} characters"
            )));
        }
        if !raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        {
            return Err(InvalidValue::new(
                "may only contain A-Z, a-z, 0-9, '_', '.' and '-'",
            ));
        }
        Ok(Self(raw.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The form uniqueness is checked on.
    pub fn folded(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

/// An email address: an RFC 5321 dot-atom local part (no leading, trailing or double
/// dots) and a domain of at least two DNS labels; unique without regard to case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let invalid = || InvalidValue::new("must be a valid email address");
        if raw.len() > EMAIL_BYTES_MAX {
            return Err(InvalidValue::new(format!(
                "must be at most {EMAIL_BYTES_MAX} bytes"
            )));
        }
        let (local, domain) = raw.split_once('@').ok_or_else(invalid)?;
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".!#$%&'*+/=?^_`{|}~-".contains(&b));
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if !local_ok || !domain_ok {
            return Err(invalid());
        }
        Ok(Self(raw.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn folded(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

/// A plain-text password on its way to the hasher: 8–128 characters. It has no
/// `Serialize` and its `Debug` hides it, so it cannot end up in a log or on disk.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let n = raw.chars().count();
        if !(PASSWORD_CHARS_MIN..=PASSWORD_CHARS_MAX).contains(&n) {
            return Err(InvalidValue::new(format!(
                "must be {PASSWORD_CHARS_MIN} to {PASSWORD_CHARS_MAX} characters"
            )));
        }
        Ok(Self(raw.to_owned()))
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

impl TryFrom<String> for Username {
    type Error = InvalidValue;
    fn try_from(raw: String) -> Result<Self, InvalidValue> {
        Self::parse(&raw)
    }
}

impl TryFrom<String> for Email {
    type Error = InvalidValue;
    fn try_from(raw: String) -> Result<Self, InvalidValue> {
        Self::parse(&raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn username_bounds() {
        assert!(Username::parse("ab").is_err());
        assert!(Username::parse("abc").is_ok());
        assert!(Username::parse(&"a".repeat(32)).is_ok());
        assert!(Username::parse(&"a".repeat(33)).is_err());
        assert!(Username::parse("a.b_c-D9").is_ok());
        assert!(Username::parse("a b").is_err());
        assert!(Username::parse("dré").is_err());
        assert_eq!(Username::parse("Alice").unwrap().folded(), "alice");
    }

    #[test]
    fn email_syntax() {
        for ok in ["a@b.co", "first.last+tag@sub.example.org", "x_y@a-b.io"] {
            assert!(Email::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "a", "a@", "@b.co", "a@b", "a@-b.co", "a@b..co", "a b@c.de", "a@b.c_o",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
        let long_local = format!("{}@example.com", "a".repeat(65));
        assert!(Email::parse(&long_local).is_err());
        let d = |n: usize| "d".repeat(n);
        let exactly_254 = format!("{}@{}.{}.{}.{}", "a".repeat(64), d(63), d(63), d(58), "ab");
        assert_eq!(exactly_254.len(), 254);
        assert!(Email::parse(&exactly_254).is_ok());
        let over = format!("{}@{}.{}.{}.{}", "a".repeat(64), d(63), d(63), d(59), "ab");
        assert!(Email::parse(&over).is_err());
    }

    #[test]
    fn password_bounds_and_secrecy() {
        assert!(Password::parse("1234567").is_err());
        assert!(Password::parse("12345678").is_ok());
        assert!(Password::parse(&"p".repeat(128)).is_ok());
        assert!(Password::parse(&"p".repeat(129)).is_err());
        assert_eq!(
            format!("{:?}", Password::parse("hunter22").unwrap()),
            "Password(***)"
        );
    }
}

/// Calls `$then!` with every API-key scope as `Variant "name"`, in stored
/// order: the one list of scopes. [`Scope`] is made from it here, and the web
/// layer makes a route marker type per scope from it too.
#[macro_export]
macro_rules! with_scopes {
    ($then:ident) => {
        $then! {
            CatalogWrite "catalog:write",
            StockWrite "stock:write",
            OrdersRead "orders:read",
            OrdersWrite "orders:write",
            ImportsWrite "imports:write",
            EventsRead "events:read",
            WebhooksWrite "webhooks:write"
        }
    };
}

macro_rules! scope_enum {
    ($($variant:ident $name:literal),*) => {
        /// What an API key may do: each admin route names the one scope that opens
        /// it. Stored by position: new scopes go at the end of [`with_scopes`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum Scope {
            $($variant),*
        }

        impl Scope {
            pub const ALL: &'static [Scope] = &[$(Scope::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Scope::$variant => $name),*
                }
            }
        }
    };
}

with_scopes!(scope_enum);

impl Scope {
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|s| s.as_str() == raw)
    }
}

/// An API key's name: 1–100 characters after trimming.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct KeyName(String);

impl KeyName {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let trimmed = raw.trim();
        let chars = trimmed.chars().count();
        if chars == 0 || chars > crate::limits::API_KEY_NAME_CHARS_MAX {
            return Err(InvalidValue::new(format!(
                "must be 1 to {} characters",
                crate::limits::API_KEY_NAME_CHARS_MAX
            )));
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for KeyName {
    type Error = InvalidValue;
    fn try_from(raw: String) -> Result<Self, InvalidValue> {
        Self::parse(&raw)
    }
}
