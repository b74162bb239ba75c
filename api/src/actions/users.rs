//! Administering users: invitations, edits, status, approval, sessions
//! and deletion. Every change of status goes through
//! `canopy_core::lifecycle`; every email is a job row written in the same
//! transaction (`emails`).

use chrono::Duration;
use sqlx::PgConnection;

use super::Patch;
use super::accounts::VALIDATION_TTL_HOURS;
use super::change::{Record, Writer};
use super::emails::{LinkEmail, notify, queue_link, send_link, tell};
use crate::actions::tenants::ACTIVATION_TTL_HOURS;
use crate::auth::{Caller, Principal};
use crate::error::{ApiError, ApiResult};
use crate::ids;
use crate::validation::MAX_NAME_CHARS;
use crate::{access, validation as v};
use canopy_core::authz::{self, Role};
use canopy_core::config::Config;
use canopy_core::events::EventType;
use canopy_core::id::{CustomerId, TenantId, UserId};
use canopy_core::jobs::{AccountNotice, JobKind, Notice};
use canopy_core::lifecycle::{self, Event, UserStatus};
use canopy_core::links;
use canopy_core::secrets::Keyring;
use canopy_core::store::jobs::{Notification, notify_administrators};
use canopy_core::store::tokens::{self, ActivationMethod, Purpose, TokenRequest};
use canopy_core::store::users::{self, NewUser, UserRow};
use canopy_core::store::{customers, sessions, tenants, tree_lock};

const MAX_ACTIVATION_TTL_HOURS: i32 = 720;

pub(super) const EMAIL_TAKEN: &str = "a user with this email already exists";

/// An address held or reserved by another user: decided by the unique keys
/// on users and on email claims; or an external id another user has.
pub(super) fn email_taken(error: sqlx::Error) -> ApiError {
    if is_email_taken(&error) {
        ApiError::conflict("email", EMAIL_TAKEN)
    } else {
        ApiError::on_constraint(
            error,
            "users_external_id_key",
            "externalId",
            "a user with this externalId already exists",
        )
    }
}

pub(super) fn is_email_taken(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db)
        if matches!(db.constraint(), Some("users_email_key" | "email_claims_pkey")))
}

pub(super) fn refused(refusal: lifecycle::Refused) -> ApiError {
    ApiError::precondition(refusal.to_string())
}

/// Loads and locks a user of the tenant, or NOT_FOUND.
async fn existing(conn: &mut PgConnection, tenant_id: TenantId, id: UserId) -> ApiResult<UserRow> {
    users::lock(conn, tenant_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))
}

/// Loads and locks a user the caller manages: one it reaches and whose
/// every power it holds (taking over the account would hand it those).
async fn managed(conn: &mut PgConnection, caller: &Caller, id: UserId) -> ApiResult<UserRow> {
    let user = existing(conn, caller.tenant_id, id).await?;
    must_manage(conn, caller, &user).await?;
    Ok(user)
}

/// Refuses unless the caller manages `user` and holds every power it
/// holds, reading which customers it administers.
async fn must_manage(conn: &mut PgConnection, caller: &Caller, user: &UserRow) -> ApiResult<()> {
    let administered = users::administered_paths(&mut *conn, user.tenant_id, user.id).await?;
    access::must_manage_user(caller, user, administered)
}

fn activation_ttl(hours: Option<i32>) -> ApiResult<Duration> {
    let hours = hours.unwrap_or(ACTIVATION_TTL_HOURS as i32);
    if !(1..=MAX_ACTIVATION_TTL_HOURS).contains(&hours) {
        return Err(ApiError::bad_input(
            "activationTtlHours",
            format!("activationTtlHours must be 1 to {MAX_ACTIVATION_TTL_HOURS}"),
        ));
    }
    Ok(Duration::hours(i64::from(hours)))
}

