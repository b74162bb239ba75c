//! The world the console's browser tests drive: canopy-api with its relay
//! and worker, on a database of its own, sending to an SMTP server this
//! process runs, with a tenant holding a customer tree three levels deep,
//! users, a job that died, a user waiting for approval and names written
//! to look like markup. It prints one line, `console-world: ` and JSON
//! (where to reach it and how to sign in), then runs until its standard input closes, and then
//! removes its database and Redis keys.

use std::io::Read;

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
    let world = runtime.block_on(build(&app))?;
    // Logs share standard output: the line the tests read is marked.
    println!("{WORLD_MARK}{world}");
    // Until the test is done with it.
    let mut rest = Vec::new();
    std::io::stdin().read_to_end(&mut rest)?;
    drop(app);
    drop(runtime);
    drop(db);
    Ok(())
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

    Ok(json!({
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
