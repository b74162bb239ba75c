//! Links in emails: below the tenant's portal URL, carrying the secret as
//! the `token` query parameter.

use url::Url;

/// The portal page each kind of link opens.
pub const ACTIVATE: &str = "activate";
pub const VALIDATE_EMAIL: &str = "validate-email";
pub const RESET_PASSWORD: &str = "reset-password";

/// `<portal>/<page>?token=<token>`.
pub fn link(portal_url: &Url, page: &str, token: &str) -> String {
    let mut url = portal_url.clone();
    if let Ok(mut segments) = url.path_segments_mut() {
        segments.pop_if_empty().push(page);
    }
    url.query_pairs_mut().clear().append_pair("token", token);
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_go_below_the_portal_url() {
        let portal = Url::parse("https://portal.example.com/app/").unwrap();
        assert_eq!(
            link(&portal, ACTIVATE, "7.abc"),
            "https://portal.example.com/app/activate?token=7.abc"
        );
        let bare = Url::parse("http://localhost:3000").unwrap();
        assert_eq!(
            link(&bare, RESET_PASSWORD, "x"),
            "http://localhost:3000/reset-password?token=x"
        );
    }
}
