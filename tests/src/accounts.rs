//! People signing in, as the tests need them: activating an account from
//! its link, signing in, and whether a session still works.

use serde_json::{Value, json};

use crate::{TestApp, data_of, link_token};

/// The password the tests' people choose.
pub const PASSWORD: &str = "correct horse battery";

const ACTIVATE: &str = "mutation($token: String!, $password: String!) {
  activateAccount(token: $token, password: $password) { token user { id status } }
}";

const LOGIN: &str = "mutation($tenant: ID!, $email: String!, $password: String!) {
  login(tenantId: $tenant, email: $email, password: $password) { token user { email } }
}";

const CREATE_MEMBER: &str = "mutation($input: CreateUserInput!) {
  createUser(input: $input) { activationLink user { id } }
}";

impl TestApp {
    /// Activates an account with a link's `token` and `password`; returns
    /// the whole answer.
    pub async fn try_activate(&self, token: &str, password: &str) -> Value {
        self.post(
            None,
            ACTIVATE,
            json!({ "token": token, "password": password }),
        )
        .await
    }

    /// Activates an account with a link's `token` and `PASSWORD`, failing on
    /// any error; returns its session.
    pub async fn activate(&self, token: &str) -> String {
        let data = data_of(self.try_activate(token, PASSWORD).await);
        data["activateAccount"]["token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Activates the tenant's first admin; returns its session.
    pub async fn activate_admin(&self) -> String {
        self.activate(&link_token(&self.tenant.activation_link))
            .await
    }

    /// A customer user of `customer`, activated from the link displayed
    /// for it; returns (user id, session).
    pub async fn member(&self, customer: &str, email: &str) -> (String, String) {
        let data = self
            .data(
                CREATE_MEMBER,
                json!({ "input": { "customerId": customer, "email": email,
                                   "activation": "DISPLAY_ACTIVATION_LINK" } }),
            )
            .await;
        let id = data["createUser"]["user"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let link = data["createUser"]["activationLink"].as_str().unwrap();
        (id, self.activate(&link_token(link)).await)
    }

    /// Makes the user at `email` an administrator of `customer`.
    pub async fn administer(&self, customer: &str, email: &str) {
        self.data(
            "mutation($c: ID!, $e: String!) {
               assignCustomerAdministrator(customerId: $c, email: $e) { customer { id } } }",
            json!({ "c": customer, "e": email }),
        )
        .await;
    }

    /// Signs in to the tenant as `email` with `password`; returns the
    /// whole answer.
    pub async fn login(&self, email: &str, password: &str) -> Value {
        self.post(
            None,
            LOGIN,
            json!({ "tenant": self.tenant.tenant_id, "email": email, "password": password }),
        )
        .await
    }

    /// Asserts that `email` cannot sign in with `password`.
    pub async fn assert_login_refused(&self, email: &str, password: &str) {
        let error = crate::error_of(self.login(email, password).await);
        assert_eq!(error.code, "UNAUTHENTICATED", "{email}: {error:?}");
    }

    /// The HTTP status `{ viewer { scopes } }` is answered with under
    /// `bearer`: 200 while a session or key works, 401 once it does not.
    pub async fn viewer_status(&self, bearer: &str) -> u16 {
        self.viewer_status_at(self.addr, bearer).await
    }

    /// `viewer_status`, asked of the api process serving at `addr`.
    pub async fn viewer_status_at(&self, addr: std::net::SocketAddr, bearer: &str) -> u16 {
        self.client
            .post(format!("http://{addr}/graphql"))
            .bearer_auth(bearer)
            .json(&json!({ "query": "{ viewer { scopes } }" }))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }
}
