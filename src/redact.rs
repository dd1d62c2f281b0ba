//! The secrets of this process (the passwords of the environments' services) and their
//! redaction: every place where text leaves the process (the terminal, JSON events, task logs,
//! JUnit, the HTML report, error messages) passes it through [`redact`], which writes [`MASK`]
//! in place of each secret.
//!
//! The set is the one piece of process-wide state on purpose: a password is made deep in a
//! service's start, while text leaves the process from every layer, and a secret missed by one
//! of those places is a secret printed. It only grows, and it is read far more than written.

use std::borrow::Cow;
use std::sync::RwLock;

/// What a secret is replaced with.
pub const MASK: &str = "***";

/// Secrets shorter than this are not registered: replacing a few common characters everywhere
/// would garble output and hide nothing.
const MIN_LEN: usize = 8;

static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Remembers `secret`: from now on [`redact`] hides it.
pub fn register(secret: &str) {
    if secret.len() < MIN_LEN {
        return;
    }
    let mut secrets = match SECRETS.write() {
        Ok(s) => s,
        Err(poisoned) => poisoned.into_inner(),
    };
    if !secrets.iter().any(|s| s == secret) {
        secrets.push(secret.to_string());
        // Longest first: a secret that contains another is hidden whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }
}

/// `text` with every registered secret replaced by [`MASK`]; borrowed when there is none in it.
pub fn redact(text: &str) -> Cow<'_, str> {
    let secrets = match SECRETS.read() {
        Ok(s) => s,
        Err(poisoned) => poisoned.into_inner(),
    };
    let mut out = Cow::Borrowed(text);
    for secret in secrets.iter() {
        if out.contains(secret.as_str()) {
            out = Cow::Owned(out.replace(secret.as_str(), MASK));
        }
    }
    out
}

/// Registers the password of a `scheme://user:password@host:port/...` URL (a service given to
/// `harness capture`) and returns its `host:port`, the part of it that may be shown.
pub fn register_url(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let (userinfo, hostpart) = match rest.split_once('/') {
        Some((authority, _)) => authority
            .rsplit_once('@')
            .map_or(("", authority), |(u, h)| (u, h)),
        None => rest.rsplit_once('@').map_or(("", rest), |(u, h)| (u, h)),
    };
    if let Some((_, password)) = userinfo.split_once(':') {
        register(password);
    }
    hostpart
        .split(['?', '#'])
        .next()
        .unwrap_or(hostpart)
        .to_string()
}

/// [`redact`] for an owned string: the same string back when there is nothing to hide.
pub fn redact_owned(text: String) -> String {
    match redact(&text) {
        Cow::Borrowed(_) => text,
        Cow::Owned(hidden) => hidden,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registered_secret_is_masked_wherever_it_appears() {
        register("s3cr3t-for-masking");
        assert_eq!(
            redact(
                "postgres://harness:s3cr3t-for-masking@127.0.0.1:5432/db and s3cr3t-for-masking"
            ),
            "postgres://harness:***@127.0.0.1:5432/db and ***"
        );
    }

    #[test]
    fn a_url_password_is_registered_and_only_the_address_shown() {
        assert_eq!(
            register_url("postgres://app:url-secret-9f3@db.internal:5432/prod"),
            "db.internal:5432"
        );
        assert_eq!(redact("x url-secret-9f3 y"), "x *** y");
        assert_eq!(register_url("redis://127.0.0.1:6379/0"), "127.0.0.1:6379");
    }

    #[test]
    fn text_without_secrets_is_borrowed_unchanged() {
        register("another-secret-value");
        assert!(matches!(redact("nothing to hide here"), Cow::Borrowed(_)));
        assert_eq!(redact_owned("plain".to_string()), "plain");
    }

    #[test]
    fn short_strings_are_not_taken_as_secrets() {
        register("ab");
        assert_eq!(redact("a b ab abc"), "a b ab abc");
    }

    #[test]
    fn a_secret_containing_another_is_masked_whole() {
        register("overlap-secret");
        register("overlap-secret-longer");
        assert_eq!(redact("x overlap-secret-longer y"), "x *** y");
    }
}
