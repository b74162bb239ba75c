//! The world the console's browser tests drive: canopy-api with its relay
//! and worker, on a database of its own, sending to an SMTP server this
//! process runs, with a tenant holding a customer tree three levels deep,
//! users, a job that died, a user waiting for approval and names written
//! to look like markup, and a second tenant ("Northwind") that uses
//! Canopy's account pages and has a brand. It prints one line,
//! `console-world: ` and JSON (where to reach it and how to sign in), then
//! runs until its standard input closes, and then removes its database and
//! Redis keys. Meanwhile it writes each email its SMTP server receives as
//! JSON into the folder `mail` names, and answers commands on standard
//! input: `expire-links` makes every unspent link expired.

use canopy_tests::accounts::PASSWORD;
use canopy_tests::{TestApp, TestDb, eventually, string_at};
use serde_json::json;

const INVITE: &str = "mutation($c: ID!, $e: String!, $f: String) {
  createUser(input: { customerId: $c, email: $e, firstName: $f, activation: SEND_ACTIVATION_EMAIL })
  { user { id } } }";

/// What starts the line that describes the world.
const WORLD_MARK: &str = "console-world: ";

/// A markup-looking title: the console must show it as text.
pub const MARKUP_TITLE: &str = "<img src=x onerror=alert(1)> Bikes";

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    let db = runtime.block_on(TestDb::new());
    let app = runtime.block_on(TestApp::spawn_with_mail(db.pool()));
    let mail_dir = tempfile::tempdir()?;
    let mut world = runtime.block_on(build(&app))?;
    world["mail"] = json!(mail_dir.path());
    // Logs share standard output: the lines the tests read are marked.
    println!("{WORLD_MARK}{world}");
    let (commands, received) = std::sync::mpsc::channel::<Option<String>>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if commands.send(Some(line)).is_err() {
                return;
            }
        }
        let _ = commands.send(None);
    });
    // Until the test is done with it: copy out the mail, run commands.
    let mut written = 0;
    loop {
        let messages = app.mail().messages();
        for message in &messages[written..] {
            let file = mail_dir.path().join(format!("{written:04}.json"));
            let body = json!({ "to": message.to, "subject": message.subject,
                               "text": message.text, "html": message.html });
            std::fs::write(&file, body.to_string())?;
            written += 1;
        }
        match received.recv_timeout(std::time::Duration::from_millis(100)) {
            Ok(Some(command)) => {
                runtime.block_on(run(&app, command.trim()))?;
                println!("{WORLD_MARK}{{\"done\":{:?}}}", command.trim());
            }
            Ok(None) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
        }
    }
    drop(app);
    drop(runtime);
    drop(db);
    Ok(())
}

/// One command from the tests.
async fn run(app: &TestApp, command: &str) -> anyhow::Result<()> {
    match command {
        "expire-links" => {
            sqlx::query(
                "UPDATE user_tokens SET expires_at = now() - interval '1 second'
                 WHERE consumed_at IS NULL",
            )
            .execute(&app.pool)
            .await?;
            Ok(())
        }
        other => anyhow::bail!("no command {other:?}"),
    }
}

async fn build(app: &TestApp) -> anyhow::Result<serde_json::Value> {
    app.activate_admin().await;
    let holdings = app.customer("Acme Holdings", None).await;
    let north = app.customer("Northern Region", Some(&holdings)).await;
    let leeds = app.customer("Leeds Branch", Some(&north)).await;
    app.customer("Leeds Shop 1", Some(&leeds)).await;
    app.customer("Leeds Shop 2", Some(&leeds)).await;
    app.customer("Southern Region", Some(&holdings)).await;
    app.customer("Globex", None).await;
    // More inner customers than one page holds.
    let many = app.customer("Many Shops Ltd", None).await;
    for n in 1..=55 {
        app.customer(&format!("Shop {n:02}"), Some(&many)).await;
    }

    // A user whose invitation went out.
    let data = app
        .data(
            INVITE,
            json!({ "c": leeds, "e": "ann@acme.test", "f": "Ann" }),
        )
        .await;
    let ann = string_at(&data, &["createUser", "user", "id"]);
    app.mail()
        .wait_for("ann@acme.test", "set up your account")
        .await;

    // A job that died: the mail server refused it for good.
    app.mail()
        .refuse_with(Some("550 5.1.1 no such mailbox here"));
    let data = app
        .data(
            INVITE,
            json!({ "c": north, "e": "gone@acme.test", "f": "Gone" }),
        )
        .await;
    let gone = string_at(&data, &["createUser", "user", "id"]);
    eventually("the refused invitation to die", async || {
        let data = app
            .data(
                "query($id: ID!) { user(id: $id) { emailDeliveries { nodes { state } } } }",
                json!({ "id": gone }),
            )
            .await;
        let state = data["user"]["emailDeliveries"]["nodes"][0]["state"].clone();
        if state == "KILLED" {
            Ok(())
        } else {
            Err(state)
        }
    })
    .await;
    app.mail().refuse_with(None);

    // Someone who signed up and waits for approval, under a name that
    // looks like markup.
    app.data(
        "mutation { updateTenant(input: { requireApproval: true }) { id } }",
        json!({}),
    )
    .await;
    let signed_up = app
        .post(
            None,
            "mutation($t: ID!, $c: String!) { signUp(input: { tenantId: $t, customerTitle: $c,
           email: \"pat@bikes.test\", firstName: \"<b>Pat</b>\",
           password: \"correct horse battery\" }) { user { id } } }",
            json!({ "t": app.tenant.tenant_id, "c": MARKUP_TITLE }),
        )
        .await;
    anyhow::ensure!(signed_up.get("errors").is_none(), "signed up: {signed_up}");
    let validation = app
        .mail()
        .wait_for("pat@bikes.test", "confirm your email")
        .await;
    let validated = app
        .post(
            None,
            "mutation($t: String!) { validateEmail(token: $t) { user { status } } }",
            json!({ "t": validation.token() }),
        )
        .await;
    anyhow::ensure!(
        validated["data"]["validateEmail"]["user"]["status"] == "PENDING_APPROVAL",
        "the sign-up waits for approval: {validated}"
    );

    // A tenant on Canopy's account pages, in its own colours.
    let northwind = app.create_tenant_with_portal("Northwind", None).await;
    app.data_as(
        &northwind.api_key,
        "mutation { updateTenant(input: { accentColor: \"#7b2cbf\" }) { id } }",
        json!({}),
    )
    .await;
    let stores = app
        .data_as(
            &northwind.api_key,
            "mutation { createCustomer(input: { title: \"Northwind Stores\" }) { customer { id } } }",
            json!({}),
        )
        .await;

    Ok(json!({
        "hosted": {
            "tenantId": northwind.tenant_id,
            "apiKey": northwind.api_key,
            "pages": app.url(&format!("/account/{}", northwind.tenant_id)),
            "customer": string_at(&stores, &["createCustomer", "customer", "id"]),
        },
        "url": app.url(""),
        "tenantId": app.tenant.tenant_id,
        "apiKey": app.tenant.api_key,
        "adminEmail": "admin@acme.test",
        "password": PASSWORD,
        "ann": ann,
        "dead": "gone@acme.test",
        "waiting": "pat@bikes.test",
        "markupTitle": MARKUP_TITLE,
        "leeds": leeds,
    }))
}
