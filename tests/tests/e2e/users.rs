//! Users and their lifecycle, driven as people would: by reading the real
//! email the worker sent and following its link.

use canopy_tests::{PASSWORD, TestApp, TestDb, data_of, error_of};
use serde_json::{Value, json};

const CREATE_USER: &str = "mutation($input: CreateUserInput!) {
  createUser(input: $input) {
    activationLink
    user { id email status role emailVerified customer { id } invitation { state method expiresAt } }
  }
}";

#[tokio::test]
async fn an_invited_user_activates_from_the_email_and_signs_in() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn_with_mail(pool).await;
    let customer = app.customer("Globex", None).await;
    let data = app
        .data(
            CREATE_USER,
            json!({ "input": { "customerId": customer, "email": "Ann@Globex.test", "firstName": "Ann",
                               "activation": "SEND_ACTIVATION_EMAIL" } }),
        )
        .await;
    let created = &data["createUser"];
    assert_eq!(created["activationLink"], Value::Null, "sent, not shown");
    assert_eq!(created["user"]["status"], "PENDING_EMAIL_VALIDATION");
    assert_eq!(created["user"]["role"], "CUSTOMER_USER");
    assert_eq!(created["user"]["emailVerified"], false);
    assert_eq!(created["user"]["invitation"]["state"], "PENDING");
    assert_eq!(
        created["user"]["invitation"]["method"],
        "SEND_ACTIVATION_EMAIL"
    );
    let user_id = created["user"]["id"].as_str().unwrap().to_owned();

    let email = app
        .mail()
        .wait_for("Ann@Globex.test", "set up your account")
        .await;
    assert_eq!(email.subject, "Acme: set up your account");
    assert!(email.text.contains("Hello Ann"), "{}", email.text);
    assert!(
        email.text.contains("7 days"),
        "the expiry in words: {}",
        email.text
    );
    assert!(
        email
            .link()
            .starts_with("https://portal.example.com/activate?token=")
    );
    assert!(
        email.html.contains("<a href=") && email.html.contains(&email.token()),
        "{}",
        email.html
    );
    assert!(email.raw.contains("multipart/alternative"));
    assert!(
        email.message_id.starts_with("canopy-job-"),
        "{}",
        email.message_id
    );

    // Opening the link does nothing by itself; the mutation activates.
    let session = app.activate(&email.token()).await;
    let data = app
        .data_as(
            &session,
            "{ viewer { user { email status emailVerified } } }",
            json!({}),
        )
        .await;
    assert_eq!(data["viewer"]["user"]["status"], "ACTIVE");
    assert_eq!(data["viewer"]["user"]["emailVerified"], true);
    data_of(app.login("ann@globex.test", PASSWORD).await);

    app.jobs_settled().await;
    let data = app
        .data(
            "query($id: ID!) { user(id: $id) { invitation { state }
                emailDeliveries { totalCount nodes { kind state attempts recipient lastError } } } }",
            json!({ "id": user_id }),
        )
        .await;
    assert_eq!(data["user"]["invitation"]["state"], "ACCEPTED");
    assert_eq!(data["user"]["emailDeliveries"]["totalCount"], 1);
    let delivery = &data["user"]["emailDeliveries"]["nodes"][0];
    assert_eq!(delivery["kind"], "INVITATION");
    assert_eq!(delivery["state"], "DONE");
    assert_eq!(delivery["attempts"], 1);
    assert_eq!(delivery["recipient"], "Ann@Globex.test");

    // The link works once.
    let error = error_of(app.try_activate(&email.token(), PASSWORD).await);
    assert_eq!(
        (error.code.as_str(), error.field.as_deref()),
        ("BAD_USER_INPUT", Some("token"))
    );
}

const SIGN_UP: &str = "mutation($input: SignUpInput!) {
  signUp(input: $input) { user { id status role email } customer { id title number } }
}";

const VALIDATE: &str = "mutation($token: String!) { validateEmail(token: $token) { user { id status email emailVerified } } }";

