//! Every mutation: it checks the caller's scopes, decodes ids and inputs
//! into an action's command, and shapes the action's answer.

use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};

use super::extensions::Execution;
use super::guards;
use super::throttle::{self, Flow};
use super::types::{
    self, ActivationMethod, ApiKey, AuthPayload, CreateApiKeyPayload, CreateCustomerInput,
    CreateCustomersPayload, CreateUserInput, CreateUserPayload, CreateUsersPayload,
    CreateWebhookEndpointPayload, Customer, CustomerPayload, DeleteCustomerPayload,
    DeleteUserPayload, Entitlement, EntitlementKind, EventType, Job, JobFilter, JobKind,
    JobKindRow, RetryJobsPayload, SignUpInput, SignUpPayload, Tenant, UpdateCustomerInput,
    UpdateTenantInput, UpdateUserInput, UpdateUsersPayload, User, UserPayload, UserStatus,
    UserUpdate, WebhookEndpoint, batch_cost,
};
use crate::AppState;
use crate::actions;
use crate::actions::change::{Origin, Source, Writer};
use crate::auth::Caller;
use crate::auth::Scope;
use crate::error::ApiResult;
use crate::idempotency::Claim;
use crate::ids::{self, NodeKind};

pub struct Mutation;

fn state<'a>(ctx: &Context<'a>) -> &'a AppState {
    ctx.data_unchecked::<AppState>()
}

/// The database as this mutation writes to it: under the mutation's name,
/// for the caller and the client the request came from (its audit entry).
fn writer<'a>(ctx: &Context<'a>) -> Writer<'a> {
    let source = ctx.data_opt::<Source>();
    let origin = Origin::new(
        ctx.field().name(),
        ctx.data_opt::<Caller>(),
        source.and_then(|s| s.client_addr),
        source.map(|s| s.request_id.clone()),
    );
    Writer::new(&state(ctx).pool, origin.claimed(ctx.data_opt::<Claim>()))
}

/// Marks this request's answer as holding a secret (a key, a link, a
/// session) of what `id` names: it is never kept for a repeat.
fn holds_secret_of(ctx: &Context<'_>, id: String) {
    if let Some(execution) = ctx.data_opt::<std::sync::Arc<Execution>>() {
        execution.holds_secret_of(id);
    }
}

fn user_payload(result: ApiResult<canopy_core::store::users::UserRow>) -> ApiResult<UserPayload> {
    result.map(|row| UserPayload { user: User(row) })
}

fn payload(row: canopy_core::store::customers::CustomerRow) -> CustomerPayload {
    CustomerPayload {
        customer: Customer(row),
    }
}

/// Assigns or removes a customer's administrator. Naming a user by address
/// reveals whether it exists, so users are read: USERS_READ as well as
/// CUSTOMERS_WRITE.
async fn set_administrator(
    ctx: &Context<'_>,
    customer_id: &ID,
    email: &str,
    assign: bool,
) -> ApiResult<CustomerPayload> {
    guards::require(ctx, Scope::UsersRead)?;
    let caller = guards::require(ctx, Scope::CustomersWrite)?;
    let customer_id = ids::expect_id(customer_id, "customerId")?;
    let state = state(ctx);
    actions::customers::set_administrator(
        &writer(ctx),
        &state.config,
        caller,
        customer_id,
        email,
        assign,
    )
    .await
    .map(payload)
}

#[Object]
impl Mutation {
    async fn create_customer(
        &self,
        ctx: &Context<'_>,
        input: CreateCustomerInput,
    ) -> ApiResult<CustomerPayload> {
        let caller = guards::require(ctx, Scope::CustomersWrite)?;
        actions::customers::create(&writer(ctx), caller, input.into_command()?)
            .await
            .map(payload)
    }

