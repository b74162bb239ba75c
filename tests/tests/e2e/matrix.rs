//! The authorization matrix: for every field of the schema, the rule that
//! decides what each kind of caller gets (README "Security", DESIGN "Who
//! may do what"), and tests that run it.
//!
//! - `MATRIX` holds one entry per `Type.field` of `schema.graphql` (rows
//!   group the fields of a type that share a rule); the coverage test fails
//!   when a field has no entry or an entry names no field.
//! - Reads: every field of `Query` is asked with the arguments of
//!   `QUERY_PROBES`; every field of an object type is asked through each of
//!   its type's `ROUTES` (a query reaching one object of A1's subtree).
//! - Mutations: `MUTATION_PROBES` gives each mutation its arguments, its
//!   target and a fixture (a fresh object, so a call that succeeds changes
//!   nothing the next one needs). `ESCALATIONS` are the attempts to gain a
//!   power, with their documented answers.
//! - Each answer expected is derived from the row's rule and the callers'
//!   and targets' places in the world (`model`), never read from the
//!   server. One thing is: whether there is content at all (a leaf has no
//!   inner customers), taken from a tenant-wide caller with the row's
//!   sight; a `Shows` row must have content on some route, so its rule is
//!   really exercised. Every refused mutation must have changed nothing.
//!
//! Adding a field: add its name to the row of its rule (or a new row), and
//! for a new object type a route; for a mutation, a probe.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use async_graphql_parser::types::{TypeKind, TypeSystemDefinition};
use canopy_core::authz::Scope;
use canopy_tests::{TestApp, TestDb, global_id_number, link_token, string_at};
use serde_json::{Map, Value, json};
use sqlx::PgPool;

const CR: Scope = Scope::CustomersRead;
const CW: Scope = Scope::CustomersWrite;
const UR: Scope = Scope::UsersRead;
const UW: Scope = Scope::UsersWrite;
const JR: Scope = Scope::JobsRead;
const JW: Scope = Scope::JobsWrite;
const AKW: Scope = Scope::ApiKeysWrite;
const ADMINISTRATOR: &[Scope] = &[CR, CW, UR, UW];
const MEMBER: &[Scope] = &[CR, UR, UW];