/// Issues an activation link and hands it out as `method` says: queued as
/// an INVITATION email, or returned to display.
async fn hand_out_activation(
    conn: &mut PgConnection,
    config: &Config,
    keyring: &Keyring,
    user: &UserRow,
    method: ActivationMethod,
    ttl: Duration,
) -> ApiResult<Option<String>> {
    let token = tokens::issue(
        conn,
        keyring,
        TokenRequest {
            tenant_id: user.tenant_id,
            user_id: user.id,
            purpose: Purpose::Activation,
            ttl,
            method: Some(method),
            email: None,
        },
    )
    .await?;
    match method {
        ActivationMethod::SendActivationEmail => {
            queue_link(conn, config, JobKind::Invitation, user, &user.email, &token).await?;
            Ok(None)
        }
        ActivationMethod::DisplayActivationLink => {
            let tenant = tenants::by_id(&mut *conn, user.tenant_id)
                .await?
                .ok_or_else(|| ApiError::not_found("tenant"))?;
            let portal = url::Url::parse(&tenant.portal_url).map_err(anyhow::Error::from)?;
            Ok(Some(links::link(&portal, links::ACTIVATE, &token.token)))
        }
    }
}

/// A user to create, as the caller gave it; `create` validates it.
#[derive(Clone, Debug)]
pub struct NewUserCommand {
    pub customer_id: Option<CustomerId>,
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    pub role: Role,
    pub activation: ActivationMethod,
    pub activation_ttl_hours: Option<i32>,
    pub external_id: Option<String>,
}

/// Changes to a user's profile; `update` validates them.
#[derive(Clone, Debug, Default)]
pub struct UserChanges {
    pub first_name: Patch<String>,
    pub last_name: Patch<String>,
    pub phone: Patch<String>,
    pub email: Patch<String>,
    pub external_id: Patch<String>,
}

pub struct CreatedUser {
    pub user: UserRow,
    pub activation_link: Option<String>,
}

/// A new user's fields, checked: what `create` and a batch insert.
pub(super) struct ValidNewUser {
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    pub ttl: Duration,
    pub external_id: Option<String>,
    pub role: Role,
    pub customer_id: Option<CustomerId>,
    pub activation: ActivationMethod,
}

/// Checks every field of a new user that needs no database.
pub(super) fn validated(input: &NewUserCommand) -> ApiResult<ValidNewUser> {
    let customer_id = match (input.role, input.customer_id) {
        (Role::CustomerUser, Some(id)) => Some(id),
        (Role::CustomerUser, None) => {
            return Err(ApiError::bad_input(
                "customerId",
                "a customer user needs customerId",
            ));
        }
        (Role::TenantAdmin, Some(_)) => {
            return Err(ApiError::bad_input(
                "customerId",
                "a tenant administrator belongs to no customer",
            ));
        }
        (Role::TenantAdmin, None) => None,
    };
    Ok(ValidNewUser {
        email: v::email("email", &input.email)?,
        first_name: v::optional("firstName", input.first_name.as_deref(), MAX_NAME_CHARS)?,
        last_name: v::optional("lastName", input.last_name.as_deref(), MAX_NAME_CHARS)?,
        phone: v::optional_phone("phone", input.phone.as_deref())?,
        ttl: activation_ttl(input.activation_ttl_hours)?,
        external_id: v::external_id(input.external_id.as_deref())?,
        role: input.role,
        customer_id,
        activation: input.activation,
    })
}