#[tokio::test]
async fn a_sign_up_validates_waits_for_approval_and_signs_in() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn_with_mail(pool).await;
    sqlx::query("UPDATE tenants SET require_approval = true")
        .execute(&app.pool)
        .await
        .unwrap();
    // The tenant admin must be active to hear of approval requests.
    let admin = app.activate_admin().await;

    let data = data_of(
        app.post(
            None,
            SIGN_UP,
            json!({ "input": { "tenantId": app.tenant.tenant_id, "customerTitle": "Bob's Bikes",
                               "email": "bob@bikes.test", "password": PASSWORD, "firstName": "Bob" } }),
        )
        .await,
    );
    let user_id = data["signUp"]["user"]["id"].as_str().unwrap().to_owned();
    assert_eq!(data["signUp"]["user"]["status"], "PENDING_EMAIL_VALIDATION");
    assert_eq!(data["signUp"]["customer"]["title"], "Bob's Bikes");
    // Not yet: the address is unproven.
    app.assert_login_refused("bob@bikes.test", PASSWORD).await;

    let email = app
        .mail()
        .wait_for("bob@bikes.test", "confirm your email address")
        .await;
    assert!(
        email
            .link()
            .starts_with("https://portal.example.com/validate-email?token=")
    );
    assert!(email.text.contains("24 hours"), "{}", email.text);
    let data = data_of(
        app.post(None, VALIDATE, json!({ "token": email.token() }))
            .await,
    );
    assert_eq!(data["validateEmail"]["user"]["status"], "PENDING_APPROVAL");
    assert_eq!(data["validateEmail"]["user"]["emailVerified"], true);
    app.assert_login_refused("bob@bikes.test", PASSWORD).await;

    // The tenant admin (the customer has no administrator) is told, and
    // finds the request in the queue.
    let notice = app
        .mail()
        .wait_for("admin@acme.test", "waits for approval")
        .await;
    assert!(notice.text.contains("bob@bikes.test"), "{}", notice.text);
    let data = app
        .data_as(
            &admin,
            "{ approvalRequests { totalCount nodes { id email } } }",
            json!({}),
        )
        .await;
    assert_eq!(data["approvalRequests"]["totalCount"], 1);
    assert_eq!(data["approvalRequests"]["nodes"][0]["id"], user_id);

    let data = app
        .data_as(
            &admin,
            "mutation($id: ID!) { approveUser(id: $id) { user { status } } }",
            json!({ "id": user_id }),
        )
        .await;
    assert_eq!(data["approveUser"]["user"]["status"], "ACTIVE");
    let data = data_of(app.login("BOB@bikes.test", PASSWORD).await);
    assert_eq!(data["login"]["user"]["email"], "bob@bikes.test");
    // Approving twice is refused.
    let error = app
        .error_as(
            Some(&admin),
            "mutation($id: ID!) { approveUser(id: $id) { user { status } } }",
            json!({ "id": user_id }),
        )
        .await;
    assert_eq!(error.code, "FAILED_PRECONDITION");
    let data = app
        .data_as(&admin, "{ approvalRequests { totalCount } }", json!({}))
        .await;
    assert_eq!(data["approvalRequests"]["totalCount"], 0);
}

#[tokio::test]
async fn without_approval_a_validated_sign_up_is_active() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn_with_mail(pool).await;
    let input = json!({ "tenantId": app.tenant.tenant_id, "customerTitle": "Solo",
                        "email": "solo@solo.test", "password": PASSWORD });
    data_of(app.post(None, SIGN_UP, json!({ "input": input })).await);
    let email = app.mail().wait_for("solo@solo.test", "confirm").await;
    let data = data_of(
        app.post(None, VALIDATE, json!({ "token": email.token() }))
            .await,
    );
    assert_eq!(data["validateEmail"]["user"]["status"], "ACTIVE");
    data_of(app.login("solo@solo.test", PASSWORD).await);

    // Refusals: bad input, an unknown tenant, a reused link. (A taken
    // address is answered as a new one: see privacy.rs.)
    let before = app.snapshot().await;
    for (input, code, field) in [
        (
            json!({ "tenantId": app.tenant.tenant_id, "customerTitle": " ", "email": "x@x.test", "password": PASSWORD }),
            "BAD_USER_INPUT",
            "customerTitle",
        ),
        (
            json!({ "tenantId": app.tenant.tenant_id, "customerTitle": "X", "email": "x", "password": PASSWORD }),
            "BAD_USER_INPUT",
            "email",
        ),
        (
            json!({ "tenantId": app.tenant.tenant_id, "customerTitle": "X", "email": "x@x.test", "password": "short" }),
            "BAD_USER_INPUT",
            "password",
        ),
        (
            json!({ "tenantId": app.tenant.admin_user_id, "customerTitle": "X", "email": "x@x.test", "password": PASSWORD }),
            "BAD_USER_INPUT",
            "tenantId",
        ),
    ] {
        let error = error_of(
            app.post(None, SIGN_UP, json!({ "input": input.clone() }))
                .await,
        );
        assert_eq!(
            (error.code.as_str(), error.field.as_deref()),
            (code, Some(field)),
            "{input}"
        );
    }
    let error = error_of(
        app.post(None, VALIDATE, json!({ "token": email.token() }))
            .await,
    );
    assert_eq!(
        (error.code.as_str(), error.field.as_deref()),
        ("BAD_USER_INPUT", Some("token"))
    );
    assert_eq!(app.snapshot().await, before);
}