/// What decides a field's answer.
#[derive(Clone, Copy, Debug)]
enum Rule {
    /// Anyone, even without credentials.
    Public,
    /// Any caller with a live credential.
    Authenticated,
    /// A value of its object: whoever reads the object reads it.
    Field,
    /// Part of a mutation's answer: follows the mutation's rule.
    Payload,
    /// Needs the scopes (else FORBIDDEN); what it names must be in reach
    /// (else null, or NOT_FOUND for a mutation).
    Scopes(&'static [Scope]),
    /// Every scope, tenant-wide.
    EveryScope,
    /// Needs the scopes; shows content only where the caller has that
    /// sight of the object, else answers empty (null, [], 0).
    Shows(&'static [Scope], Sight),
    /// Needs the scopes; the user itself and its managers only, others
    /// FORBIDDEN.
    SelfOrManager(&'static [Scope]),
    /// Changes a customer (or what it holds, or creates below it): hidden
    /// out of sight, FORBIDDEN when seen but not managed.
    ChangeCustomer(&'static [Scope]),
    /// As `ChangeCustomer`, but only below the customers a customer
    /// administrator was given.
    Restructure(&'static [Scope]),
    /// Acts on a user: hidden out of sight, FORBIDDEN when seen but not
    /// managed (or when the user holds a power the caller lacks: the
    /// scopes listed are the target's powers).
    ManageUser(&'static [Scope]),
    /// The audit log's readers: every scope tenant-wide, or a customer
    /// administrator (its subtrees' entries); others FORBIDDEN.
    Auditors,
    /// As `Auditors`, but shown to tenant-wide readers only: customer
    /// administrators get null.
    AuditorsTenantWide,
    /// Tenant-wide callers only (keys and tenant administrators); customer
    /// users FORBIDDEN.
    TenantWide,
    /// Needs the scopes, and tenant-wide callers only: customer users
    /// FORBIDDEN whatever they target (partners' own ids).
    TenantWideScopes(&'static [Scope]),
}

/// Where content shows, for `Rule::Shows`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sight {
    /// The customer (a user's customer) is its own or administered.
    Sees,
    /// The customer is administered; a user is itself or administered.
    Manages,
    /// The customer's parent is administered: nothing above reach shows.
    Above,
    /// The caller is a signed-in user.
    Session,
    /// The caller is an API key.
    Key,
}

use Rule::*;
use Sight::*;

/// One entry per field: (type, fields separated by spaces, rule).
#[rustfmt::skip]
const MATRIX: &[(&str, &str, Rule)] = &[
    ("Query", "node viewer", Authenticated),
    ("Query", "customer customerByNumber customerByExternalId customers", Scopes(&[CR])),
    ("Query", "user userByEmail userByExternalId users", Scopes(&[UR])),
    ("Query", "approvalRequests", Scopes(&[UW])),
    ("Query", "jobQueue", Scopes(&[JR])),
    ("Query", "apiKeys", Scopes(&[AKW])),
    ("Query", "auditLog", Auditors),
    ("Query", "webhookEndpoints", Scopes(&[AKW])),
    ("Query", "events", TenantWide),
    ("Event", "id type typeName data createdAt", TenantWide),
    ("EventConnection", "edges nodes pageInfo totalCount totalCountIsExact", TenantWide),
    ("EventEdge", "cursor node", TenantWide),
    ("WebhookEndpoint", "id url events description enabled disabledReason failures createdAt deliveries", Field),
    ("WebhookDelivery", "id event state attempts lastStatus lastLatencyMs lastError nextAttemptAt deliveredAt createdAt", Field),
    ("WebhookDeliveryConnection", "edges nodes pageInfo totalCount totalCountIsExact", Field),
    ("WebhookDeliveryEdge", "cursor node", Field),
    ("CreateWebhookEndpointPayload", "endpoint secret", Payload),
    ("AuditEntry", "at operation actor sessionId requestId customer objectIds detail", Auditors),
    ("AuditEntry", "clientAddress", AuditorsTenantWide),
    ("AuditEntryConnection", "edges nodes pageInfo totalCount totalCountIsExact", Auditors),
    ("AuditEntryEdge", "cursor node", Auditors),
    ("Mutation", "signUp validateEmail requestPasswordReset resetPassword login activateAccount requestNewLink", Public),
    ("Mutation", "logout", Authenticated),
    ("Mutation", "createCustomer updateCustomer attachEntitlement detachEntitlement", ChangeCustomer(&[CW])),
    ("Mutation", "upsertCustomer", TenantWideScopes(&[CW])),
    ("Mutation", "moveCustomer deleteCustomer", Restructure(&[CW])),
    ("Mutation", "assignCustomerAdministrator", ChangeCustomer(ADMINISTRATOR)),
    ("Mutation", "removeCustomerAdministrator", ChangeCustomer(&[CW, UR])),
    ("Mutation", "createUser", ChangeCustomer(MEMBER)),
    ("Mutation", "upsertUser", TenantWideScopes(MEMBER)),
    ("Mutation", "updateUser setUserStatus approveUser resendActivation revokeInvitation deleteUser revokeSessions", ManageUser(MEMBER)),
    ("Mutation", "updateTenant", EveryScope),
    ("Mutation", "retryJob cancelJob retryJobs pauseJobKind resumeJobKind", Scopes(&[JW])),
    // Batches: each item is refused as its single mutation refuses it, in
    // the item's result (batches.rs tests those refusals).
    ("Mutation", "createCustomers", Scopes(&[CW])),
    ("Mutation", "createUsers updateUsers", Scopes(&[UW])),
    ("Mutation", "createApiKey", Scopes(&[AKW, JR])), // JR: the scope the probe grants
    ("Mutation", "revokeApiKey", Scopes(&[AKW])),
    // JR: the read scope of the probes' JOB_KILLED events.
    ("Mutation", "createWebhookEndpoint updateWebhookEndpoint deleteWebhookEndpoint redeliverWebhook", Scopes(&[AKW, JR])),
    ("Customer", "id number title info email phone country state city address address2 zip externalId createdAt updatedAt", Field),
    ("Customer", "parentId depth", Shows(&[], Above)),
    ("Customer", "parent ancestors", Shows(&[CR], Above)),
    ("Customer", "innerCustomers innerCustomerCount descendantCount descendants", Shows(&[CR], Manages)),
    ("Customer", "users", Shows(&[UR], Sees)),
    ("Customer", "administrators", Shows(&[UR], Manages)),
    ("Customer", "entitlements", Shows(&[CR], Sees)),
    ("User", "id email firstName lastName phone role status emailVerified lastLoginAt externalId createdAt updatedAt", Field),
    ("User", "customer administeredCustomers", Shows(&[CR], Sees)),
    ("User", "invitation sessions", Shows(&[], Manages)),
    ("Session", "id createdAt expiresAt current", Field),
    ("User", "emailDeliveries", SelfOrManager(&[UR])),
    ("Invitation", "state method expiresAt createdAt", Field),
    ("Entitlement", "id kind reference customerNumber createdAt", Field),
    ("Entitlement", "customer", Shows(&[CR], Sees)),
    ("ApiKey", "id name scopes prefix createdAt lastUsedAt revokedAt expiresAt createdByUser createdByKey rateLimitPerMinute", Field),
    ("Job", "id kind state attempts maxAttempts lastError recipient requestId createdAt updatedAt lastAction", Field),
    ("JobAction", "action at by", Field),
    ("Actor", "user apiKey", Field),
    ("JobPause", "at by", Field),
    ("JobMinute", "minute done retried killed", Field),
    ("JobQueue", "kinds activeWorkers workers jobs", Field),
    ("WorkerProcess", "id startedAt lastHeartbeatAt active", Field),
    ("JobKindStats", "kind awaitingDispatch pending running done failed killed paused throughput", Field),
    ("Tenant", "id name requireApproval portalUrl selfSignUp logoUrl accentColor", Field),
    ("Viewer", "tenant scopes", Field),
    ("Viewer", "user", Shows(&[], Session)),
    ("Viewer", "apiKey", Shows(&[], Key)),
    ("CustomerConnection", "edges nodes pageInfo totalCount totalCountIsExact", Field),
    ("UserConnection", "edges nodes pageInfo totalCount totalCountIsExact", Field),
    ("JobConnection", "edges nodes pageInfo totalCount totalCountIsExact", Field),
    ("CustomerEdge", "cursor node", Field),
    ("UserEdge", "cursor node", Field),
    ("JobEdge", "cursor node", Field),
    ("PageInfo", "hasNextPage hasPreviousPage startCursor endCursor", Field),
    ("AuthPayload", "token expiresAt user", Payload),
    ("CreateApiKeyPayload", "apiKey secret", Payload),
    ("CreateUserPayload", "user activationLink", Payload),
    ("CustomerPayload", "customer", Payload),
    ("DeleteCustomerPayload", "deletedCustomerIds deletedUserIds detachedEntitlementIds", Payload),
    ("DeleteUserPayload", "deletedUserId", Payload),
    ("SignUpPayload", "user customer", Payload),
    ("UserPayload", "user", Payload),
    ("RetryJobsPayload", "retried more", Payload),
    ("CreateUsersPayload", "results succeeded failed", Payload),
    ("CreateCustomersPayload", "results succeeded failed", Payload),
    ("UpdateUsersPayload", "results succeeded failed", Payload),
    ("CreateUsersResult", "index user activationLink error", Payload),
    ("CustomerResult", "index customer error", Payload),
    ("UserResult", "index user error", Payload),
    ("ItemError", "code message field", Payload),
];

/// How to reach one object of a type; `FIELD` is where the field goes.
struct Route {
    ty: &'static str,
    query: &'static str,
    /// The scopes the way there needs.
    scopes: &'static [Scope],
    target: Target,
}

#[rustfmt::skip]
const ROUTES: &[Route] = &[
    Route { ty: "Customer", query: "customer(id: $a1) { FIELD }", scopes: &[CR], target: Target::Customer(Cust::A1) },
    Route { ty: "Customer", query: "customer(id: $a1a) { FIELD }", scopes: &[CR], target: Target::Customer(Cust::A1a) },
    Route { ty: "User", query: "user(id: $plain) { FIELD }", scopes: &[UR], target: Target::User(U::Plain) },
    Route { ty: "User", query: "user(id: $a1admin) { FIELD }", scopes: &[UR], target: Target::User(U::A1Admin) },
    Route { ty: "Invitation", query: "user(id: $deep) { invitation { FIELD } }", scopes: &[UR], target: Target::Invitation(U::Deep) },
    Route { ty: "Session", query: "user(id: $plain) { sessions { FIELD } }", scopes: &[UR], target: Target::Invitation(U::Plain) },
    Route { ty: "Entitlement", query: "node(id: $entitlement) { ... on Entitlement { FIELD } }", scopes: &[CR], target: Target::Entitlement(Cust::A1a) },
    Route { ty: "ApiKey", query: "node(id: $key) { ... on ApiKey { FIELD } }", scopes: &[AKW], target: Target::Tenant },
    Route { ty: "Job", query: "node(id: $job) { ... on Job { FIELD } }", scopes: &[JR], target: Target::Tenant },
    Route { ty: "JobQueue", query: "jobQueue { FIELD }", scopes: &[JR], target: Target::Own },
    Route { ty: "JobKindStats", query: "jobQueue { kinds { FIELD } }", scopes: &[JR], target: Target::Own },
    Route { ty: "JobAction", query: "node(id: $job) { ... on Job { lastAction { FIELD } } }", scopes: &[JR], target: Target::Tenant },
    Route { ty: "Actor", query: "node(id: $job) { ... on Job { lastAction { by { FIELD } } } }", scopes: &[JR], target: Target::Tenant },
    Route { ty: "Actor", query: "jobQueue { kinds { paused { by { FIELD } } } }", scopes: &[JR], target: Target::Own },
    Route { ty: "JobPause", query: "jobQueue { kinds { paused { FIELD } } }", scopes: &[JR], target: Target::Own },
    Route { ty: "WorkerProcess", query: "jobQueue { workers { FIELD } }", scopes: &[JR], target: Target::Own },
    Route { ty: "JobMinute", query: "jobQueue { kinds { throughput { FIELD } } }", scopes: &[JR], target: Target::Own },
    Route { ty: "Tenant", query: "node(id: $tenant) { ... on Tenant { FIELD } }", scopes: &[], target: Target::Tenant },
    Route { ty: "Viewer", query: "viewer { FIELD }", scopes: &[], target: Target::Own },
    Route { ty: "CustomerConnection", query: "customers(first: 1) { FIELD }", scopes: &[CR], target: Target::Own },
    Route { ty: "CustomerEdge", query: "customers(first: 1) { edges { FIELD } }", scopes: &[CR], target: Target::Own },
    Route { ty: "PageInfo", query: "customers(first: 1) { pageInfo { FIELD } }", scopes: &[CR], target: Target::Own },
    Route { ty: "UserConnection", query: "users(first: 1) { FIELD }", scopes: &[UR], target: Target::Own },
    Route { ty: "UserEdge", query: "users(first: 1) { edges { FIELD } }", scopes: &[UR], target: Target::Own },
    Route { ty: "JobConnection", query: "jobQueue { jobs(first: 1) { FIELD } }", scopes: &[JR], target: Target::Own },
    Route { ty: "JobEdge", query: "jobQueue { jobs(first: 1) { edges { FIELD } } }", scopes: &[JR], target: Target::Own },
    Route { ty: "WebhookEndpoint", query: "webhookEndpoints { FIELD }", scopes: &[AKW], target: Target::Tenant },
    Route { ty: "WebhookDelivery", query: "webhookEndpoints { deliveries(first: 1) { nodes { FIELD } } }", scopes: &[AKW], target: Target::Tenant },
    Route { ty: "WebhookDeliveryConnection", query: "webhookEndpoints { deliveries(first: 1) { FIELD } }", scopes: &[AKW], target: Target::Tenant },
    Route { ty: "WebhookDeliveryEdge", query: "webhookEndpoints { deliveries(first: 1) { edges { FIELD } } }", scopes: &[AKW], target: Target::Tenant },
    Route { ty: "Event", query: "events(first: 1) { nodes { FIELD } }", scopes: &[], target: Target::Own },
    Route { ty: "EventConnection", query: "events(first: 1) { FIELD }", scopes: &[], target: Target::Own },
    Route { ty: "EventEdge", query: "events(first: 1) { edges { FIELD } }", scopes: &[], target: Target::Own },
    Route { ty: "AuditEntry", query: "auditLog(first: 1) { nodes { FIELD } }", scopes: &[], target: Target::Own },
    Route { ty: "AuditEntryConnection", query: "auditLog(first: 1) { FIELD }", scopes: &[], target: Target::Own },
    Route { ty: "AuditEntryEdge", query: "auditLog(first: 1) { edges { FIELD } }", scopes: &[], target: Target::Own },
];

/// Arguments and target of the `Query` fields that name something; the
/// others list the caller's own tenant.
#[rustfmt::skip]
const QUERY_PROBES: &[(&str, &str, Target)] = &[
    ("node", "(id: $tenant)", Target::Tenant),
    ("customer", "(id: $a1a)", Target::Customer(Cust::A1a)),
    ("customerByNumber", "(number: $a1Number)", Target::Customer(Cust::A1)),
    ("user", "(id: $deep)", Target::User(U::Deep)),
    ("customerByExternalId", "(externalId: $a1aExternal)", Target::Customer(Cust::A1a)),
    ("userByExternalId", "(externalId: $deepExternal)", Target::User(U::Deep)),
    ("userByEmail", "(email: \"plain@acme.test\")", Target::User(U::Plain)),
];

/// A mutation's call: arguments, what it acts on, the answer when that is
/// out of reach (for a public mutation: what every caller gets), and the
/// fresh object it needs (bound to `$target`, `$targetEmail`).
struct Probe {
    field: &'static str,
    args: &'static str,
    target: Target,
    hidden: Answer,
    fixture: Fixture,
}

const NOT_FOUND: Answer = Answer::Refused("NOT_FOUND");

#[rustfmt::skip]
const MUTATION_PROBES: &[Probe] = &[
    Probe { field: "createCustomer", args: "(input: { title: \"Probe\", parentId: $a1 })", target: Target::Customer(Cust::A1), hidden: Answer::BadInput("parentId"), fixture: Fixture::None },
    Probe { field: "upsertCustomer", args: "(externalId: $unique, input: { title: \"Probe\", parentId: $a1 })", target: Target::Customer(Cust::A1), hidden: Answer::BadInput("parentId"), fixture: Fixture::None },
    Probe { field: "createCustomers", args: "(inputs: [{ title: \"Probe\", parentId: $a1 }])", target: Target::Own, hidden: NOT_FOUND, fixture: Fixture::None },
    Probe { field: "updateCustomer", args: "(id: $a1, input: { info: \"probed\" })", target: Target::Customer(Cust::A1), hidden: NOT_FOUND, fixture: Fixture::None },
    Probe { field: "moveCustomer", args: "(id: $target, newParentId: $a1a)", target: Target::Customer(Cust::A1New), hidden: NOT_FOUND, fixture: Fixture::Customer },
    Probe { field: "deleteCustomer", args: "(id: $target)", target: Target::Customer(Cust::A1New), hidden: NOT_FOUND, fixture: Fixture::Customer },
    Probe { field: "assignCustomerAdministrator", args: "(customerId: $a1a, email: $targetEmail)", target: Target::Customer(Cust::A1a), hidden: NOT_FOUND, fixture: Fixture::User },
    Probe { field: "removeCustomerAdministrator", args: "(customerId: $a1a, email: $targetEmail)", target: Target::Customer(Cust::A1a), hidden: NOT_FOUND, fixture: Fixture::Administrator },
    Probe { field: "attachEntitlement", args: "(customerId: $a1a, kind: ACTIVATION_KEY, reference: $unique)", target: Target::Customer(Cust::A1a), hidden: NOT_FOUND, fixture: Fixture::None },
    Probe { field: "detachEntitlement", args: "(id: $target)", target: Target::Entitlement(Cust::A1a), hidden: NOT_FOUND, fixture: Fixture::Entitlement },
    Probe { field: "createUser", args: "(input: { customerId: $a1a, email: $uniqueEmail, activation: DISPLAY_ACTIVATION_LINK })", target: Target::Customer(Cust::A1a), hidden: Answer::BadInput("customerId"), fixture: Fixture::None },
    Probe { field: "upsertUser", args: "(externalId: $unique, input: { customerId: $a1a, email: $uniqueEmail, activation: DISPLAY_ACTIVATION_LINK })", target: Target::Customer(Cust::A1a), hidden: Answer::BadInput("customerId"), fixture: Fixture::None },
    Probe { field: "createUsers", args: "(inputs: [{ customerId: $a1a, email: $uniqueEmail, activation: DISPLAY_ACTIVATION_LINK }, { customerId: $a1a, email: \"no address\", activation: DISPLAY_ACTIVATION_LINK }])", target: Target::Own, hidden: NOT_FOUND, fixture: Fixture::None },
    Probe { field: "updateUsers", args: "(updates: [{ id: $target, input: { firstName: \"Probe\" } }])", target: Target::Own, hidden: NOT_FOUND, fixture: Fixture::User },
    Probe { field: "updateUser", args: "(id: $target, input: { firstName: \"Probe\" })", target: Target::User(U::New), hidden: NOT_FOUND, fixture: Fixture::User },
    Probe { field: "setUserStatus", args: "(id: $target, status: SUSPENDED)", target: Target::User(U::New), hidden: NOT_FOUND, fixture: Fixture::User },
    Probe { field: "approveUser", args: "(id: $target)", target: Target::User(U::New), hidden: NOT_FOUND, fixture: Fixture::PendingApproval },
    Probe { field: "resendActivation", args: "(id: $target, method: DISPLAY_ACTIVATION_LINK)", target: Target::User(U::New), hidden: NOT_FOUND, fixture: Fixture::User },
    Probe { field: "revokeInvitation", args: "(id: $target)", target: Target::User(U::New), hidden: NOT_FOUND, fixture: Fixture::User },
    Probe { field: "deleteUser", args: "(id: $target)", target: Target::User(U::New), hidden: NOT_FOUND, fixture: Fixture::User },
    Probe { field: "revokeSessions", args: "(userId: $target)", target: Target::User(U::New), hidden: NOT_FOUND, fixture: Fixture::User },
    Probe { field: "signUp", args: "(input: { tenantId: $tenant, customerTitle: \"Probe\", email: $uniqueEmail, password: \"correct horse battery\" })", target: Target::Own, hidden: Answer::Shown, fixture: Fixture::None },
    Probe { field: "validateEmail", args: "(token: \"bogus\")", target: Target::Own, hidden: Answer::BadInput("token"), fixture: Fixture::None },
    Probe { field: "requestNewLink", args: "(token: \"bogus\")", target: Target::Own, hidden: Answer::BadInput("token"), fixture: Fixture::None },
    Probe { field: "requestPasswordReset", args: "(tenantId: $tenant, email: \"nobody@acme.test\")", target: Target::Own, hidden: Answer::Shown, fixture: Fixture::None },
    Probe { field: "resetPassword", args: "(token: \"bogus\", password: \"correct horse battery\")", target: Target::Own, hidden: Answer::BadInput("token"), fixture: Fixture::None },
    Probe { field: "login", args: "(tenantId: $tenant, email: \"plain@acme.test\", password: \"correct horse battery\")", target: Target::Own, hidden: Answer::Shown, fixture: Fixture::None },
    Probe { field: "activateAccount", args: "(token: \"bogus\", password: \"correct horse battery\")", target: Target::Own, hidden: Answer::BadInput("token"), fixture: Fixture::None },
    Probe { field: "updateTenant", args: "(input: { requireApproval: false })", target: Target::Own, hidden: NOT_FOUND, fixture: Fixture::None },
    Probe { field: "retryJob", args: "(id: $target)", target: Target::Tenant, hidden: NOT_FOUND, fixture: Fixture::KilledJob },
    Probe { field: "cancelJob", args: "(id: $target)", target: Target::Tenant, hidden: NOT_FOUND, fixture: Fixture::WaitingJob },
    Probe { field: "retryJobs", args: "(filter: { recipient: \"deep@acme.test\" })", target: Target::Own, hidden: NOT_FOUND, fixture: Fixture::KilledJob },
    Probe { field: "pauseJobKind", args: "(kind: PASSWORD_RESET)", target: Target::Own, hidden: NOT_FOUND, fixture: Fixture::Unpaused },
    Probe { field: "resumeJobKind", args: "(kind: PASSWORD_RESET)", target: Target::Own, hidden: NOT_FOUND, fixture: Fixture::Paused },
    Probe { field: "createApiKey", args: "(name: \"probe\", scopes: [JOBS_READ])", target: Target::Own, hidden: NOT_FOUND, fixture: Fixture::None },
    Probe { field: "revokeApiKey", args: "(id: $target)", target: Target::Tenant, hidden: NOT_FOUND, fixture: Fixture::Key },
    Probe { field: "createWebhookEndpoint", args: "(url: \"https://93.184.216.34/hook\", events: [JOB_KILLED])", target: Target::Own, hidden: NOT_FOUND, fixture: Fixture::EndpointRoom },
    Probe { field: "updateWebhookEndpoint", args: "(id: $target, url: \"https://93.184.216.34/other\", events: [JOB_KILLED])", target: Target::Tenant, hidden: NOT_FOUND, fixture: Fixture::Endpoint },
    Probe { field: "deleteWebhookEndpoint", args: "(id: $target)", target: Target::Tenant, hidden: NOT_FOUND, fixture: Fixture::Endpoint },
    Probe { field: "redeliverWebhook", args: "(deliveryId: $target)", target: Target::Tenant, hidden: NOT_FOUND, fixture: Fixture::Delivery },
    // Ends the caller's session: runs last.
    Probe { field: "logout", args: "", target: Target::Own, hidden: NOT_FOUND, fixture: Fixture::None },
];

/// Attempts to gain a power, each with its documented answer.
#[rustfmt::skip]
const ESCALATIONS: &[(&str, Who, &str, Answer)] = &[
    ("a key short of one scope creates a tenant administrator", Who::Key(&[CR, CW, UR, UW, JR, AKW]),
     "createUser(input: { role: TENANT_ADMIN, email: $uniqueEmail, activation: DISPLAY_ACTIVATION_LINK }) { user { id } }", Answer::Refused("FORBIDDEN")),
    ("a key grants a scope it lacks", Who::Key(&[AKW, JR]),
     "createApiKey(name: \"more\", scopes: [USERS_WRITE]) { secret }", Answer::Refused("FORBIDDEN")),
    ("a key with a member's scopes makes an administrator", Who::Key(MEMBER),
     "assignCustomerAdministrator(customerId: $a1a, email: \"deep@acme.test\") { customer { id } }", Answer::Refused("FORBIDDEN")),
    ("C's administrator suspends the tenant administrator", Who::AdminC,
     "setUserStatus(id: $tenantAdmin, status: SUSPENDED) { user { id } }", NOT_FOUND),
    ("C's administrator creates a tenant administrator", Who::AdminC,
     "createUser(input: { role: TENANT_ADMIN, email: $uniqueEmail, activation: DISPLAY_ACTIVATION_LINK }) { user { id } }", Answer::Refused("FORBIDDEN")),
    ("C's administrator takes the address of a user of C who administers B", Who::AdminC,
     "updateUser(id: $double, input: { email: $uniqueEmail }) { user { id } }", Answer::Refused("FORBIDDEN")),
    ("C's administrator suspends a user of C who administers B", Who::AdminC,
     "setUserStatus(id: $double, status: SUSPENDED) { user { id } }", Answer::Refused("FORBIDDEN")),
    ("C's administrator re-invites a user of C who administers B", Who::AdminC,
     "resendActivation(id: $double, method: DISPLAY_ACTIVATION_LINK) { activationLink }", Answer::Refused("FORBIDDEN")),
    ("C's administrator deletes a user of C who administers B", Who::AdminC,
     "deleteUser(id: $double) { deletedUserId }", Answer::Refused("FORBIDDEN")),
    ("C's administrator deletes the customer of a user who administers B", Who::AdminC,
     "deleteCustomer(id: $a1a, cascade: true) { deletedCustomerIds }", Answer::Refused("FORBIDDEN")),
    ("C's administrator moves C itself", Who::AdminC,
     "moveCustomer(id: $a1) { customer { id } }", Answer::Refused("FORBIDDEN")),
    ("C's administrator deletes C itself", Who::AdminC,
     "deleteCustomer(id: $a1) { deletedCustomerIds }", Answer::Refused("FORBIDDEN")),
    ("C's administrator makes the sibling's administrator its own", Who::AdminC,
     "assignCustomerAdministrator(customerId: $a1, email: \"a2admin@acme.test\") { customer { id } }", Answer::BadInput("email")),
    ("C's administrator grants itself a key", Who::AdminC,
     "createApiKey(name: \"mine\", scopes: [CUSTOMERS_READ]) { secret }", Answer::Refused("FORBIDDEN")),
    ("a plain user changes its own address", Who::Plain,
     "updateUser(id: $plain, input: { email: $uniqueEmail }) { user { id } }", Answer::Refused("FORBIDDEN")),
    ("a plain user sets its own status", Who::Plain,
     "setUserStatus(id: $plain, status: ACTIVE) { user { id } }", Answer::Refused("FORBIDDEN")),
    ("a plain user administers its own customer", Who::Plain,
     "assignCustomerAdministrator(customerId: $a1, email: \"plain@acme.test\") { customer { id } }", Answer::Refused("FORBIDDEN")),
    ("another tenant's administrator makes itself C's administrator", Who::OtherTenant,
     "assignCustomerAdministrator(customerId: $a1, email: \"admin@other.test\") { customer { id } }", NOT_FOUND),
    ("a plain user changes its own name and phone", Who::Plain,
     "updateUser(id: $plain, input: { firstName: \"Pat\", phone: \"+1 555 0101\" }) { user { id } }", Answer::Shown),
];

// ---------------------------------------------------------------------------
// The model: who reaches what in the world the tests build.

/// The kinds of caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    Anonymous,
    /// The session a user held before it was suspended.
    Suspended,
    /// A key lacking the scopes the row needs (holding all others).
    NarrowKey,
    FullKey,
    TenantAdmin,
    OtherTenant,
    /// The administrator of A1 ("C").
    AdminC,
    /// The administrator of A2, C's sibling.
    AdminSibling,
    /// A user of A1 who administers nothing.
    Plain,
    /// A key with these scopes (escalations).
    Key(&'static [Scope]),
}

const CALLERS: [Who; 9] = [
    Who::Anonymous,
    Who::Suspended,
    Who::NarrowKey,
    Who::FullKey,
    Who::TenantAdmin,
    Who::OtherTenant,
    Who::AdminC,
    Who::AdminSibling,
    Who::Plain,
];

/// Acme's customers that probes name (A > A1 > A1a, A > A2; B is another
/// root); `A1New` is a fresh child of A1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cust {
    A,
    A1,
    A1a,
    A1New,
    A2,
}

impl Cust {
    fn parent(self) -> Option<Cust> {
        match self {
            Cust::A => None,
            Cust::A1 | Cust::A2 => Some(Cust::A),
            Cust::A1a | Cust::A1New => Some(Cust::A1),
        }
    }

    fn within(self, root: Cust) -> bool {
        self == root || self.parent().is_some_and(|p| p.within(root))
    }
}

/// Acme's users that probes name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum U {
    Plain,
    A1Admin,
    Deep,
    /// A fresh user of A1a.
    New,
}

impl U {
    fn customer(self) -> Cust {
        match self {
            U::Plain | U::A1Admin => Cust::A1,
            U::Deep | U::New => Cust::A1a,
        }
    }
}

/// What a probe reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    /// The caller's own tenant (lists, the viewer, settings).
    Own,
    /// Something of Acme held by no customer (a key, a job, the tenant).
    Tenant,
    Customer(Cust),
    User(U),
    /// An entitlement held by the customer.
    Entitlement(Cust),
    /// The user's invitation.
    Invitation(U),
}

/// The answers a caller may get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    /// Data (for a `Shows` rule, the content the world holds).
    Shown,
    /// No error, nothing to see: null, [] or 0, as for what does not exist.
    Withheld,
    Refused(&'static str),
    /// BAD_USER_INPUT on this field.
    BadInput(&'static str),
}

const UNAUTHENTICATED: Answer = Answer::Refused("UNAUTHENTICATED");
const FORBIDDEN: Answer = Answer::Refused("FORBIDDEN");

mod model {
    use super::*;

    pub fn scopes(who: Who, narrow: &[Scope]) -> Vec<Scope> {
        match who {
            Who::Anonymous | Who::Suspended => Vec::new(),
            Who::NarrowKey => narrow.to_vec(),
            Who::Key(scopes) => scopes.to_vec(),
            Who::FullKey | Who::TenantAdmin | Who::OtherTenant => Scope::ALL.to_vec(),
            Who::AdminC | Who::AdminSibling => ADMINISTRATOR.to_vec(),
            Who::Plain => MEMBER.to_vec(),
        }
    }

    pub fn lacks(who: Who, narrow: &[Scope], needed: &[Scope]) -> bool {
        let held = scopes(who, narrow);
        needed.iter().any(|s| !held.contains(s))
    }

    fn tenant_wide(who: Who) -> bool {
        matches!(
            who,
            Who::NarrowKey | Who::FullKey | Who::Key(_) | Who::TenantAdmin
        )
    }

    fn in_tenant(who: Who) -> bool {
        !matches!(who, Who::Anonymous | Who::Suspended | Who::OtherTenant)
    }

    /// The customer a customer user was given to administer.
    fn given(who: Who) -> Option<Cust> {
        match who {
            Who::AdminC => Some(Cust::A1),
            Who::AdminSibling => Some(Cust::A2),
            _ => None,
        }
    }

    fn own(who: Who) -> Option<Cust> {
        match who {
            Who::AdminC | Who::Plain => Some(Cust::A1),
            Who::AdminSibling => Some(Cust::A2),
            _ => None,
        }
    }

    pub fn manages(who: Who, c: Cust) -> bool {
        tenant_wide(who) || given(who).is_some_and(|root| c.within(root))
    }

    pub fn sees(who: Who, c: Cust) -> bool {
        manages(who, c) || (in_tenant(who) && own(who) == Some(c))
    }

    fn is_self(who: Who, u: U) -> bool {
        matches!((who, u), (Who::AdminC, U::A1Admin) | (Who::Plain, U::Plain))
    }

    pub fn manages_user(who: Who, u: U) -> bool {
        manages(who, u.customer())
    }

    pub fn visible(who: Who, target: Target) -> bool {
        match target {
            Target::Own => true,
            Target::Tenant => in_tenant(who),
            Target::Customer(c) | Target::Entitlement(c) => sees(who, c),
            Target::User(u) => is_self(who, u) || manages_user(who, u),
            Target::Invitation(u) => visible(who, Target::User(u)),
        }
    }

    pub fn relation(who: Who, sight: Sight, target: Target) -> bool {
        match (sight, target) {
            (Sight::Session, _) => matches!(
                who,
                Who::TenantAdmin | Who::OtherTenant | Who::AdminC | Who::AdminSibling | Who::Plain
            ),
            (Sight::Key, _) => matches!(who, Who::NarrowKey | Who::FullKey | Who::Key(_)),
            (Sight::Sees, Target::Customer(c) | Target::Entitlement(c)) => sees(who, c),
            (Sight::Sees, Target::User(u)) => sees(who, u.customer()),
            (Sight::Manages, Target::Customer(c)) => manages(who, c),
            (Sight::Manages, Target::User(u) | Target::Invitation(u)) => {
                is_self(who, u) || manages_user(who, u)
            }
            (Sight::Above, Target::Customer(c)) => c.parent().is_some_and(|p| manages(who, p)),
            (sight, target) => panic!("no sight {sight:?} of {target:?} in the model"),
        }
    }

    /// The scopes a rule names.
    pub fn rule_scopes(rule: Rule) -> &'static [Scope] {
        match rule {
            Rule::Scopes(s)
            | Rule::Shows(s, _)
            | Rule::SelfOrManager(s)
            | Rule::ChangeCustomer(s)
            | Rule::Restructure(s)
            | Rule::ManageUser(s)
            | Rule::TenantWideScopes(s) => s,
            Rule::EveryScope => &Scope::ALL,
            Rule::Public
            | Rule::Authenticated
            | Rule::Field
            | Rule::Payload
            | Rule::Auditors
            | Rule::AuditorsTenantWide
            | Rule::TenantWide => &[],
        }
    }

    /// The narrow key of a row: every scope but those it needs; a key of
    /// JOBS_READ alone where it needs none.
    pub fn narrow(rule: Rule, route: &[Scope]) -> Vec<Scope> {
        let needed = match (rule, rule_scopes(rule)) {
            (Rule::EveryScope, _) => &[JW][..],
            (_, []) => route,
            (_, scopes) => scopes,
        };
        if needed.is_empty() {
            return vec![JR];
        }
        Scope::ALL
            .into_iter()
            .filter(|s| !needed.contains(s))
            .collect()
    }

    pub fn read(who: Who, narrow: &[Scope], rule: Rule, route: &[Scope], target: Target) -> Answer {
        if matches!(who, Who::Anonymous | Who::Suspended) {
            return UNAUTHENTICATED;
        }
        let needed: Vec<Scope> = route.iter().chain(rule_scopes(rule)).copied().collect();
        if lacks(who, narrow, &needed) {
            return FORBIDDEN;
        }
        if matches!(rule, Rule::TenantWide) {
            return if tenant_wide(who) || who == Who::OtherTenant {
                Answer::Shown
            } else {
                FORBIDDEN
            };
        }
        if matches!(rule, Rule::Auditors | Rule::AuditorsTenantWide) {
            // Every scope in its own tenant, or a customer administrator.
            let reads_all = matches!(who, Who::FullKey | Who::TenantAdmin | Who::OtherTenant);
            return if !reads_all && given(who).is_none() {
                FORBIDDEN
            } else if !reads_all && matches!(rule, Rule::AuditorsTenantWide) {
                Answer::Withheld
            } else {
                Answer::Shown
            };
        }
        if !visible(who, target) {
            return Answer::Withheld;
        }
        match rule {
            Rule::Shows(_, sight) if !relation(who, sight, target) => Answer::Withheld,
            Rule::SelfOrManager(_) if !relation(who, Sight::Manages, target) => FORBIDDEN,
            _ => Answer::Shown,
        }
    }

    pub fn mutation(who: Who, narrow: &[Scope], rule: Rule, probe: &Probe) -> Answer {
        // A secret that names no live credential is refused outright.
        if who == Who::Suspended {
            return UNAUTHENTICATED;
        }
        if let Rule::Public = rule {
            return probe.hidden;
        }
        if who == Who::Anonymous {
            return UNAUTHENTICATED;
        }
        if lacks(who, narrow, rule_scopes(rule)) {
            return FORBIDDEN;
        }
        if matches!(rule, Rule::TenantWideScopes(_))
            && !(tenant_wide(who) || who == Who::OtherTenant)
        {
            return FORBIDDEN;
        }
        if !visible(who, probe.target) {
            return probe.hidden;
        }
        let customer = match probe.target {
            Target::Customer(c) | Target::Entitlement(c) => Some(c),
            _ => None,
        };
        match (rule, probe.target) {
            (Rule::ChangeCustomer(_) | Rule::Restructure(_), _)
                if !manages(who, customer.expect("a customer target")) =>
            {
                FORBIDDEN
            }
            (Rule::Restructure(_), _) if given(who) == customer => FORBIDDEN,
            (Rule::ManageUser(_), Target::User(u)) if !manages_user(who, u) => FORBIDDEN,
            (Rule::EveryScope, _) if !(tenant_wide(who) || who == Who::OtherTenant) => FORBIDDEN,
            _ => Answer::Shown,
        }
    }
}

// ---------------------------------------------------------------------------
// The schema.

struct FieldInfo {
    /// The named type inside lists and non-nulls.
    base: String,
    required_args: bool,
}

struct Schema {
    /// Every field of every object type, as "Type.field", in schema order.
    fields: BTreeMap<String, FieldInfo>,
    /// Object and interface type names.
    composite: BTreeSet<String>,
}

fn schema() -> Schema {
    let document = canopy_tests::schema_document();
    let mut schema = Schema {
        fields: BTreeMap::new(),
        composite: BTreeSet::new(),
    };
    for definition in &document.definitions {
        let TypeSystemDefinition::Type(definition) = definition else {
            continue;
        };
        let name = definition.node.name.node.to_string();
        let fields = match &definition.node.kind {
            TypeKind::Object(object) => &object.fields,
            TypeKind::Interface(_) => {
                schema.composite.insert(name);
                continue;
            }
            _ => continue,
        };
        schema.composite.insert(name.clone());
        for field in fields {
            let field = &field.node;
            let required_args = field
                .arguments
                .iter()
                .any(|a| !a.node.ty.node.nullable && a.node.default_value.is_none());
            schema.fields.insert(
                format!("{name}.{}", field.name.node),
                FieldInfo {
                    base: canopy_tests::base_type(&field.ty.node),
                    required_args,
                },
            );
        }
    }
    schema
}

impl Schema {
    /// What to select below a field of this type.
    fn selection(&self, field: &str) -> &'static str {
        let base = &self.fields[field].base;
        if base.ends_with("Connection") {
            " { totalCount }"
        } else if self.composite.contains(base) {
            " { __typename }"
        } else {
            ""
        }
    }

    /// A mutation's payload, every field selected, and the fields of the
    /// types only payloads hold (a batch's results and their errors) too;
    /// `types` collects the payload types selected.
    fn payload_selection(
        &self,
        ty: &str,
        rules: &BTreeMap<String, Rule>,
        types: &mut BTreeSet<String>,
    ) -> String {
        types.insert(ty.to_owned());
        let prefix = format!("{ty}.");
        let only_in_payloads = |base: &str| {
            let prefix = format!("{base}.");
            let mut fields = rules.iter().filter(|(name, _)| name.starts_with(&prefix));
            fields.all(|(_, rule)| matches!(rule, Payload))
        };
        let fields: Vec<String> = self
            .fields
            .iter()
            .filter(|(name, info)| name.starts_with(&prefix) && !info.required_args)
            .map(|(name, info)| {
                let field = &name[prefix.len()..];
                if self.composite.contains(&info.base) && only_in_payloads(&info.base) {
                    format!(
                        "{field}{}",
                        self.payload_selection(&info.base, rules, types)
                    )
                } else {
                    format!("{field}{}", self.selection(name))
                }
            })
            .collect();
        format!(" {{ {} }}", fields.join(" "))
    }
}

/// The matrix as "Type.field" → rule; duplicates are reported.
fn matrix() -> (BTreeMap<String, Rule>, Vec<String>) {
    let mut rules = BTreeMap::new();
    let mut duplicates = Vec::new();
    for (ty, fields, rule) in MATRIX {
        for field in fields.split_whitespace() {
            let name = format!("{ty}.{field}");
            if rules.insert(name.clone(), *rule).is_some() {
                duplicates.push(name);
            }
        }
    }
    (rules, duplicates)
}

#[test]
fn the_matrix_has_one_entry_for_every_field_of_the_schema() {
    let schema = schema();
    let (rules, duplicates) = matrix();
    let missing: Vec<&String> = schema
        .fields
        .keys()
        .filter(|f| !rules.contains_key(*f))
        .collect();
    let stale: Vec<&String> = rules
        .keys()
        .filter(|f| !schema.fields.contains_key(*f))
        .collect();
    assert!(
        missing.is_empty() && stale.is_empty() && duplicates.is_empty(),
        "the authorization matrix (tests/tests/e2e/matrix.rs) and schema.graphql disagree:\n\
         fields without an entry: {missing:?}\nentries naming no field: {stale:?}\n\
         fields with two entries: {duplicates:?}"
    );
    // Every type read through a route has one, every mutation a probe.
    for name in rules.keys() {
        let (ty, field) = name.split_once('.').unwrap();
        match (ty, rules[name]) {
            (_, Payload) => {}
            ("Query", _) => {}
            ("Mutation", _) => assert!(
                MUTATION_PROBES.iter().any(|p| p.field == field),
                "{name} has no probe in MUTATION_PROBES"
            ),
            _ => assert!(
                ROUTES.iter().any(|r| r.ty == ty),
                "{ty} has no route in ROUTES"
            ),
        }
    }
}

// ---------------------------------------------------------------------------
// The world.

struct World {
    app: TestApp,
    /// Acme's ids and names, as GraphQL variables.
    vars: Map<String, Value>,
    /// Every id of Acme's, which another tenant's caller must never see.
    acme_ids: Vec<String>,
    secrets: HashMap<&'static str, String>,
    keys: HashMap<Vec<Scope>, String>,
    counter: u32,
}

impl World {
    async fn build(pool: PgPool) -> World {
        let app = TestApp::spawn(pool).await;
        let a = app.customer("A", None).await;
        let a1 = app.customer("A1", Some(&a)).await;
        let a1a = app.customer("A1a", Some(&a1)).await;
        let a2 = app.customer("A2", Some(&a)).await;
        let b = app.customer("B", None).await;
        let (a1admin, c) = app.member(&a1, "a1admin@acme.test").await;
        let (a2admin, sibling) = app.member(&a2, "a2admin@acme.test").await;
        app.administer(&a1, "a1admin@acme.test").await;
        app.administer(&a2, "a2admin@acme.test").await;
        let (plain, plain_session) = app.member(&a1, "plain@acme.test").await;
        // A user of A1a invited by email: the job.
        let deep = app
            .data(
                "mutation($c: ID!) { createUser(input: { customerId: $c, email: \"deep@acme.test\",
                   activation: SEND_ACTIVATION_EMAIL }) { user { id } } }",
                json!({ "c": a1a }),
            )
            .await;
        let deep = string_at(&deep, &["createUser", "user", "id"]);
        // Partners' own ids of A1a and of the deep user.
        for (id, table) in [(&a1a, "customers"), (&deep, "users")] {
            sqlx::query(&format!(
                "UPDATE {table} SET external_id = 'ext-' || id WHERE id = $1"
            ))
            .bind(global_id_number(id))
            .execute(&app.pool)
            .await
            .unwrap();
        }
        // A user of A1a who also administers B, beyond C's reach.
        let (double, _) = app.member(&a1a, "double@acme.test").await;
        app.administer(&b, "double@acme.test").await;
        // A session kept from before its user was suspended.
        let (gone, suspended) = app.member(&a1, "gone@acme.test").await;
        app.data(
            "mutation($id: ID!) { setUserStatus(id: $id, status: SUSPENDED) { user { id } } }",
            json!({ "id": gone }),
        )
        .await;
        let mut entitlements = Vec::new();
        for (customer, reference) in [(&a1a, "ent-a1a"), (&a1, "ent-a1")] {
            let data = app
                .data(
                    "mutation($c: ID!, $r: String!) { attachEntitlement(customerId: $c,
                       kind: AUTHORIZATION_CODE, reference: $r) { id } }",
                    json!({ "c": customer, "r": reference }),
                )
                .await;
            entitlements.push(string_at(&data, &["attachEntitlement", "id"]));
        }
        let data = app
            .data(
                "query($a1: ID!) { customer(id: $a1) { number }
                   viewer { apiKey { id } }
                   jobQueue { jobs(kind: INVITATION, first: 1) { nodes { id recipient } } } }",
                json!({ "a1": a1 }),
            )
            .await;
        let job = &data["jobQueue"]["jobs"]["nodes"][0];
        assert_eq!(job["recipient"], "deep@acme.test");
        let job = string_at(job, &["id"]);
        // An operator's marks, for the fields that show them: the job was
        // cancelled, and a kind is paused.
        app.data(
            "mutation($job: ID!) { cancelJob(id: $job) { id } pauseJobKind(kind: ACCOUNT_NOTICE) { kind } }",
            json!({ "job": job }),
        )
        .await;
        let key = string_at(&data, &["viewer", "apiKey", "id"]);
        let a1_number = string_at(&data, &["customer", "number"]);
        let tenant_admin = app.activate_admin().await;

        // Another tenant with a customer, a user and a job of its own.
        let other = app.create_tenant("Other").await;
        let other_admin = app.activate(&link_token(&other.activation_link)).await;
        let elsewhere = app
            .data_as(
                &other.api_key,
                "mutation { createCustomer(input: { title: \"Elsewhere\" }) { customer { id } } }",
                json!({}),
            )
            .await;
        app.data_as(
            &other.api_key,
            "mutation($c: ID!) { createUser(input: { customerId: $c, email: \"someone@other.test\",
               activation: SEND_ACTIVATION_EMAIL }) { user { id } } }",
            json!({ "c": string_at(&elsewhere, &["createCustomer", "customer", "id"]) }),
        )
        .await;
        app.data_as(
            &other.api_key,
            "mutation { pauseJobKind(kind: ACCOUNT_NOTICE) { kind } }",
            json!({}),
        )
        .await;
        // A worker's heartbeat, for the queue's list of workers.
        sqlx::query("INSERT INTO worker_heartbeats (worker_id) VALUES ('1234-matrix')")
            .execute(&app.pool)
            .await
            .unwrap();
        // A webhook endpoint with a delivery of an event.
        app.data(
            "mutation { createWebhookEndpoint(url: \"https://93.184.216.34/world\",
               events: [JOB_KILLED]) { endpoint { id } } }",
            json!({}),
        )
        .await;
        sqlx::query("INSERT INTO events (tenant_id, type, data) VALUES (1, 'job.killed', '{}')")
            .execute(&app.pool)
            .await
            .unwrap();

        let tenant = app.tenant.tenant_id.clone();
        let full_key = app.tenant.api_key.clone();
        let ids = [
            ("a", a),
            ("a1", a1),
            ("a1a", a1a),
            ("a2", a2),
            ("b", b),
            ("plain", plain),
            ("deep", deep),
            ("a1admin", a1admin),
            ("a2admin", a2admin),
            ("double", double),
            ("gone", gone),
            ("tenantAdmin", app.tenant.admin_user_id.clone()),
            ("tenant", tenant),
            ("entitlement", entitlements[0].clone()),
            ("entitlementOfA1", entitlements[1].clone()),
            ("job", job),
            ("key", key),
        ];
        let acme_ids = ids.iter().map(|(_, id)| id.clone()).collect();
        let mut vars: Map<String, Value> = ids
            .into_iter()
            .map(|(name, id)| (name.to_owned(), json!(id)))
            .collect();
        vars.insert("a1Number".into(), json!(a1_number));
        for name in ["a1a", "deep"] {
            let external = format!("ext-{}", global_id_number(vars[name].as_str().unwrap()));
            vars.insert(format!("{name}External"), json!(external));
        }
        World {
            app,
            vars,
            acme_ids,
            secrets: HashMap::from([
                ("suspended", suspended),
                ("full", full_key),
                ("tenantAdmin", tenant_admin),
                ("other", other_admin),
                ("c", c),
                ("sibling", sibling),
                ("plain", plain_session),
            ]),
            keys: HashMap::new(),
            counter: 0,
        }
    }

    /// The bearer secret of `who` (`narrow`: the scopes of a narrow key).
    async fn secret(&mut self, who: Who, narrow: &[Scope]) -> Option<String> {
        let name = match who {
            Who::Anonymous => return None,
            Who::NarrowKey => return Some(self.key(narrow).await),
            Who::Key(scopes) => return Some(self.key(scopes).await),
            Who::Suspended => "suspended",
            Who::FullKey => "full",
            Who::TenantAdmin => "tenantAdmin",
            Who::OtherTenant => "other",
            Who::AdminC => "c",
            Who::AdminSibling => "sibling",
            Who::Plain => "plain",
        };
        Some(self.secrets[name].clone())
    }

    async fn key(&mut self, scopes: &[Scope]) -> String {
        let mut scopes = scopes.to_vec();
        scopes.sort();
        if !self.keys.contains_key(&scopes) {
            let names: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
            let secret = self.app.key_with(&names).await;
            self.keys.insert(scopes.clone(), secret);
        }
        self.keys[&scopes].clone()
    }

    /// Runs `body` (a selection of the root type) as `who`, declaring the
    /// variables it uses; fresh `$unique`, `$uniqueEmail` each time.
    async fn run(&mut self, who: Who, narrow: &[Scope], operation: &str, body: &str) -> Value {
        self.counter += 1;
        let mut vars = self.vars.clone();
        vars.insert("unique".into(), json!(format!("probe-{}", self.counter)));
        vars.insert(
            "uniqueEmail".into(),
            json!(format!("probe-{}@acme.test", self.counter)),
        );
        let declared = declarations(body, &vars);
        let query = format!("{operation}{declared} {{ {body} }}");
        let secret = self.secret(who, narrow).await;
        let answer = self
            .app
            .post(secret.as_deref(), &query, Value::Object(vars))
            .await;
        if who == Who::OtherTenant {
            let text = answer.to_string();
            for id in &self.acme_ids {
                assert!(
                    !text.contains(&format!("\"{id}\"")),
                    "another tenant's caller read Acme's {id}: {query} -> {text}"
                );
            }
            assert!(
                !text.contains("@acme.test"),
                "another tenant's caller read an Acme address: {query} -> {text}"
            );
        }
        answer
    }

    /// Creates the fixture's fresh object; binds `$target` (and
    /// `$targetEmail`).
    async fn fixture(&mut self, fixture: Fixture) {
        self.counter += 1;
        let n = self.counter;
        let app = &self.app;
        let a1 = self.vars["a1"].clone();
        let a1a = self.vars["a1a"].clone();
        let email = format!("fresh-{n}@acme.test");
        let create_user = "mutation($c: ID!, $e: String!) { createUser(input: { customerId: $c,
            email: $e, activation: DISPLAY_ACTIVATION_LINK }) { user { id } } }";
        let target = match fixture {
            Fixture::None => return,
            Fixture::Unpaused | Fixture::Paused => {
                let statement = if fixture == Fixture::Paused {
                    "INSERT INTO job_kind_pauses (tenant_id, kind)
                     SELECT id, 'PASSWORD_RESET' FROM tenants ON CONFLICT DO NOTHING"
                } else {
                    "DELETE FROM job_kind_pauses WHERE kind = 'PASSWORD_RESET'"
                };
                sqlx::query(statement).execute(&app.pool).await.unwrap();
                return;
            }
            Fixture::Customer => {
                let data = app
                    .data(
                        "mutation($p: ID!) { createCustomer(input: { title: \"Fresh\", parentId: $p }) { customer { id } } }",
                        json!({ "p": a1 }),
                    )
                    .await;
                string_at(&data, &["createCustomer", "customer", "id"])
            }
            Fixture::User | Fixture::PendingApproval | Fixture::Administrator => {
                let data = app.data(create_user, json!({ "c": a1a, "e": email })).await;
                let id = string_at(&data, &["createUser", "user", "id"]);
                if fixture == Fixture::PendingApproval {
                    sqlx::query("UPDATE users SET status = 'PENDING_APPROVAL' WHERE id = $1")
                        .bind(global_id_number(&id))
                        .execute(&app.pool)
                        .await
                        .unwrap();
                }
                if fixture == Fixture::Administrator {
                    app.administer(a1a.as_str().unwrap(), &email).await;
                }
                id
            }
            Fixture::Entitlement => {
                let data = app
                    .data(
                        "mutation($c: ID!, $r: String!) { attachEntitlement(customerId: $c, kind: ACTIVATION_KEY, reference: $r) { id } }",
                        json!({ "c": a1a, "r": format!("fresh-{n}") }),
                    )
                    .await;
                string_at(&data, &["attachEntitlement", "id"])
            }
            Fixture::KilledJob | Fixture::WaitingJob => {
                let job = self.vars["job"].as_str().unwrap().to_owned();
                let state = if fixture == Fixture::KilledJob {
                    "KILLED"
                } else {
                    "FAILED"
                };
                sqlx::query("UPDATE jobs SET state = $2 WHERE id = $1")
                    .bind(global_id_number(&job))
                    .bind(state)
                    .execute(&app.pool)
                    .await
                    .unwrap();
                job
            }
            Fixture::Key => {
                let data = app
                    .data(
                        "mutation { createApiKey(name: \"fresh\", scopes: [JOBS_READ]) { apiKey { id } } }",
                        json!({}),
                    )
                    .await;
                string_at(&data, &["createApiKey", "apiKey", "id"])
            }
            Fixture::EndpointRoom | Fixture::Endpoint | Fixture::Delivery => {
                // A tenant has at most 20: keep the world's only.
                sqlx::query(
                    "DELETE FROM webhook_endpoints WHERE url <> 'https://93.184.216.34/world'",
                )
                .execute(&app.pool)
                .await
                .unwrap();
                if fixture == Fixture::EndpointRoom {
                    return;
                }
                let data = app
                    .data(
                        "mutation { createWebhookEndpoint(url: \"https://93.184.216.34/hook\",
                           events: [JOB_KILLED]) { endpoint { id } } }",
                        json!({}),
                    )
                    .await;
                let endpoint = string_at(&data, &["createWebhookEndpoint", "endpoint", "id"]);
                if fixture == Fixture::Endpoint {
                    endpoint
                } else {
                    let number = global_id_number(&endpoint);
                    let delivery: i64 = sqlx::query_scalar(
                        "INSERT INTO webhook_deliveries (tenant_id, endpoint_id, event_id)
                         SELECT tenant_id, $1, id FROM events WHERE type = 'job.killed'
                         ORDER BY id LIMIT 1 RETURNING id",
                    )
                    .bind(number)
                    .fetch_one(&app.pool)
                    .await
                    .unwrap();
                    canopy_core::id::global("WebhookDelivery", delivery)
                }
            }
        };
        self.vars.insert("target".into(), json!(target));
        self.vars.insert("targetEmail".into(), json!(email));
    }
}