pub async fn create(
    db: &Writer<'_>,
    config: &Config,
    keyring: &Keyring,
    caller: &Caller,
    input: NewUserCommand,
) -> ApiResult<CreatedUser> {
    let ValidNewUser {
        email,
        first_name,
        last_name,
        phone,
        ttl,
        external_id,
        role,
        customer_id,
        activation: _,
    } = validated(&input)?;
    if external_id.is_some() {
        access::may_set_external_id(caller)?;
    }

    let mut tx = db.begin().await?;
    let placement = match customer_id {
        Some(customer_id) => {
            // A customer being deleted gains no users.
            tree_lock::shared(&mut tx, caller.tenant_id).await?;
            let customer = customers::by_id(&mut tx, caller.tenant_id, customer_id)
                .await?
                .filter(|customer| access::sees_customer(caller, customer))
                .ok_or_else(|| ApiError::bad_input("customerId", "customerId names no customer"))?;
            Some((customer.id, customer.path))
        }
        None => None,
    };
    let decision = authz::create_user(
        caller,
        role,
        placement.as_ref().map(|(id, path)| (*id, path)),
    );
    access::enforce(decision, "customer")?;
    let user = users::insert(
        &mut tx,
        caller.tenant_id,
        &NewUser {
            customer_id,
            email: &email,
            first_name: first_name.as_deref(),
            last_name: last_name.as_deref(),
            phone: phone.as_deref(),
            role,
            status: UserStatus::PendingEmailValidation,
            external_id: external_id.as_deref(),
        },
    )
    .await
    .map_err(email_taken)?;
    let activation_link =
        hand_out_activation(&mut tx, config, keyring, &user, input.activation, ttl).await?;
    notify(&mut tx, config, Some(caller), &user, Notice::UserAdded).await?;
    if role == Role::TenantAdmin {
        // Everyone holding every power hears of a new holder, and the
        // holder of what it now may do.
        notify_administrators(
            &mut tx,
            Notification {
                tenant_id: user.tenant_id,
                customer_id: None,
                notice: Notice::TenantAdministratorAdded,
                subject_user_id: Some(user.id),
                subject_label: &user.email,
                actor_user_id: caller.user_id(),
                fall_back_to_tenant_admins: true,
                max_attempts: config.job_max_attempts,
            },
        )
        .await?;
        let notice = AccountNotice::BecameTenantAdministrator;
        tell(
            &mut tx,
            config,
            user.tenant_id,
            user.id,
            notice,
            &user.email,
        )
        .await?;
    }
    tx.commit(Record::for_user(&user).user_created(&user))
        .await?;
    Ok(CreatedUser {
        user,
        activation_link,
    })
}

/// Invalidates earlier activation links and issues a new one.
pub async fn resend_activation(
    db: &Writer<'_>,
    config: &Config,
    keyring: &Keyring,
    caller: &Caller,
    id: UserId,
    method: ActivationMethod,
    ttl_hours: Option<i32>,
) -> ApiResult<CreatedUser> {
    let ttl = activation_ttl(ttl_hours)?;
    let mut tx = db.begin().await?;
    let user = managed(&mut tx, caller, id).await?;
    if user.status != UserStatus::PendingEmailValidation {
        return Err(ApiError::precondition(format!(
            "the user is {}; only a user who has not activated gets a new link",
            user.status
        )));
    }
    let activation_link = hand_out_activation(&mut tx, config, keyring, &user, method, ttl).await?;
    tx.commit(Record::for_user(&user)).await?;
    Ok(CreatedUser {
        user,
        activation_link,
    })
}

/// Ends the sessions of a user: the user itself, or a caller who manages it
/// (and holds every power it holds). `keep_current` spares the session
/// making the request. Returns how many ended.
pub async fn revoke_sessions(
    db: &Writer<'_>,
    caller: &Caller,
    id: UserId,
    keep_current: bool,
) -> ApiResult<u64> {
    let mut tx = db.begin().await?;
    let user = existing(&mut tx, caller.tenant_id, id).await?;
    if caller.user_id() != Some(user.id) {
        must_manage(&mut tx, caller, &user).await?;
    }
    let keep = match caller.principal {
        Principal::User { session_id, .. } if keep_current => Some(session_id),
        _ => None,
    };
    let ended = sessions::delete_for_user(&mut tx, user.tenant_id, user.id, keep).await?;
    tx.commit(Record::for_user(&user).detail("ended", ended))
        .await?;
    Ok(ended)
}

/// Makes the user's pending activation link stop working.
pub async fn revoke_invitation(db: &Writer<'_>, caller: &Caller, id: UserId) -> ApiResult<UserRow> {
    let mut tx = db.begin().await?;
    let user = managed(&mut tx, caller, id).await?;
    if !tokens::revoke_pending(&mut tx, user.tenant_id, user.id, Purpose::Activation).await? {
        return Err(ApiError::precondition("the user has no pending invitation"));
    }
    tx.commit(Record::for_user(&user)).await?;
    Ok(user)
}

/// Names and phone change at once; a new address takes effect when its
/// validation link is used, and is reserved until then.
pub async fn update(
    db: &Writer<'_>,
    config: &Config,
    keyring: &Keyring,
    caller: &Caller,
    id: UserId,
    input: UserChanges,
) -> ApiResult<UserRow> {
    let mut tx = db.begin().await?;
    let user = update_in(&mut tx, config, keyring, caller, id, input).await?;
    tx.commit(Record::for_user(&user)).await?;
    Ok(user)
}

