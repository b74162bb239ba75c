//! Email as data: per kind a subject, a plain-text body and an HTML body
//! (`worker/templates/<kind>/`), rendered with minijinja. HTML templates
//! escape what they insert; the HTML body is set in one layout
//! (`worker/templates/layout.html`) that carries the tenant's brand.

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
        env.add_template("layout.html", include_str!("../../templates/layout.html"))?;
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

    /// Renders `kind`'s three templates with `context` and the tenant's
    /// `brand`, the HTML body inside the layout.
    pub fn render(
        &self,
        kind: &str,
        context: impl Serialize,
        brand: &Brand,
    ) -> Result<Rendered, minijinja::Error> {
        let context = minijinja::context! {
            brand => minijinja::Value::from_serialize(brand),
            ..minijinja::Value::from_serialize(&context),
        };
        let render = |part: &str| {
            self.env
                .get_template(&format!("{kind}/{part}"))
                .and_then(|template| template.render(&context))
        };
        let subject = render("subject.txt")?.trim().to_owned();
        // The body was escaped as it was rendered.
        let content = minijinja::Value::from_safe_string(render("body.html")?);
        let html = self
            .env
            .get_template("layout.html")?
            .render(minijinja::context! {
                subject => subject.clone(),
                content,
                ..context.clone(),
            })?;
        Ok(Rendered {
            subject,
            text: render("body.txt")?,
            html,
        })
    }
}

/// A tenant's brand as its emails show it.
#[derive(Clone, Debug, Serialize)]
pub struct Brand {
    pub name: String,
    pub logo_url: Option<String>,
    /// `#rrggbb`: the tenant's, or Canopy's green.
    pub accent: String,
}

/// Canopy's own accent, for a tenant without one.
pub const DEFAULT_ACCENT: &str = "#0b6e4f";

impl Brand {
    pub fn of(tenant: &canopy_core::store::tenants::TenantRow) -> Self {
        Self {
            name: tenant.name.clone(),
            logo_url: tenant.logo_url.clone(),
            accent: tenant
                .accent_color
                .clone()
                .unwrap_or_else(|| DEFAULT_ACCENT.to_owned()),
        }
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

    fn brand(logo_url: Option<&str>) -> Brand {
        Brand {
            name: "Acme <Resellers>".into(),
            logo_url: logo_url.map(str::to_owned),
            accent: "#aa3300".into(),
        }
    }

    #[test]
    fn every_kind_renders_and_html_is_escaped() {
        let templates = Templates::new().unwrap();
        let context = json!({ "tenant": "Acme <Resellers>", "name": "Ann",
                              "link": "https://p/activate?token=a&b", "expires_in": "7 days" });
        let rendered = templates
            .render("invitation", context.clone(), &brand(None))
            .unwrap();
        assert_eq!(rendered.subject, "Acme <Resellers>: set up your account");
        assert!(rendered.text.contains("https://p/activate?token=a&b"));
        assert!(rendered.text.contains("7 days"));
        assert!(rendered.html.contains("Acme &lt;Resellers&gt;"));
        assert!(rendered.html.contains("token=a&amp;b"));
        // In the tenant's brand: its colour on the button, its name atop.
        assert!(
            rendered.html.contains("background:#aa3300"),
            "{}",
            rendered.html
        );
        assert!(rendered.html.starts_with("<!DOCTYPE html>"));
        assert_eq!(
            rendered.html.matches("<body").count(),
            1,
            "the body sits inside the layout"
        );
        let with_logo = templates
            .render(
                "invitation",
                context,
                &brand(Some("https://cdn.example.com/l.png?a=1&b=\"x")),
            )
            .unwrap();
        // Escaped inside its attribute: no quote can end it.
        assert!(
            with_logo
                .html
                .contains("l.png?a=1&amp;b=&quot;x\" alt=\"Acme &lt;Resellers&gt;\""),
            "{}",
            with_logo.html
        );
        // A missing value is an error, not an empty hole in an email.
        assert!(
            templates
                .render("invitation", json!({ "tenant": "Acme" }), &brand(None))
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