#[tokio::test]
async fn a_forgotten_password_is_reset_from_the_email() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn_with_mail(pool).await;
    let old_session = app.activate_admin().await;
    let request = "mutation($tenant: ID!, $email: String!) { requestPasswordReset(tenantId: $tenant, email: $email) }";
    for email in ["admin@acme.test", "nobody@acme.test"] {
        let data = data_of(
            app.post(
                None,
                request,
                json!({ "tenant": app.tenant.tenant_id, "email": email }),
            )
            .await,
        );
        assert_eq!(data["requestPasswordReset"], true, "{email}");
    }
    let email = app
        .mail()
        .wait_for("admin@acme.test", "reset your password")
        .await;
    assert!(email.text.contains("1 hour"), "{}", email.text);
    assert!(
        email
            .link()
            .starts_with("https://portal.example.com/reset-password?token=")
    );

    let reset = "mutation($token: String!, $password: String!) { resetPassword(token: $token, password: $password) }";
    let error = error_of(
        app.post(
            None,
            reset,
            json!({ "token": email.token(), "password": "short" }),
        )
        .await,
    );
    assert_eq!(error.field.as_deref(), Some("password"));
    let data = data_of(
        app.post(
            None,
            reset,
            json!({ "token": email.token(), "password": "a brand new password" }),
        )
        .await,
    );
    assert_eq!(data["resetPassword"], true);
    // Every session ended; the new password works, the old does not.
    assert_eq!(app.viewer_status(&old_session).await, 401);
    data_of(app.login("admin@acme.test", "a brand new password").await);
    app.assert_login_refused("admin@acme.test", PASSWORD).await;
    let error = error_of(
        app.post(
            None,
            reset,
            json!({ "token": email.token(), "password": "yet another one" }),
        )
        .await,
    );
    assert!(
        error.message.contains("already been used"),
        "{}",
        error.message
    );

    // Only the known address got an email.
    app.jobs_settled().await;
    assert!(app.mail().messages_to("nobody@acme.test").is_empty());
    let subjects: Vec<String> = app
        .mail()
        .messages_to("admin@acme.test")
        .into_iter()
        .map(|m| m.subject)
        .collect();
    assert_eq!(
        subjects,
        [
            "Acme: reset your password",
            "Acme: your password was changed"
        ]
    );
}