/// A fresh object a mutation acts on, made by the tenant's key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fixture {
    None,
    /// A child of A1.
    Customer,
    /// A user of A1a, invited.
    User,
    /// A user of A1a waiting for approval.
    PendingApproval,
    /// A user of A1a who administers A1a.
    Administrator,
    /// An entitlement of A1a.
    Entitlement,
    /// The world's job, made KILLED.
    KilledJob,
    /// The world's job, FAILED (not yet running: cancellable).
    WaitingJob,
    /// No tenant has PASSWORD_RESET paused.
    Unpaused,
    /// Every tenant has PASSWORD_RESET paused.
    Paused,
    /// An API key.
    Key,
    /// Room for a webhook endpoint: only the world's remains.
    EndpointRoom,
    /// A webhook endpoint for JOB_KILLED.
    Endpoint,
    /// A delivery of the world's killed job to a fresh endpoint.
    Delivery,
}

/// `($x: ID!, …)` for the variables `body` uses.
fn declarations(body: &str, vars: &Map<String, Value>) -> String {
    let mut used = BTreeSet::new();
    for (i, _) in body.match_indices('$') {
        let name: String = body[i + 1..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        assert!(vars.contains_key(&name), "no variable ${name} for {body}");
        used.insert(name);
    }
    if used.is_empty() {
        return String::new();
    }
    let declared: Vec<String> = used
        .into_iter()
        .map(|name| {
            let ty = match name.as_str() {
                "a1Number" | "unique" | "uniqueEmail" | "targetEmail" => "String!",
                _ => "ID!",
            };
            format!("${name}: {ty}")
        })
        .collect();
    format!("({})", declared.join(", "))
}

/// The value under the alias `probe`, if the answer reaches it.
fn probe(value: &Value) -> Option<&Value> {
    match value {
        Value::Object(map) => map.get("probe").or_else(|| map.values().find_map(probe)),
        Value::Array(items) => items.iter().find_map(probe),
        _ => None,
    }
}

fn empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(items) => items.is_empty(),
        Value::Number(n) => n.as_i64() == Some(0),
        Value::Object(map) => map.get("totalCount").is_some_and(empty),
        _ => false,
    }
}