    /// Creates the customer you know by `externalId`, or, when one exists
    /// (and is in reach), updates it with the fields given; fields left
    /// out keep their values. It never moves a customer: a `parentId`
    /// other than its parent is BAD_USER_INPUT (use moveCustomer).
    /// Concurrent upserts of a new externalId: one creates it, the others
    /// answer CONFLICT on externalId. API keys and tenant administrators
    /// only (FORBIDDEN for customer users).
    async fn upsert_customer(
        &self,
        ctx: &Context<'_>,
        external_id: String,
        input: CreateCustomerInput,
    ) -> ApiResult<CustomerPayload> {
        let caller = guards::require(ctx, Scope::CustomersWrite)?;
        let command = input.into_command()?;
        actions::customers::upsert(&writer(ctx), caller, &external_id, command)
            .await
            .map(|(row, _)| payload(row))
    }

    /// Creates up to 1,000 customers, each as createCustomer does, and
    /// answers each item's customer or error (the codes and fields of
    /// createCustomer) in the order given. Each item stands alone unless
    /// `atomic`: then any failure makes nothing. Costs each item as one
    /// createCustomer.
    #[graphql(complexity = "batch_cost(inputs.len(), child_complexity)")]
    async fn create_customers(
        &self,
        ctx: &Context<'_>,
        inputs: Vec<CreateCustomerInput>,
        #[graphql(default = false)] atomic: bool,
    ) -> ApiResult<CreateCustomersPayload> {
        let caller = guards::require(ctx, Scope::CustomersWrite)?;
        let commands = inputs
            .into_iter()
            .map(CreateCustomerInput::into_command)
            .collect();
        actions::batches::create_customers(&writer(ctx), caller, commands, atomic)
            .await
            .map(Into::into)
    }

    async fn update_customer(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateCustomerInput,
    ) -> ApiResult<CustomerPayload> {
        let caller = guards::require(ctx, Scope::CustomersWrite)?;
        let id = ids::expect_id(&id, "id")?;
        actions::customers::update(&writer(ctx), caller, id, input.into())
            .await
            .map(payload)
    }

    /// Moves the customer with its subtree; refuses to create a cycle.
    /// `newParentId` null makes it a root customer.
    async fn move_customer(
        &self,
        ctx: &Context<'_>,
        id: ID,
        new_parent_id: Option<ID>,
    ) -> ApiResult<CustomerPayload> {
        let caller = guards::require(ctx, Scope::CustomersWrite)?;
        let id = ids::expect_id(&id, "id")?;
        let new_parent = new_parent_id
            .map(|p| ids::expect_id(&p, "newParentId"))
            .transpose()?;
        actions::customers::move_to(&writer(ctx), caller, id, new_parent)
            .await
            .map(payload)
    }

    /// Irreversible. Without cascade it refuses a customer that has inner
    /// customers. Refuses while a CLOUD_ACCOUNT is attached anywhere in what would
    /// be deleted. Deletes the customers' users; detaches their other entitlements;
    /// their administrators get no further email about them.
    async fn delete_customer(
        &self,
        ctx: &Context<'_>,
        id: ID,
        #[graphql(default_with = "Some(false)")] cascade: Option<bool>,
    ) -> ApiResult<DeleteCustomerPayload> {
        let caller = guards::require(ctx, Scope::CustomersWrite)?;
        let id = ids::expect_id(&id, "id")?;
        let deleted =
            actions::customers::delete(&writer(ctx), caller, id, cascade.unwrap_or(false)).await?;
        fn global<I: ids::NodeId>(ids: Vec<I>) -> Vec<ID> {
            ids.into_iter().map(|id| ids::of(id).into()).collect()
        }
        Ok(DeleteCustomerPayload {
            deleted_customer_ids: global(deleted.customer_ids),
            deleted_user_ids: global(deleted.user_ids),
            detached_entitlement_ids: deleted
                .detached_entitlement_ids
                .into_iter()
                .map(|id| ids::encode(NodeKind::Entitlement, id).into())
                .collect(),
        })
    }