#[tokio::test]
async fn suspending_a_user_ends_its_session_and_tells_its_administrators() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn_with_mail(pool).await;
    app.activate_admin().await;
    let customer = app.customer("Globex", None).await;
    app.administer(&customer, "admin@acme.test").await;
    let data = app
        .data(
            CREATE_USER,
            json!({ "input": { "customerId": customer, "email": "carl@globex.test", "activation": "DISPLAY_ACTIVATION_LINK" } }),
        )
        .await;
    let user_id = data["createUser"]["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let link = data["createUser"]["activationLink"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        data["createUser"]["user"]["invitation"]["method"],
        "DISPLAY_ACTIVATION_LINK"
    );
    let session = app.activate(&canopy_tests::link_token(&link)).await;
    assert_eq!(app.viewer_status(&session).await, 200);

    let set_status = "mutation($id: ID!, $status: UserStatus!) { setUserStatus(id: $id, status: $status) { user { status } } }";
    let data = app
        .data(set_status, json!({ "id": user_id, "status": "SUSPENDED" }))
        .await;
    assert_eq!(data["setUserStatus"]["user"]["status"], "SUSPENDED");
    assert_eq!(
        app.viewer_status(&session).await,
        401,
        "its session stopped at once"
    );
    app.assert_login_refused("carl@globex.test", PASSWORD).await;
    let notice = app
        .mail()
        .wait_for("admin@acme.test", "a user was suspended")
        .await;
    assert!(notice.text.contains("carl@globex.test"));
    assert!(notice.text.contains("Globex"), "{}", notice.text);
    // The admin also heard when the user was added; no invitation email went out.
    app.mail()
        .wait_for("admin@acme.test", "a user was added")
        .await;
    app.jobs_settled().await;
    assert!(app.mail().messages_to("carl@globex.test").is_empty());

    let data = app
        .data(set_status, json!({ "id": user_id, "status": "ACTIVE" }))
        .await;
    assert_eq!(data["setUserStatus"]["user"]["status"], "ACTIVE");
    data_of(app.login("carl@globex.test", PASSWORD).await);
}

#[tokio::test]
async fn a_new_address_counts_once_validated_and_is_reserved_meanwhile() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn_with_mail(pool).await;
    let customer = app.customer("Globex", None).await;
    let (user_id, _) = app.member(&customer, "dora@globex.test").await;

    let update = "mutation($id: ID!, $input: UpdateUserInput!) { updateUser(id: $id, input: $input) { user { email firstName phone } } }";
    let data = app
        .data(update, json!({ "id": user_id, "input": { "email": "dora@new.test", "firstName": "Dora", "phone": "+1 555 0100" } }))
        .await;
    assert_eq!(
        data["updateUser"]["user"]["email"], "dora@globex.test",
        "not yet"
    );
    assert_eq!(data["updateUser"]["user"]["firstName"], "Dora");

    // Reserved: nobody else may take it meanwhile.
    let error = app
        .error(CREATE_USER, json!({ "input": { "customerId": customer, "email": "DORA@new.test", "activation": "DISPLAY_ACTIVATION_LINK" } }))
        .await;
    assert_eq!(
        (error.code.as_str(), error.field.as_deref()),
        ("CONFLICT", Some("email"))
    );

    let email = app
        .mail()
        .wait_for("dora@new.test", "confirm your email address")
        .await;
    assert!(email.text.contains("dora@new.test"));
    data_of(app.login("dora@globex.test", PASSWORD).await);
    let data = data_of(
        app.post(None, VALIDATE, json!({ "token": email.token() }))
            .await,
    );
    assert_eq!(data["validateEmail"]["user"]["email"], "dora@new.test");
    data_of(app.login("dora@new.test", PASSWORD).await);
    app.assert_login_refused("dora@globex.test", PASSWORD).await;
    // The old address is free again.
    app.data(CREATE_USER, json!({ "input": { "customerId": customer, "email": "dora@globex.test", "activation": "DISPLAY_ACTIVATION_LINK" } }))
        .await;

    // A change withdrawn (the address set back) voids its link.
    app.data(
        update,
        json!({ "id": user_id, "input": { "email": "mistake@stranger.test" } }),
    )
    .await;
    let stray = app
        .mail()
        .wait_for("mistake@stranger.test", "confirm your email address")
        .await;
    app.data(
        update,
        json!({ "id": user_id, "input": { "email": "dora@new.test" } }),
    )
    .await;
    let error = error_of(
        app.post(None, VALIDATE, json!({ "token": stray.token() }))
            .await,
    );
    assert_eq!(
        (error.code.as_str(), error.field.as_deref()),
        ("BAD_USER_INPUT", Some("token"))
    );
    data_of(app.login("dora@new.test", PASSWORD).await);

    // An address nobody proved yet is not changed: the invitation went there.
    let pending = app
        .data(CREATE_USER, json!({ "input": { "customerId": customer, "email": "eli@globex.test", "activation": "DISPLAY_ACTIVATION_LINK" } }))
        .await["createUser"]["user"]["id"]
        .clone();
    let error = app
        .error(
            update,
            json!({ "id": pending, "input": { "email": "eli@else.test" } }),
        )
        .await;
    assert_eq!(error.code, "FAILED_PRECONDITION");

    // Null clears a name; an email cannot be cleared.
    let data = app
        .data(
            update,
            json!({ "id": user_id, "input": { "firstName": null } }),
        )
        .await;
    assert_eq!(data["updateUser"]["user"]["firstName"], Value::Null);
    assert_eq!(data["updateUser"]["user"]["phone"], "+1 555 0100");
    let error = app
        .error(update, json!({ "id": user_id, "input": { "email": null } }))
        .await;
    assert_eq!(
        (error.code.as_str(), error.field.as_deref()),
        ("BAD_USER_INPUT", Some("email"))
    );
}