/// How much a shown value must hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Content {
    /// Anything, null included: the object around it was reached.
    Any,
    /// Not null.
    Present,
    /// Not null, [] or 0.
    NonEmpty,
}

/// Whether `answer` is what `expected` says.
fn matches(answer: &Value, expected: Answer, content: Content) -> bool {
    let error = &answer["errors"][0]["extensions"];
    let value = probe(&answer["data"]);
    match expected {
        Answer::Refused(code) => error["code"] == code,
        Answer::BadInput(field) => error["code"] == "BAD_USER_INPUT" && error["field"] == field,
        Answer::Shown => {
            answer.get("errors").is_none()
                && value.is_some_and(|v| match content {
                    Content::Any => true,
                    Content::Present => !v.is_null(),
                    Content::NonEmpty => !empty(v),
                })
        }
        Answer::Withheld => answer.get("errors").is_none() && value.is_none_or(empty),
    }
}

// ---------------------------------------------------------------------------
// The tests.

#[tokio::test]
async fn every_field_answers_each_caller_as_the_matrix_says() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let schema = schema();
    let (rules, _) = matrix();
    let mut world = World::build(pool).await;
    let mut failures = Vec::new();
    let mut cases = 0;
    for (name, &rule) in &rules {
        let (ty, field) = name.split_once('.').unwrap();
        if matches!(ty, "Mutation") || matches!(rule, Payload) {
            continue;
        }
        let selected = format!("probe: {field}{}", schema.selection(name));
        let probes: Vec<(String, &[Scope], Target)> = if ty == "Query" {
            let (args, target) = QUERY_PROBES
                .iter()
                .find(|(f, ..)| *f == field)
                .map_or(("", Target::Own), |(_, args, target)| (*args, *target));
            vec![(
                format!("probe: {field}{args}{}", schema.selection(name)),
                &[],
                target,
            )]
        } else {
            ROUTES
                .iter()
                .filter(|r| r.ty == ty)
                .map(|r| (r.query.replace("FIELD", &selected), r.scopes, r.target))
                .collect()
        };
        let mut shown_somewhere = false;
        for (body, route_scopes, target) in probes {
            let narrow = model::narrow(rule, route_scopes);
            // What there is to show: what a tenant-wide caller with that
            // sight gets.
            let content = if let Shows(_, sight) = rule {
                let baseline = if sight == Key {
                    Who::FullKey
                } else {
                    Who::TenantAdmin
                };
                let answer = world.run(baseline, &narrow, "query", &body).await;
                let there = probe(&answer["data"]).is_some_and(|v| !empty(v));
                shown_somewhere |= there;
                if there {
                    Content::NonEmpty
                } else {
                    Content::Any
                }
            } else {
                shown_somewhere = true;
                // A root field is the object it names.
                if ty == "Query" {
                    Content::Present
                } else {
                    Content::Any
                }
            };
            for who in CALLERS {
                cases += 1;
                let expected = model::read(who, &narrow, rule, route_scopes, target);
                let answer = world.run(who, &narrow, "query", &body).await;
                if !matches(&answer, expected, content) {
                    failures.push(format!(
                        "{name} as {who:?}: expected {expected:?} ({content:?}), got {answer}\n    {body}"
                    ));
                }
            }
        }
        if !shown_somewhere {
            failures.push(format!(
                "{name}: no route shows it any content; the world gives it nothing to withhold"
            ));
        }
    }
    eprintln!("matrix reads: {cases} cases");
    assert!(
        failures.is_empty(),
        "{} of {cases} read cases differ from the matrix:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The id of the newest audit entry.
async fn last_audit_entry(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT coalesce(max(id), 0) FROM audit_entries")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// The entries written since `id`: their operation, and whether they name
/// who acted.
async fn audit_entries_after(pool: &PgPool, id: i64) -> Vec<(String, bool)> {
    sqlx::query_as(
        "SELECT operation, (actor_user_id IS NOT NULL OR actor_key_id IS NOT NULL)
         FROM audit_entries WHERE id > $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(pool)
    .await
    .unwrap()
}

/// A snapshot without the audit log (and the counters a sign-up draws
/// from even when it creates nothing).
fn but_the_log(snapshot: &str) -> String {
    snapshot
        .lines()
        .filter(|line| !line.starts_with("audit_entries") && !line.starts_with("tenant_counters"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn every_mutation_answers_each_caller_as_the_matrix_says() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let schema = schema();
    let (rules, _) = matrix();
    let mut world = World::build(pool).await;
    let mut failures = Vec::new();
    let mut cases = 0;
    let mut payloads = BTreeSet::new();

    // Escalations first: the matrix's logout ends the sessions.
    for (what, who, body, expected) in ESCALATIONS {
        cases += 1;
        world.secret(*who, &[]).await; // a key made now changes no snapshot
        let before = world.app.snapshot().await;
        let answer = world
            .run(*who, &[], "mutation", &format!("probe: {body}"))
            .await;
        if !matches(&answer, *expected, Content::Present) {
            failures.push(format!(
                "{what} ({who:?}): expected {expected:?}, got {answer}"
            ));
        }
        if *expected != Answer::Shown && world.app.snapshot().await != before {
            failures.push(format!(
                "{what} ({who:?}): refused, yet it changed something"
            ));
        }
    }

    for probe_row in MUTATION_PROBES {
        let name = format!("Mutation.{}", probe_row.field);
        let rule = rules[&name];
        let returns = &schema.fields[&name].base;
        let mut selected_types = BTreeSet::new();
        let selection = if schema.composite.contains(returns) {
            schema.payload_selection(returns, &rules, &mut selected_types)
        } else {
            String::new()
        };
        let body = format!("probe: {}{}{selection}", probe_row.field, probe_row.args);
        let narrow = model::narrow(rule, &[]);
        for who in CALLERS {
            cases += 1;
            world.fixture(probe_row.fixture).await;
            let expected = model::mutation(who, &narrow, rule, probe_row);
            world.secret(who, &narrow).await; // a key made now changes no snapshot
            let before = world.app.snapshot().await;
            let logged = last_audit_entry(&world.app.pool).await;
            let answer = world.run(who, &narrow, "mutation", &body).await;
            if !matches(&answer, expected, Content::Present) {
                failures.push(format!(
                    "{name} as {who:?}: expected {expected:?}, got {answer}\n    {body}"
                ));
            } else if expected == Answer::Shown {
                payloads.extend(selected_types.iter().cloned());
            }
            let after = world.app.snapshot().await;
            if expected != Answer::Shown && after != before {
                failures.push(format!(
                    "{name} as {who:?}: refused, yet it changed something"
                ));
            }
            // Whatever a mutation changed, it wrote its audit entry, under
            // its own name, naming the caller when one signed in or used a
            // key.
            let entries = audit_entries_after(&world.app.pool, logged).await;
            if expected == Answer::Shown && but_the_log(&after) != but_the_log(&before) {
                let named = entries.iter().any(|(operation, actor)| {
                    operation == probe_row.field && (*actor || matches!(rule, Public))
                });
                if !named {
                    failures.push(format!(
                        "{name} as {who:?}: changed something, but the audit log has {entries:?}"
                    ));
                }
            }
            if let Some((operation, _)) = entries.iter().find(|(op, _)| op != probe_row.field) {
                failures.push(format!("{name} as {who:?}: wrote an entry of {operation}"));
            }
        }
    }

    // Every payload was read in some answer.
    for (name, rule) in &rules {
        let ty = name.split_once('.').unwrap().0;
        if matches!(rule, Payload) && !payloads.contains(ty) {
            failures.push(format!("{name}: no mutation that succeeded returned it"));
        }
    }
    eprintln!("matrix mutations: {cases} cases");
    assert!(
        failures.is_empty(),
        "{} of {cases} mutation cases differ from the matrix:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