/// `update` on an open change (a batch's item).
pub(super) async fn update_in(
    tx: &mut PgConnection,
    config: &Config,
    keyring: &Keyring,
    caller: &Caller,
    id: UserId,
    input: UserChanges,
) -> ApiResult<UserRow> {
    if !input.external_id.is_keep() {
        access::may_set_external_id(caller)?;
    }
    let current = existing(tx, caller.tenant_id, id).await?;
    // Users change their own names and phone; managers change the rest.
    if access::reaches_user(caller, &current) {
        must_manage(&mut *tx, caller, &current).await?;
    } else {
        if caller.user_id() != Some(current.id) {
            access::must_manage_user(caller, &current, Vec::new())?;
        }
        if !input.email.is_keep() {
            return Err(ApiError::Forbidden(
                "your administrator changes your email address".into(),
            ));
        }
    }
    if !input.email.is_keep() && current.status == UserStatus::PendingEmailValidation {
        return Err(ApiError::precondition(
            "the user has not proven its address yet; delete and invite it again to use another",
        ));
    }
    let text = |field: &str, change: &Patch<String>, now: &Option<String>| match change {
        Patch::Keep => Ok(now.clone()),
        Patch::Clear => Ok(None),
        Patch::Set(value) => v::optional(field, Some(value), MAX_NAME_CHARS),
    };
    let first_name = text("firstName", &input.first_name, &current.first_name)?;
    let external_id = match &input.external_id {
        Patch::Keep => current.external_id.clone(),
        Patch::Clear => None,
        Patch::Set(value) => v::external_id(Some(value))?,
    };
    let last_name = text("lastName", &input.last_name, &current.last_name)?;
    let phone = match &input.phone {
        Patch::Keep => current.phone.clone(),
        Patch::Clear => None,
        Patch::Set(value) => v::optional_phone("phone", Some(value))?,
    };
    let previous_pending = users::pending_email(&mut *tx, current.tenant_id, current.id).await?;
    // What the reserved new address becomes: left out keeps it; the current
    // address withdraws it; another address replaces it.
    let wanted = match &input.email {
        Patch::Keep => previous_pending.clone(),
        Patch::Clear => {
            return Err(ApiError::bad_input("email", "email cannot be cleared"));
        }
        Patch::Set(value) => {
            let email = v::email("email", value)?;
            (!email.eq_ignore_ascii_case(&current.email)).then_some(email)
        }
    };
    let unchanged = match (&wanted, &previous_pending) {
        (Some(wanted), Some(previous)) => wanted.eq_ignore_ascii_case(previous),
        (None, None) => true,
        _ => false,
    };
    let new_email = if unchanged { None } else { wanted.clone() };
    if !unchanged && let Some(previous) = &previous_pending {
        users::release_claim(&mut *tx, current.tenant_id, current.id, previous).await?;
        // Its link must stop working: the address is no longer reserved.
        tokens::revoke_pending(
            &mut *tx,
            current.tenant_id,
            current.id,
            Purpose::EmailValidation,
        )
        .await?;
    }
    if let Some(email) = &new_email {
        users::claim_email(&mut *tx, current.tenant_id, current.id, email)
            .await
            .map_err(email_taken)?;
    }
    let pending = wanted;
    let profile = users::Profile {
        first_name: first_name.as_deref(),
        last_name: last_name.as_deref(),
        phone: phone.as_deref(),
        pending_email: pending.as_deref(),
        external_id: external_id.as_deref(),
    };
    let user = users::update_profile(&mut *tx, current.tenant_id, current.id, &profile)
        .await
        .map_err(email_taken)?;
    if let Some(email) = &new_email {
        let validation = LinkEmail {
            purpose: Purpose::EmailValidation,
            ttl: Duration::hours(VALIDATION_TTL_HOURS),
            to: email,
            new_address: Some(email),
        };
        send_link(&mut *tx, config, keyring, &user, validation).await?;
    }
    Ok(user)
}