#[tokio::test]
async fn deleting_a_user_ends_its_sessions_and_voids_its_links() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn_with_mail(pool).await;
    let admin = app.activate_admin().await;
    let customer = app.customer("Globex", None).await;
    app.administer(&customer, "admin@acme.test").await;
    let make = |email: &str| json!({ "input": { "customerId": customer, "email": email, "activation": "DISPLAY_ACTIVATION_LINK" } });
    let active = app.data(CREATE_USER, make("eve@globex.test")).await["createUser"].clone();
    let session = app
        .activate(&canopy_tests::link_token(
            active["activationLink"].as_str().unwrap(),
        ))
        .await;
    let invited = app.data(CREATE_USER, make("fay@globex.test")).await["createUser"].clone();

    let delete = "mutation($id: ID!) { deleteUser(id: $id) { deletedUserId } }";
    for user in [&active, &invited] {
        let id = user["user"]["id"].as_str().unwrap();
        let data = app.data_as(&admin, delete, json!({ "id": id })).await;
        assert_eq!(data["deleteUser"]["deletedUserId"], id);
    }
    assert_eq!(app.viewer_status(&session).await, 401);
    let token = canopy_tests::link_token(invited["activationLink"].as_str().unwrap());
    let error = error_of(app.try_activate(&token, PASSWORD).await);
    assert_eq!(
        (error.code.as_str(), error.field.as_deref()),
        ("BAD_USER_INPUT", Some("token"))
    );
    // The admin who deleted them is not told about their own act.
    app.jobs_settled().await;
    let told: Vec<_> = app
        .mail()
        .messages_to("admin@acme.test")
        .into_iter()
        .map(|m| m.subject)
        .collect();
    assert!(!told.iter().any(|s| s.contains("deleted")), "{told:?}");
    // An API key's deletion is news to the administrators.
    let third =
        app.data(CREATE_USER, make("gus@globex.test")).await["createUser"]["user"]["id"].clone();
    app.data(delete, json!({ "id": third })).await;
    app.mail()
        .wait_for("admin@acme.test", "a user was deleted")
        .await;
    let error = app.error(delete, json!({ "id": third })).await;
    assert_eq!(error.code, "NOT_FOUND");
    // Nobody deletes themselves.
    let me = app.tenant.admin_user_id.clone();
    let error = app
        .error_as(Some(&admin), delete, json!({ "id": me }))
        .await;
    assert_eq!(error.code, "FAILED_PRECONDITION");
}