    /// The user must already be registered in the tenant. Assigning an
    /// administrator twice is harmless. Needs CUSTOMERS_WRITE and USERS_READ.
    async fn assign_customer_administrator(
        &self,
        ctx: &Context<'_>,
        customer_id: ID,
        email: String,
    ) -> ApiResult<CustomerPayload> {
        set_administrator(ctx, &customer_id, &email, true).await
    }

    /// Refuses (FAILED_PRECONDITION) when the user is not an administrator
    /// of the customer. Needs CUSTOMERS_WRITE and USERS_READ.
    async fn remove_customer_administrator(
        &self,
        ctx: &Context<'_>,
        customer_id: ID,
        email: String,
    ) -> ApiResult<CustomerPayload> {
        set_administrator(ctx, &customer_id, &email, false).await
    }

    /// `reference` is unique per kind within the tenant, at most 200 characters.
    async fn attach_entitlement(
        &self,
        ctx: &Context<'_>,
        customer_id: ID,
        kind: EntitlementKind,
        reference: String,
    ) -> ApiResult<Entitlement> {
        let caller = guards::require(ctx, Scope::CustomersWrite)?;
        let customer_id = ids::expect_id(&customer_id, "customerId")?;
        actions::entitlements::attach(&writer(ctx), caller, customer_id, kind.into(), &reference)
            .await
            .map(Entitlement)
    }