/// An administrator sets any status; suspending ends the user's sessions.
pub async fn set_status(
    db: &Writer<'_>,
    config: &Config,
    caller: &Caller,
    id: UserId,
    status: UserStatus,
) -> ApiResult<UserRow> {
    let mut tx = db.begin().await?;
    let user = managed(&mut tx, caller, id).await?;
    let from = user.status;
    let transition = lifecycle::next(from, Event::StatusSet(status)).map_err(refused)?;
    let to = transition.to();
    if from == to {
        return Ok(user);
    }
    if caller.user_id() == Some(user.id) && to != UserStatus::Active {
        return Err(ApiError::precondition("you cannot lock yourself out"));
    }
    let user = users::set_status(&mut tx, user.tenant_id, user.id, transition, None).await?;
    if !to.may_sign_in() {
        sessions::delete_for_user(&mut tx, user.tenant_id, user.id, None).await?;
    }
    if to == UserStatus::Suspended {
        notify(&mut tx, config, Some(caller), &user, Notice::UserSuspended).await?;
    }
    tx.commit(
        Record::for_user(&user)
            .detail("status", to.as_str())
            .status_changed(&user),
    )
    .await?;
    Ok(user)
}

/// Moves a PENDING_APPROVAL user to ACTIVE.
pub async fn approve(db: &Writer<'_>, caller: &Caller, id: UserId) -> ApiResult<UserRow> {
    let mut tx = db.begin().await?;
    let user = managed(&mut tx, caller, id).await?;
    let transition = lifecycle::next(user.status, Event::Approved).map_err(refused)?;
    let user = users::set_status(&mut tx, user.tenant_id, user.id, transition, None).await?;
    tx.commit(Record::for_user(&user).status_changed(&user))
        .await?;
    Ok(user)
}

/// Deletes a user: its sessions end and its links stop working (both go
/// with the row); its administrators are told.
pub async fn delete(
    db: &Writer<'_>,
    config: &Config,
    caller: &Caller,
    id: UserId,
) -> ApiResult<UserId> {
    let mut tx = db.begin().await?;
    let user = managed(&mut tx, caller, id).await?;
    if caller.user_id() == Some(user.id) {
        return Err(ApiError::precondition("you cannot delete yourself"));
    }
    notify(&mut tx, config, Some(caller), &user, Notice::UserDeleted).await?;
    users::delete(&mut tx, user.tenant_id, user.id).await?;
    let deleted = Record::for_user(&user).event(
        EventType::UserDeleted,
        ids::of(user.id),
        serde_json::json!({}),
    );
    tx.commit(deleted).await?;
    Ok(user.id)
}

/// Creates the user the caller knows by `external_id` (as `create`), or,
/// when one exists, updates its names, phone and address with those given
/// (left out: kept; a new address is validated as `update` does). An
/// upsert never moves a user nor changes its role: another `customer_id`
/// or `role` is refused.
pub async fn upsert(
    db: &Writer<'_>,
    config: &Config,
    keyring: &Keyring,
    caller: &Caller,
    external_id: &str,
    input: NewUserCommand,
) -> ApiResult<CreatedUser> {
    let external_id = v::upsert_key(caller, external_id, input.external_id.as_deref())?;
    let Some(existing) = users::by_external_id(db.pool, caller.tenant_id, &external_id)
        .await?
        .filter(|row| access::sees_user(caller, row))
    else {
        let new = NewUserCommand {
            external_id: Some(external_id),
            ..input
        };
        return create(db, config, keyring, caller, new).await;
    };
    if input.customer_id != existing.customer_id {
        return Err(ApiError::bad_input(
            "input.customerId",
            "an upsert does not move a user to another customer",
        ));
    }
    if input.role != existing.role {
        return Err(ApiError::bad_input(
            "input.role",
            "an upsert does not change a user's role",
        ));
    }
    let given = |value: Option<String>| value.map_or(Patch::Keep, Patch::Set);
    let changes = UserChanges {
        first_name: given(input.first_name),
        last_name: given(input.last_name),
        phone: given(input.phone),
        email: if input.email.trim().eq_ignore_ascii_case(&existing.email) {
            Patch::Keep
        } else {
            Patch::Set(input.email)
        },
        external_id: Patch::Keep,
    };
    let user = update(db, config, keyring, caller, existing.id, changes).await?;
    Ok(CreatedUser {
        user,
        activation_link: None,
    })
}