#[tokio::test]
async fn user_mutations_refuse_bad_input_and_change_nothing() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    let customer = app.customer("Globex", None).await;
    let data = app
        .data(CREATE_USER, json!({ "input": { "customerId": customer, "email": "hal@globex.test", "activation": "DISPLAY_ACTIVATION_LINK" } }))
        .await;
    let user_id = data["createUser"]["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = app.snapshot().await;
    let jobs_before: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs")
        .fetch_one(&app.pool)
        .await
        .unwrap();

    let base = json!({ "customerId": customer, "email": "new@globex.test", "activation": "SEND_ACTIVATION_EMAIL" });
    let with = |key: &str, value: Value| {
        let mut input = base.clone();
        input[key] = value;
        json!({ "input": input })
    };
    for (variables, code, field) in [
        (with("email", json!("HAL@globex.test")), "CONFLICT", "email"),
        (
            with("email", json!("bad address")),
            "BAD_USER_INPUT",
            "email",
        ),
        (
            with("customerId", Value::Null),
            "BAD_USER_INPUT",
            "customerId",
        ),
        (
            with("customerId", json!("junk")),
            "BAD_USER_INPUT",
            "customerId",
        ),
        (
            with("role", json!("TENANT_ADMIN")),
            "BAD_USER_INPUT",
            "customerId",
        ),
        (
            with("activationTtlHours", json!(0)),
            "BAD_USER_INPUT",
            "activationTtlHours",
        ),
        (
            with("activationTtlHours", json!(721)),
            "BAD_USER_INPUT",
            "activationTtlHours",
        ),
        (
            with("firstName", json!("n".repeat(101))),
            "BAD_USER_INPUT",
            "firstName",
        ),
        (with("phone", json!("call me")), "BAD_USER_INPUT", "phone"),
    ] {
        let error = app.error(CREATE_USER, variables.clone()).await;
        assert_eq!(
            (error.code.as_str(), error.field.as_deref()),
            (code, Some(field)),
            "{variables}"
        );
    }
    let revoke =
        "mutation($id: ID!) { revokeInvitation(id: $id) { user { invitation { state } } } }";
    let resend = "mutation($id: ID!, $ttl: Int) { resendActivation(id: $id, method: DISPLAY_ACTIVATION_LINK, activationTtlHours: $ttl) { activationLink } }";
    let error = app
        .error(resend, json!({ "id": user_id, "ttl": 9999 }))
        .await;
    assert_eq!(error.field.as_deref(), Some("activationTtlHours"));
    let error = app
        .error(
            "mutation($id: ID!) { approveUser(id: $id) { user { id } } }",
            json!({ "id": user_id }),
        )
        .await;
    assert_eq!(error.code, "FAILED_PRECONDITION");
    let error = app.error(revoke, json!({ "id": customer })).await;
    assert_eq!(error.code, "NOT_FOUND");
    assert_eq!(app.snapshot().await, before);
    let jobs_after: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(jobs_after, jobs_before);

    // Revoke, then revoking again has nothing to revoke; resending issues a
    // new link that works.
    let data = app.data(revoke, json!({ "id": user_id })).await;
    assert_eq!(
        data["revokeInvitation"]["user"]["invitation"]["state"],
        "REVOKED"
    );
    assert_eq!(
        app.error(revoke, json!({ "id": user_id })).await.code,
        "FAILED_PRECONDITION"
    );
    let data = app.data(resend, json!({ "id": user_id, "ttl": 2 })).await;
    let link = data["resendActivation"]["activationLink"]
        .as_str()
        .unwrap()
        .to_owned();
    app.activate(&canopy_tests::link_token(&link)).await;
    let error = app.error(resend, json!({ "id": user_id })).await;
    assert_eq!(error.code, "FAILED_PRECONDITION", "already active");
}

#[tokio::test]
async fn a_mutation_that_fails_after_writing_its_job_leaves_no_job_and_no_email() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn_with_mail(pool).await;
    app.activate_admin().await;
    let customer = app.customer("Globex", None).await;
    app.administer(&customer, "admin@acme.test").await;
    // The fault: the notification written after the invitation job fails.
    sqlx::query(
        "CREATE FUNCTION refuse_notices() RETURNS trigger LANGUAGE plpgsql AS
         $$ BEGIN RAISE EXCEPTION 'injected fault'; END $$;
         ",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query(
        "CREATE TRIGGER refuse_notices BEFORE INSERT ON jobs FOR EACH ROW
         WHEN (NEW.kind = 'ADMIN_NOTIFICATION') EXECUTE FUNCTION refuse_notices()",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let before = app.snapshot().await;
    let error = app
        .error(CREATE_USER, json!({ "input": { "customerId": customer, "email": "ivy@globex.test", "activation": "SEND_ACTIVATION_EMAIL" } }))
        .await;
    assert_eq!(error.code, "INTERNAL");
    assert!(
        !error.message.contains("injected"),
        "internal causes stay inside"
    );
    assert_eq!(app.snapshot().await, before);
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE kind = 'INVITATION'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(jobs, 0);

    // Proof the pipeline was live: the same mutation without the fault
    // delivers, and the failed one never does.
    sqlx::query("DROP TRIGGER refuse_notices ON jobs")
        .execute(&app.pool)
        .await
        .unwrap();
    app.data(CREATE_USER, json!({ "input": { "customerId": customer, "email": "jay@globex.test", "activation": "SEND_ACTIVATION_EMAIL" } }))
        .await;
    app.mail()
        .wait_for("jay@globex.test", "set up your account")
        .await;
    app.jobs_settled().await;
    assert!(app.mail().messages_to("ivy@globex.test").is_empty());
}