    /// Detaches it, keeping the number of the customer that held it.
    async fn detach_entitlement(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Entitlement> {
        let caller = guards::require(ctx, Scope::CustomersWrite)?;
        let id = ids::expect(&id, NodeKind::Entitlement, "id")?;
        actions::entitlements::detach(&writer(ctx), caller, id)
            .await
            .map(Entitlement)
    }

    /// Creates a user who must activate the account from an activation link
    /// (emailed, or returned to display).
    async fn create_user(
        &self,
        ctx: &Context<'_>,
        input: CreateUserInput,
    ) -> ApiResult<CreateUserPayload> {
        let caller = guards::require(ctx, Scope::UsersWrite)?;
        let state = state(ctx);
        let command = input.into_command()?;
        let created =
            actions::users::create(&writer(ctx), &state.config, &state.keyring, caller, command)
                .await?;
        if created.activation_link.is_some() {
            holds_secret_of(ctx, ids::of(created.user.id));
        }
        Ok(CreateUserPayload {
            user: User(created.user),
            activation_link: created.activation_link,
        })
    }

    /// Creates up to 1,000 users, each as createUser does (invitations,
    /// links, administrators' notices), in a fixed number of statements
    /// whatever their number, and answers each item's user (and link) or
    /// error (the codes and fields of createUser) in the order given. Each
    /// item stands alone unless `atomic`: then any failure makes nothing.
    /// Costs each item as one createUser.
    #[graphql(complexity = "batch_cost(inputs.len(), child_complexity)")]
    async fn create_users(
        &self,
        ctx: &Context<'_>,
        inputs: Vec<CreateUserInput>,
        #[graphql(default = false)] atomic: bool,
    ) -> ApiResult<CreateUsersPayload> {
        let caller = guards::require(ctx, Scope::UsersWrite)?;
        let state = state(ctx);
        let commands = inputs
            .into_iter()
            .map(CreateUserInput::into_command)
            .collect();
        let outcomes = actions::batches::create_users(
            &writer(ctx),
            &state.config,
            &state.keyring,
            caller,
            commands,
            atomic,
        )
        .await?;
        if let Some(Ok(created)) = outcomes
            .iter()
            .find(|o| o.as_ref().is_ok_and(|c| c.activation_link.is_some()))
        {
            holds_secret_of(ctx, ids::of(created.user.id));
        }
        Ok(outcomes.into())
    }

    /// Changes up to 1,000 users, each as updateUser does, and answers each
    /// item's user or error in the order given. Each item stands alone
    /// unless `atomic`: then any failure changes nothing. Costs each item as
    /// one updateUser.
    #[graphql(complexity = "batch_cost(updates.len(), child_complexity)")]
    async fn update_users(
        &self,
        ctx: &Context<'_>,
        updates: Vec<UserUpdate>,
        #[graphql(default = false)] atomic: bool,
    ) -> ApiResult<UpdateUsersPayload> {
        let caller = guards::require(ctx, Scope::UsersWrite)?;
        let state = state(ctx);
        let items = updates
            .into_iter()
            .map(|update| Ok((ids::expect_id(&update.id, "id")?, update.input.into())))
            .collect();
        actions::batches::update_users(
            &writer(ctx),
            &state.config,
            &state.keyring,
            caller,
            items,
            atomic,
        )
        .await
        .map(Into::into)
    }

    /// Creates the user you know by `externalId` (as createUser), or, when
    /// one exists (and you manage it), updates its names, phone and
    /// address with those given (left out: kept; a new address is
    /// validated as updateUser does; no activation is sent again). It
    /// never moves a user nor changes its role: another `customerId` or
    /// `role` is BAD_USER_INPUT. API keys and tenant administrators only.
    async fn upsert_user(
        &self,
        ctx: &Context<'_>,
        external_id: String,
        input: CreateUserInput,
    ) -> ApiResult<CreateUserPayload> {
        let caller = guards::require(ctx, Scope::UsersWrite)?;
        let state = state(ctx);
        let command = input.into_command()?;
        let upserted = actions::users::upsert(
            &writer(ctx),
            &state.config,
            &state.keyring,
            caller,
            &external_id,
            command,
        )
        .await?;
        if upserted.activation_link.is_some() {
            holds_secret_of(ctx, ids::of(upserted.user.id));
        }
        Ok(CreateUserPayload {
            user: User(upserted.user),
            activation_link: upserted.activation_link,
        })
    }

    /// Fields left out are unchanged; a field given as null is cleared. A new
    /// email takes effect once its validation link is used.
    async fn update_user(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateUserInput,
    ) -> ApiResult<UserPayload> {
        let caller = guards::require(ctx, Scope::UsersWrite)?;
        let state = state(ctx);
        let id = ids::expect_id(&id, "id")?;
        user_payload(
            actions::users::update(
                &writer(ctx),
                &state.config,
                &state.keyring,
                caller,
                id,
                input.into(),
            )
            .await,
        )
    }

    /// An administrator may set any status. SUSPENDED cannot sign in and its
    /// sessions stop working at once.
    async fn set_user_status(
        &self,
        ctx: &Context<'_>,
        id: ID,
        status: UserStatus,
    ) -> ApiResult<UserPayload> {
        let caller = guards::require(ctx, Scope::UsersWrite)?;
        let state = state(ctx);
        let id = ids::expect_id(&id, "id")?;
        user_payload(
            actions::users::set_status(&writer(ctx), &state.config, caller, id, status.into())
                .await,
        )
    }

    /// Moves a PENDING_APPROVAL user to ACTIVE.
    async fn approve_user(&self, ctx: &Context<'_>, id: ID) -> ApiResult<UserPayload> {
        let caller = guards::require(ctx, Scope::UsersWrite)?;
        let id = ids::expect_id(&id, "id")?;
        user_payload(actions::users::approve(&writer(ctx), caller, id).await)
    }

    /// Invalidates earlier activation links and issues a new one.
    async fn resend_activation(
        &self,
        ctx: &Context<'_>,
        id: ID,
        method: ActivationMethod,
        activation_ttl_hours: Option<i32>,
    ) -> ApiResult<CreateUserPayload> {
        let caller = guards::require(ctx, Scope::UsersWrite)?;
        let state = state(ctx);
        let id = ids::expect_id(&id, "id")?;
        let created = actions::users::resend_activation(
            &writer(ctx),
            &state.config,
            &state.keyring,
            caller,
            id,
            method.into(),
            activation_ttl_hours,
        )
        .await?;
        if created.activation_link.is_some() {
            holds_secret_of(ctx, ids::of(created.user.id));
        }
        Ok(CreateUserPayload {
            user: User(created.user),
            activation_link: created.activation_link,
        })
    }

    /// Makes the user's pending activation link stop working.
    async fn revoke_invitation(&self, ctx: &Context<'_>, id: ID) -> ApiResult<UserPayload> {
        let caller = guards::require(ctx, Scope::UsersWrite)?;
        let id = ids::expect_id(&id, "id")?;
        user_payload(actions::users::revoke_invitation(&writer(ctx), caller, id).await)
    }

    /// Ends the user's sessions at once: the user itself, or a caller who
    /// manages it and holds every power it holds. `keepCurrent` spares the
    /// session making the request. Answers how many ended.
    async fn revoke_sessions(
        &self,
        ctx: &Context<'_>,
        user_id: ID,
        #[graphql(default_with = "Some(false)")] keep_current: Option<bool>,
    ) -> ApiResult<i32> {
        let caller = guards::require(ctx, Scope::UsersWrite)?;
        let keep_current = keep_current.unwrap_or(false);
        let user_id = ids::expect_id(&user_id, "userId")?;
        let ended =
            actions::users::revoke_sessions(&writer(ctx), caller, user_id, keep_current).await?;
        Ok(i32::try_from(ended).unwrap_or(i32::MAX))
    }

    /// Deletes the user; its sessions end and its links stop working.
    async fn delete_user(&self, ctx: &Context<'_>, id: ID) -> ApiResult<DeleteUserPayload> {
        let caller = guards::require(ctx, Scope::UsersWrite)?;
        let state = state(ctx);
        let id = ids::expect_id(&id, "id")?;
        let deleted = actions::users::delete(&writer(ctx), &state.config, caller, id).await?;
        Ok(DeleteUserPayload {
            deleted_user_id: ids::of(deleted).into(),
        })
    }

    /// Public. Creates a root customer and its first user, and sends a
    /// validation email. Title at most 200 characters, password 8 to 128.
    async fn sign_up(&self, ctx: &Context<'_>, input: SignUpInput) -> ApiResult<SignUpPayload> {
        throttle::public(ctx, Flow::Emailing, Some((&input.tenant_id, &input.email))).await?;
        let state = state(ctx);
        let (user, customer) =
            actions::accounts::sign_up(&writer(ctx), &state.config, &state.keyring, input.into())
                .await?;
        Ok(SignUpPayload {
            user: User(user),
            customer: Customer(customer),
        })
    }

    /// Public. Uses the link of a validation email.
    async fn validate_email(&self, ctx: &Context<'_>, token: String) -> ApiResult<UserPayload> {
        throttle::public(ctx, Flow::Link, None).await?;
        let state = state(ctx);
        user_payload(actions::accounts::validate_email(&writer(ctx), &state.config, &token).await)
    }

    /// Public. Sends a new link in place of an expired or used one, of
    /// the same kind (invitation, address confirmation, password reset)
    /// to the address the old one went to, when one still makes sense (an
    /// invitation not yet accepted, a user not suspended, an address not
    /// yet confirmed). Answers true whether or not it sent one; a token
    /// that is not one of Canopy's is BAD_USER_INPUT. Limited like
    /// requestPasswordReset, per client and per address.
    async fn request_new_link(&self, ctx: &Context<'_>, token: String) -> ApiResult<bool> {
        let state = state(ctx);
        let Some((link, user)) = actions::accounts::link_owner(&state.pool, &token).await? else {
            throttle::public(ctx, Flow::Link, None).await?;
            return Err(crate::error::ApiError::bad_input(
                "token",
                "this link is not valid",
            ));
        };
        let address = link.email.clone().unwrap_or_else(|| user.email.clone());
        let tenant = ids::of(link.tenant_id);
        throttle::public(ctx, Flow::Emailing, Some((&tenant, &address))).await?;
        actions::accounts::request_new_link(&writer(ctx), &state.config, &state.keyring, &link)
            .await
    }

    /// Public. Answers true whether or not the address is known.
    async fn request_password_reset(
        &self,
        ctx: &Context<'_>,
        tenant_id: ID,
        email: String,
    ) -> ApiResult<bool> {
        throttle::public(ctx, Flow::Emailing, Some((&tenant_id, &email))).await?;
        let state = state(ctx);
        actions::accounts::request_password_reset(
            &writer(ctx),
            &state.config,
            &state.keyring,
            ids::tenant(&tenant_id),
            &email,
        )
        .await
    }

    /// Public. Sets a new password (8 to 128 characters) from a reset link and
    /// ends every session of the user.
    async fn reset_password(
        &self,
        ctx: &Context<'_>,
        token: String,
        password: String,
    ) -> ApiResult<bool> {
        throttle::public(ctx, Flow::Link, None).await?;
        let state = state(ctx);
        actions::accounts::reset_password(&writer(ctx), &state.config, &token, &password).await
    }

    /// Public. Signs in; every refusal (unknown address, wrong password, a
    /// user who may not sign in) answers the same UNAUTHENTICATED.
    async fn login(
        &self,
        ctx: &Context<'_>,
        tenant_id: ID,
        email: String,
        password: String,
    ) -> ApiResult<AuthPayload> {
        throttle::public(ctx, Flow::Login, Some((&tenant_id, &email))).await?;
        let session =
            actions::sessions::login(&writer(ctx), ids::tenant(&tenant_id), &email, &password)
                .await?;
        holds_secret_of(ctx, ids::of(session.user.id));
        Ok(AuthPayload::from(session))
    }

    /// Ends the caller's session at once; false for an API key, which has none.
    async fn logout(&self, ctx: &Context<'_>) -> ApiResult<bool> {
        let caller = guards::caller(ctx)?;
        actions::sessions::logout(&writer(ctx), caller).await
    }

    /// Public. Sets the password from an activation link (8 to 128
    /// characters) and signs in.
    async fn activate_account(
        &self,
        ctx: &Context<'_>,
        token: String,
        password: String,
    ) -> ApiResult<AuthPayload> {
        throttle::public(ctx, Flow::Link, None).await?;
        let session = actions::accounts::activate_account(&writer(ctx), &token, &password).await?;
        holds_secret_of(ctx, ids::of(session.user.id));
        Ok(AuthPayload::from(session))
    }

    /// Changes the tenant's settings; needs every scope (a tenant
    /// administrator, or a key holding all). Fields left out are unchanged.
    async fn update_tenant(
        &self,
        ctx: &Context<'_>,
        input: UpdateTenantInput,
    ) -> ApiResult<Tenant> {
        let caller = guards::caller(ctx)?;
        actions::tenants::update(&writer(ctx), caller, input.into())
            .await
            .map(Tenant)
    }

    /// Puts a FAILED or KILLED job back in the queue, with a fresh allowance
    /// of attempts; refuses jobs in any other state (FAILED_PRECONDITION).
    async fn retry_job(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Job> {
        let caller = guards::require(ctx, Scope::JobsWrite)?;
        let state = state(ctx);
        let id = ids::expect_id(&id, "id")?;
        actions::jobs::retry(&writer(ctx), &state.config, caller, id)
            .await
            .map(Job)
    }

    /// Cancels a job that is not running yet (AWAITING_DISPATCH, PENDING
    /// or FAILED): it ends KILLED with a lastError saying it was cancelled
    /// and by what kind of caller (`lastAction.by` says who), and is never
    /// sent; `retryJob` can bring it back. Refuses jobs in any other state
    /// (FAILED_PRECONDITION). Needs JOBS_WRITE; an ACCOUNT_NOTICE (a
    /// person's safeguard against a takeover) needs every scope.
    async fn cancel_job(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Job> {
        let caller = guards::require(ctx, Scope::JobsWrite)?;
        let id = ids::expect_id(&id, "id")?;
        actions::jobs::cancel(&writer(ctx), caller, id)
            .await
            .map(Job)
    }

    /// Retries, oldest first, up to 1,000 of the FAILED or KILLED jobs the
    /// filter names (its state, when given, must be FAILED or KILLED), each
    /// with a fresh allowance of attempts; jobs an operator cancelled are
    /// left for `retryJob`. `more` says whether others remain to retry with
    /// another call. Costs 10,000. Needs JOBS_WRITE (and USERS_READ or
    /// CUSTOMERS_READ to filter by user or customer).
    #[graphql(complexity = 10_000)]
    async fn retry_jobs(
        &self,
        ctx: &Context<'_>,
        filter: JobFilter,
    ) -> ApiResult<RetryJobsPayload> {
        let caller = guards::require(ctx, Scope::JobsWrite)?;
        let filter = filter.decode(caller, "filter")?;
        let state = state(ctx);
        let retried =
            actions::jobs::retry_matching(&writer(ctx), &state.config, caller, filter).await?;
        Ok(RetryJobsPayload {
            retried: retried.count as i64,
            more: retried.more,
        })
    }

    /// Pauses a kind of job for the tenant: its jobs wait (AWAITING_DISPATCH
    /// or PENDING) and none is sent until `resumeJobKind`; a job a worker
    /// already drew goes back without counting an attempt, and one already
    /// being sent finishes. Refuses a kind already paused
    /// (FAILED_PRECONDITION). Needs JOBS_WRITE; ACCOUNT_NOTICE needs
    /// every scope.
    async fn pause_job_kind(&self, ctx: &Context<'_>, kind: JobKind) -> ApiResult<JobKindRow> {
        let caller = guards::require(ctx, Scope::JobsWrite)?;
        actions::jobs::pause(&writer(ctx), caller, kind.into()).await?;
        JobKindRow::of(ctx, caller.tenant_id, kind).await
    }

    /// Resumes a paused kind: its waiting jobs go out at once. Refuses a
    /// kind that is not paused (FAILED_PRECONDITION). Needs JOBS_WRITE.
    async fn resume_job_kind(&self, ctx: &Context<'_>, kind: JobKind) -> ApiResult<JobKindRow> {
        let caller = guards::require(ctx, Scope::JobsWrite)?;
        actions::jobs::resume(&writer(ctx), caller, kind.into()).await?;
        JobKindRow::of(ctx, caller.tenant_id, kind).await
    }

    /// The secret is shown once, here. A key may only be given scopes its
    /// creator holds; `name` is at most 100 characters. `expiresAt`, when
    /// given, is in the future and at most 3,660 days ahead; the key stops
    /// working then. `rateLimitPerMinute` gives the key a budget of its own
    /// (operation cost per minute, 1 to 100,000,000) instead of
    /// CANOPY_LIMIT_CALLER. A key makes only keys that expire no later and
    /// spend no more than itself. The tenant's administrators are told of
    /// every new key.
    async fn create_api_key(
        &self,
        ctx: &Context<'_>,
        name: String,
        scopes: Vec<types::Scope>,
        expires_at: Option<DateTime<Utc>>,
        rate_limit_per_minute: Option<i32>,
    ) -> ApiResult<CreateApiKeyPayload> {
        let caller = guards::require(ctx, Scope::ApiKeysWrite)?;
        let scopes: Vec<Scope> = scopes.into_iter().map(Scope::from).collect();
        let state = state(ctx);
        let request = actions::api_keys::KeyRequest {
            name: &name,
            scopes: &scopes,
            expires_at,
            rate_limit_per_minute,
        };
        let (row, secret) =
            actions::api_keys::create(&writer(ctx), &state.config, caller, request).await?;
        holds_secret_of(ctx, ids::encode(NodeKind::ApiKey, row.id));
        Ok(CreateApiKeyPayload {
            api_key: ApiKey(row),
            secret,
        })
    }

    /// Registers a URL to receive the tenant's events of `events`, each
    /// signed under the secret answered here (once) as Standard Webhooks
    /// specifies. Needs API_KEYS_WRITE and each event's read scope. `url`
    /// is https, at most 2,048 characters, and must not resolve to a
    /// private, loopback or link-local address (BAD_USER_INPUT on `url`).
    async fn create_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        url: String,
        events: Vec<EventType>,
        description: Option<String>,
    ) -> ApiResult<CreateWebhookEndpointPayload> {
        let caller = guards::require(ctx, Scope::ApiKeysWrite)?;
        let state = state(ctx);
        let command = actions::webhooks::EndpointCommand {
            url,
            events: events.into_iter().map(Into::into).collect(),
            description,
        };
        let (row, secret) =
            actions::webhooks::create(&writer(ctx), &state.config, &state.keyring, caller, command)
                .await?;
        holds_secret_of(ctx, ids::encode(NodeKind::WebhookEndpoint, row.id));
        Ok(CreateWebhookEndpointPayload {
            endpoint: WebhookEndpoint(row),
            secret,
        })
    }

    /// Replaces an endpoint's URL, events and description (checked as when
    /// registering); `enabled: true` (the default) also turns a disabled
    /// one on again, `false` off. Needs API_KEYS_WRITE and the read scope
    /// of every event it had or gets.
    async fn update_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        id: ID,
        url: String,
        events: Vec<EventType>,
        description: Option<String>,
        #[graphql(default = true)] enabled: bool,
    ) -> ApiResult<WebhookEndpoint> {
        let caller = guards::require(ctx, Scope::ApiKeysWrite)?;
        let id = ids::expect(&id, NodeKind::WebhookEndpoint, "id")?;
        let command = actions::webhooks::EndpointCommand {
            url,
            events: events.into_iter().map(Into::into).collect(),
            description,
        };
        actions::webhooks::update(
            &writer(ctx),
            &state(ctx).config,
            caller,
            id,
            command,
            enabled,
        )
        .await
        .map(WebhookEndpoint)
    }

    /// Removes an endpoint with its deliveries. Needs API_KEYS_WRITE and the
    /// read scope of every event it receives.
    async fn delete_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> ApiResult<WebhookEndpoint> {
        let caller = guards::require(ctx, Scope::ApiKeysWrite)?;
        let id = ids::expect(&id, NodeKind::WebhookEndpoint, "id")?;
        actions::webhooks::delete(&writer(ctx), caller, id)
            .await
            .map(WebhookEndpoint)
    }

    /// Sends a delivery again (due now, with a fresh allowance of
    /// attempts), delivered or not. Needs API_KEYS_WRITE and the read
    /// scope of every event its endpoint receives.
    async fn redeliver_webhook(&self, ctx: &Context<'_>, delivery_id: ID) -> ApiResult<bool> {
        let caller = guards::require(ctx, Scope::ApiKeysWrite)?;
        let id = ids::expect(&delivery_id, NodeKind::WebhookDelivery, "deliveryId")?;
        actions::webhooks::redeliver(&writer(ctx), caller, id).await?;
        Ok(true)
    }

    /// The key stops working at once. Revoking a revoked key changes nothing.
    async fn revoke_api_key(&self, ctx: &Context<'_>, id: ID) -> ApiResult<ApiKey> {
        let caller = guards::require(ctx, Scope::ApiKeysWrite)?;
        let id = ids::expect(&id, NodeKind::ApiKey, "id")?;
        let state = state(ctx);
        actions::api_keys::revoke(&writer(ctx), &state.credentials, caller, id)
            .await
            .map(ApiKey)
    }
}
