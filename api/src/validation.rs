//! Input rules shared by every mutation. Each limit here is stated in the
//! schema's descriptions; a value breaking one is refused as bad input on
//! the field it came in.

use crate::error::{ApiError, ApiResult};

pub const MAX_TITLE_CHARS: usize = 200;
pub const MAX_NUMBER_CHARS: usize = 64;
pub const MAX_INFO_CHARS: usize = 4000;
pub const MAX_EMAIL_CHARS: usize = 254;
pub const MAX_PHONE_CHARS: usize = 32;
pub const MAX_PLACE_CHARS: usize = 100;
pub const MAX_ADDRESS_CHARS: usize = 200;
pub const MAX_ZIP_CHARS: usize = 20;
pub const MAX_NAME_CHARS: usize = 100;
pub const MAX_REFERENCE_CHARS: usize = 200;
pub const MAX_SEARCH_CHARS: usize = 200;
/// A partner's own id for a customer or user.
pub const MAX_EXTERNAL_ID_CHARS: usize = 255;
/// The shortest search term: a trigram, what the search indexes find.
pub const MIN_SEARCH_CHARS: usize = 3;

/// A value that must be present and not blank: trimmed, at most `max`
/// characters, no control characters (free text may hold line breaks).
pub fn required(field: &str, value: &str, max: usize) -> ApiResult<String> {
    let value = value.trim();
    if value.is_empty() {
        return Err(ApiError::bad_input(
            field,
            format!("{field} must not be blank"),
        ));
    }
    checked(field, value, max, false)
}

/// An optional value: trimmed, and a blank one is stored as absent.
pub fn optional(field: &str, value: Option<&str>, max: usize) -> ApiResult<Option<String>> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(value) => checked(field, value, max, false).map(Some),
    }
}

/// A partner's own id: trimmed, at most `MAX_EXTERNAL_ID_CHARS`, one line.
pub fn external_id(value: Option<&str>) -> ApiResult<Option<String>> {
    optional("externalId", value, MAX_EXTERNAL_ID_CHARS)
}

/// The externalId an upsert names (the argument), which the input may
/// repeat but not contradict; tenant-wide callers only.
pub fn upsert_key(
    caller: &crate::auth::Caller,
    external_id: &str,
    in_input: Option<&str>,
) -> ApiResult<String> {
    crate::access::may_set_external_id(caller)?;
    let external_id = self::external_id(Some(external_id))?
        .ok_or_else(|| ApiError::bad_input("externalId", "externalId must not be blank"))?;
    if in_input.is_some_and(|given| given.trim() != external_id) {
        return Err(ApiError::bad_input(
            "input.externalId",
            "input.externalId differs from externalId",
        ));
    }
    Ok(external_id)
}

/// Like `optional`, for free text where line breaks are welcome.
pub fn optional_text(field: &str, value: Option<&str>, max: usize) -> ApiResult<Option<String>> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(value) => checked(field, value, max, true).map(Some),
    }
}

fn checked(field: &str, value: &str, max: usize, multiline: bool) -> ApiResult<String> {
    if value.chars().count() > max {
        return Err(ApiError::bad_input(
            field,
            format!("{field} must be at most {max} characters"),
        ));
    }
    let allowed = |c: char| !c.is_control() || (multiline && matches!(c, '\n' | '\r' | '\t'));
    if !value.chars().all(allowed) {
        return Err(ApiError::bad_input(
            field,
            format!("{field} must not contain control characters"),
        ));
    }
    Ok(value.to_owned())
}

/// A plain mailbox address (`local@domain`), syntactically valid (RFC
/// 5321/5322) with a domain name: no display name, no quoted local part,
/// no domain literal such as `[10.0.0.5]`.
pub fn email(field: &str, value: &str) -> ApiResult<String> {
    let invalid = || {
        ApiError::bad_input(
            field,
            format!("{field} must be a plain email address (name@example.com)"),
        )
    };
    let value = required(field, value, MAX_EMAIL_CHARS)?;
    let options = email_address::Options::default()
        .without_display_text()
        .without_domain_literal();
    let parsed =
        email_address::EmailAddress::parse_with_options(&value, options).map_err(|_| invalid())?;
    let plain = parsed.email() == value && !parsed.local_part().starts_with('"');
    if !plain || (!parsed.domain().contains('.') && parsed.domain() != "localhost") {
        return Err(invalid());
    }
    Ok(value)
}

/// An address to look something up by (sign-in, reset, `userByEmail`):
/// only its length and characters are checked, so an account made under
/// older rules can still be found.
pub fn lookup_email(field: &str, value: &str) -> ApiResult<String> {
    checked(field, value.trim(), MAX_EMAIL_CHARS, false)
}

pub fn optional_email(field: &str, value: Option<&str>) -> ApiResult<Option<String>> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(value) => email(field, value).map(Some),
    }
}

/// A phone number: digits with the usual separators and an optional `+`.
pub fn optional_phone(field: &str, value: Option<&str>) -> ApiResult<Option<String>> {
    let Some(value) = optional(field, value, MAX_PHONE_CHARS)? else {
        return Ok(None);
    };
    let allowed = |c: char| c.is_ascii_digit() || " +-()./".contains(c);
    if !value.chars().all(allowed) || !value.chars().any(|c| c.is_ascii_digit()) {
        return Err(ApiError::bad_input(
            field,
            format!("{field} is not a valid phone number"),
        ));
    }
    Ok(Some(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(error: ApiError) -> String {
        match error {
            ApiError::BadInput { field, .. } => field,
            other => panic!("expected bad input, got {other:?}"),
        }
    }

    #[test]
    fn required_values_are_trimmed_and_bounded() {
        assert_eq!(required("title", "  Acme ", 200).unwrap(), "Acme");
        assert_eq!(
            field_of(required("title", "   ", 200).unwrap_err()),
            "title"
        );
        assert!(required("title", &"x".repeat(200), 200).is_ok());
        assert!(required("title", &"x".repeat(201), 200).is_err());
        assert!(required("title", "a\u{0}b", 200).is_err());
        assert!(optional_text("info", Some("line\nline"), 100).is_ok());
        assert!(optional("city", Some("line\nline"), 100).is_err());
        assert_eq!(optional("city", Some("  "), 100).unwrap(), None);
    }

    #[test]
    fn emails_and_phones_are_checked() {
        assert!(email("email", "ann@example.com").is_ok());
        for bad in [
            "ann",
            "ann@",
            "@example.com",
            "ann@example",
            "a b@example.com",
            "\"boss@acme.test\" <x@evil.test>",
            "Boss <x@evil.test>",
            "\"boss\"@acme.test",
            "u@[10.0.0.5]",
            "a\u{0}b@example.com",
        ] {
            assert_eq!(field_of(email("email", bad).unwrap_err()), "email", "{bad}");
        }
        assert!(lookup_email("email", "Ann@Example.com ").is_ok());
        assert_eq!(
            field_of(lookup_email("email", "\u{0}w").unwrap_err()),
            "email"
        );
        assert!(lookup_email("email", &"x".repeat(255)).is_err());
        assert!(optional_phone("phone", Some("+49 (30) 123-456")).is_ok());
        assert!(optional_phone("phone", Some("call me")).is_err());
    }
}