#[tokio::test]
async fn moot_jobs_send_nothing() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let mut app = TestApp::spawn_with_mail_stopped(pool).await;
    app.activate_admin().await;
    let customer = app.customer("Globex", None).await;
    let doomed_customer = app.customer("Initech", None).await;
    app.administer(&doomed_customer, "admin@acme.test").await;
    let invite = |email: &str, customer: &str| json!({ "input": { "customerId": customer, "email": email, "activation": "SEND_ACTIVATION_EMAIL" } });
    // Replaced: a newer link was displayed instead.
    let replaced = app
        .data(CREATE_USER, invite("kim@globex.test", &customer))
        .await["createUser"]["user"]["id"]
        .clone();
    app.data(
        "mutation($id: ID!) { resendActivation(id: $id, method: DISPLAY_ACTIVATION_LINK) { activationLink } }",
        json!({ "id": replaced }),
    )
    .await;
    // Deleted before the email went out.
    let deleted = app
        .data(CREATE_USER, invite("lou@globex.test", &customer))
        .await["createUser"]["user"]["id"]
        .clone();
    app.data(
        "mutation($id: ID!) { deleteUser(id: $id) { deletedUserId } }",
        json!({ "id": deleted }),
    )
    .await;
    // Its customer deleted: the admin hears no more about it.
    app.data(CREATE_USER, invite("max@initech.test", &doomed_customer))
        .await;
    app.data(
        "mutation($id: ID!) { deleteCustomer(id: $id) { deletedCustomerIds } }",
        json!({ "id": doomed_customer }),
    )
    .await;
    let waiting: i64 =
        sqlx::query_scalar("SELECT count(*) FROM jobs WHERE state = 'AWAITING_DISPATCH'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let states: Vec<(String, String)> = sqlx::query_as("SELECT kind, state FROM jobs ORDER BY id")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert!(waiting >= 4, "the jobs wait in the ledger: {states:?}");

    app.start_worker();
    app.jobs_settled().await;
    let sent: Vec<(String, String)> = app
        .mail()
        .messages()
        .into_iter()
        .map(|m| (m.to, m.subject))
        .collect();
    assert!(sent.is_empty(), "nothing to send: {sent:?}");
    let reasons: Vec<String> =
        sqlx::query_scalar("SELECT last_error FROM jobs WHERE state = 'DONE' ORDER BY id")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert!(
        reasons.iter().any(|r| r.contains("replaced")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("no longer exists")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("customer was deleted")),
        "{reasons:?}"
    );
}

/// A user added deep in a tree is told to the administrators of its
/// customer and of every customer above it, and to no one elsewhere.
#[tokio::test]
async fn administrators_above_a_new_user_hear_of_it_and_no_others() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn_with_mail(pool).await;
    let root = app.customer("Initech", None).await;
    let east = app.customer("Initech East", Some(&root)).await;
    let lab = app.customer("Initech East Lab", Some(&east)).await;
    let hooli = app.customer("Hooli", None).await;
    for (customer, email) in [
        (&root, "ria@initech.test"),
        (&east, "eli@initech.test"),
        (&hooli, "hal@hooli.test"),
    ] {
        app.member(customer, email).await;
        app.administer(customer, email).await;
    }
    app.data(
        CREATE_USER,
        json!({ "input": { "customerId": lab, "email": "new@initech.test", "activation": "DISPLAY_ACTIVATION_LINK" } }),
    )
    .await;
    let about_new = |to: &str| {
        app.mail()
            .messages_to(to)
            .into_iter()
            .filter(|m| {
                m.subject.contains("a user was added") && m.text.contains("new@initech.test")
            })
            .count()
    };
    app.jobs_settled().await;
    for told in ["ria@initech.test", "eli@initech.test"] {
        assert_eq!(about_new(told), 1, "{told} hears of the new user once");
    }
    let elsewhere: Vec<_> = app
        .mail()
        .messages_to("hal@hooli.test")
        .into_iter()
        .filter(|m| m.text.contains("new@initech.test"))
        .collect();
    assert!(elsewhere.is_empty(), "{elsewhere:#?}");
}
