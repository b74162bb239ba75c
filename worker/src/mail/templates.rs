//! Email as data: per kind a subject, a plain-text body and an HTML body
//! (`worker/templates/<kind>/`), rendered with minijinja. HTML templates
//! escape what they insert.

use minijinja::Environment;
use serde::Serialize;

pub struct Templates {
    env: Environment<'static>,
}

/// A rendered subject and bodies.
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

macro_rules! templates {
    ($env:ident, $($kind:literal),*) => {
        $(
            $env.add_template(concat!($kind, "/subject.txt"), include_str!(concat!("../../templates/", $kind, "/subject.txt")))?;
            $env.add_template(concat!($kind, "/body.txt"), include_str!(concat!("../../templates/", $kind, "/body.txt")))?;
            $env.add_template(concat!($kind, "/body.html"), include_str!(concat!("../../templates/", $kind, "/body.html")))?;
        )*
    };
}

impl Templates {
    pub fn new() -> Result<Self, minijinja::Error> {
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        templates!(
            env,
            "invitation",
            "email_validation",
            "password_reset",
            "admin_notification",
            "account/sign_up_attempted",
            "account/password_changed",
            "account/email_changed",
            "account/tenant_administrator"
        );
        Ok(Self { env })
    }

    /// Renders `kind`'s three templates with `context`.
    pub fn render(
        &self,
        kind: &str,
        context: impl Serialize,
    ) -> Result<Rendered, minijinja::Error> {
        let context = minijinja::Value::from_serialize(&context);
        let render = |part: &str| {
            self.env
                .get_template(&format!("{kind}/{part}"))
                .and_then(|template| template.render(&context))
        };
        Ok(Rendered {
            subject: render("subject.txt")?.trim().to_owned(),
            text: render("body.txt")?,
            html: render("body.html")?,
        })
    }
}

/// A duration as a person says it: "7 days", "24 hours", "1 hour".
pub fn in_words(duration: chrono::Duration) -> String {
    let minutes = duration.num_minutes().max(1);
    if minutes < 60 {
        return if minutes == 1 {
            "1 minute".to_owned()
        } else {
            format!("{minutes} minutes")
        };
    }
    let hours = (minutes as f64 / 60.0).round() as i64;
    match hours {
        h if h >= 48 && h % 24 == 0 => format!("{} days", h / 24),
        1 => "1 hour".to_owned(),
        h => format!("{h} hours"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_kind_renders_and_html_is_escaped() {
        let templates = Templates::new().unwrap();
        let rendered = templates
            .render(
                "invitation",
                json!({ "tenant": "Acme <Resellers>", "name": "Ann", "link": "https://p/activate?token=a&b", "expires_in": "7 days" }),
            )
            .unwrap();
        assert_eq!(rendered.subject, "Acme <Resellers>: set up your account");
        assert!(rendered.text.contains("https://p/activate?token=a&b"));
        assert!(rendered.text.contains("7 days"));
        assert!(rendered.html.contains("Acme &lt;Resellers&gt;"));
        assert!(rendered.html.contains("token=a&amp;b"));
        // A missing value is an error, not an empty hole in an email.
        assert!(
            templates
                .render("invitation", json!({ "tenant": "Acme" }))
                .is_err()
        );
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(in_words(chrono::Duration::hours(168)), "7 days");
        assert_eq!(in_words(chrono::Duration::hours(24)), "24 hours");
        assert_eq!(in_words(chrono::Duration::hours(1)), "1 hour");
        assert_eq!(in_words(chrono::Duration::minutes(30)), "30 minutes");
    }
}
