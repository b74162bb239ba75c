//! The public account flows, each reached without a credential: sign-up,
//! email validation, password reset, and accepting an invitation, with the
//! one-time links they use.

use chrono::Duration;
use sqlx::{Acquire, PgConnection, PgPool};

use super::change::{Record, Writer};

use super::emails::{LinkEmail, notify, send_link, tell, tell_the_address_owner};
use super::sessions::{Session, check_password, hash_password, open_session};
use super::users::{is_email_taken, refused};
use crate::error::{ApiError, ApiResult};
use crate::validation as v;
use crate::validation::{MAX_NAME_CHARS, MAX_TITLE_CHARS};
use canopy_core::authz::Role;
use canopy_core::config::Config;
use canopy_core::id::TenantId;
use canopy_core::jobs::{AccountNotice, Notice};
use canopy_core::lifecycle::{self, Event, UserStatus};
use canopy_core::secrets::{self, Keyring};
use canopy_core::store::customers::{self, Fields};
use canopy_core::store::tokens::{self, Purpose, TokenRow, Unusable};
use canopy_core::store::users::{self, NewUser, UserRow};
use canopy_core::store::{sessions, tenants, tree_lock};

/// How long links work (DESIGN: validation 24 h, reset 1 h; activation is
/// the caller's choice, 1 to 720 hours).
pub(super) const VALIDATION_TTL_HOURS: i64 = 24;

pub(super) const RESET_TTL_HOURS: i64 = 1;

/// A self sign-up, as the caller gave it; `sign_up` validates it.
#[derive(Clone, Debug)]
pub struct SignUp {
    /// `None` when the id given names no tenant.
    pub tenant_id: Option<TenantId>,
    pub customer_title: String,
    pub email: String,
    pub password: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

/// Public: a root customer and its first user, who must validate the
/// address (and, if the tenant says so, wait for approval).
///
/// An address that already has an account gets the same answer as a new
/// one, and nothing is created for it: the customer row that drew the
/// answer's id and number is removed again, the user's id is the one the
/// refused insert drew, and the address's owner is told by email. So the
/// caller cannot tell the two apart, and a sign-up reserves nothing.
pub async fn sign_up(
    db: &Writer<'_>,
    config: &Config,
    keyring: &Keyring,
    input: SignUp,
) -> ApiResult<(UserRow, customers::CustomerRow)> {
    let no_tenant = || ApiError::bad_input("tenantId", "tenantId names no tenant");
    let tenant_id = input.tenant_id.ok_or_else(no_tenant)?;
    let title = v::required("customerTitle", &input.customer_title, MAX_TITLE_CHARS)?;
    let email = v::email("email", &input.email)?;
    check_password(&input.password)?;
    let first_name = v::optional("firstName", input.first_name.as_deref(), MAX_NAME_CHARS)?;
    let last_name = v::optional("lastName", input.last_name.as_deref(), MAX_NAME_CHARS)?;
    // A tenant without self sign-up answers as one that does not exist;
    // either is known before the password is hashed.
    tenants::by_id(db.pool, tenant_id)
        .await?
        .filter(|tenant| tenant.self_sign_up)
        .ok_or_else(no_tenant)?;
    let password_hash = hash_password(input.password.clone()).await?;

    let mut tx = db.begin().await?;
    tree_lock::shared(&mut tx, tenant_id).await?;
    let customer = customers::insert(
        &mut tx,
        tenant_id,
        None,
        None,
        &Fields {
            title,
            email: Some(email.clone()),
            ..Fields::default()
        },
    )
    .await?;
    let new_user = NewUser {
        customer_id: Some(customer.id),
        email: &email,
        first_name: first_name.as_deref(),
        last_name: last_name.as_deref(),
        phone: None,
        role: Role::CustomerUser,
        status: UserStatus::PendingEmailValidation,
        external_id: None,
    };
    // The unique keys decide whether the address is free; a savepoint
    // keeps the transaction usable when they say no.
    let mut attempt = (&mut *tx).begin().await?;
    let user = match users::insert(&mut attempt, tenant_id, &new_user).await {
        Ok(user) => {
            attempt.commit().await?;
            user
        }
        Err(error) if is_email_taken(&error) => {
            attempt.rollback().await?;
            let user = users::phantom(&mut tx, &customer, &new_user).await?;
            customers::delete_subtree(&mut tx, &customer).await?;
            tell_the_address_owner(&mut tx, config, tenant_id, &email).await?;
            // Nobody to name: the caller proved nothing. Only the
            // tenant's administrators read that the address was taken.
            tx.commit(
                Record::tenant(tenant_id)
                    .object(customer.id)
                    .detail("addressTaken", true),
            )
            .await?;
            return Ok((user, customer));
        }
        Err(error) => return Err(error.into()),
    };
    users::set_password(&mut tx, tenant_id, user.id, &password_hash).await?;
    users::mark_signed_up(&mut tx, tenant_id, user.id, customer.id).await?;
    let validation = LinkEmail {
        purpose: Purpose::EmailValidation,
        ttl: Duration::hours(VALIDATION_TTL_HOURS),
        to: &email,
        new_address: None,
    };
    send_link(&mut tx, config, keyring, &user, validation).await?;
    tx.commit(
        Record::tenant(tenant_id)
            .customer(Some(&customer.path))
            .object(customer.id)
            .object(user.id)
            .by_user(user.id, None)
            .customer_created(&customer)
            .user_created(&user),
    )
    .await?;
    Ok((user, customer))
}

/// Public: uses a validation link. For a sign-up it moves the user on in
/// the lifecycle; for an address change it makes the new address the
/// user's own.
pub async fn validate_email(db: &Writer<'_>, config: &Config, token: &str) -> ApiResult<UserRow> {
    let mut tx = db.begin().await?;
    let link = redeem(&mut tx, token, Purpose::EmailValidation).await?;
    let user = users::lock(&mut tx, link.tenant_id, link.user_id)
        .await?
        .ok_or_else(|| ApiError::bad_input("token", "this link is not valid"))?;
    let user = match &link.email {
        Some(new_email) => {
            // Only the change still wanted: a withdrawn or replaced address
            // is not the user's to take.
            let pending = users::pending_email(&mut tx, user.tenant_id, user.id).await?;
            if !pending.is_some_and(|p| p.eq_ignore_ascii_case(new_email)) {
                return Err(ApiError::bad_input(
                    "token",
                    "this address change was withdrawn or replaced",
                ));
            }
            // A new address ends every session: whoever signed in before
            // the change signs in again. Both addresses are told.
            sessions::delete_for_user(&mut tx, user.tenant_id, user.id, None).await?;
            let changed = users::confirm_email(&mut tx, user.tenant_id, user.id, new_email).await?;
            for address in [&user.email, &changed.email] {
                let notice = AccountNotice::EmailChanged;
                tell(&mut tx, config, user.tenant_id, user.id, notice, address).await?;
            }
            changed
        }
        None => {
            let tenant = tenants::by_id(&mut *tx, user.tenant_id)
                .await?
                .ok_or_else(|| ApiError::not_found("tenant"))?;
            let transition = lifecycle::next(
                user.status,
                Event::EmailValidated {
                    tenant_requires_approval: tenant.require_approval,
                },
            )
            .map_err(refused)?;
            let user =
                users::set_status(&mut tx, user.tenant_id, user.id, transition, None).await?;
            if transition.to() == UserStatus::PendingApproval {
                notify(&mut tx, config, None, &user, Notice::ApprovalRequested).await?;
            }
            user
        }
    };
    tokens::consume(&mut tx, link.tenant_id, link.id).await?;
    let record = Record::for_user(&user).by_user(user.id, None);
    // A sign-up's address proven moves its status; a new address does not.
    let record = if link.email.is_none() {
        record.status_changed(&user)
    } else {
        record
    };
    tx.commit(record).await?;
    Ok(user)
}

/// Public: answers true for every address; only a known user who is not
/// suspended gets an email.
pub async fn request_password_reset(
    db: &Writer<'_>,
    config: &Config,
    keyring: &Keyring,
    tenant_id: Option<TenantId>,
    email: &str,
) -> ApiResult<bool> {
    let email = v::lookup_email("email", email)?;
    let Some(tenant_id) = tenant_id else {
        return Ok(true);
    };
    let mut tx = db.begin().await?;
    let Some(user) = users::by_email(&mut tx, tenant_id, &email).await? else {
        return Ok(true);
    };
    if user.status == UserStatus::Suspended {
        return Ok(true);
    }
    let reset = LinkEmail {
        purpose: Purpose::PasswordReset,
        ttl: Duration::hours(RESET_TTL_HOURS),
        to: &user.email,
        new_address: None,
    };
    send_link(&mut tx, config, keyring, &user, reset).await?;
    // Asked for by nobody signed in: it names no actor.
    tx.commit(Record::for_user(&user)).await?;
    Ok(true)
}

/// Public: sets a new password from a reset link and ends every session.
pub async fn reset_password(
    db: &Writer<'_>,
    config: &Config,
    token: &str,
    password: &str,
) -> ApiResult<bool> {
    check_password(password)?;
    check_link(db.pool, token, Purpose::PasswordReset).await?;
    let password_hash = hash_password(password.to_owned()).await?;
    let mut tx = db.begin().await?;
    let link = redeem(&mut tx, token, Purpose::PasswordReset).await?;
    let user = users::lock(&mut tx, link.tenant_id, link.user_id)
        .await?
        .ok_or_else(|| ApiError::bad_input("token", "this link is not valid"))?;
    if user.status == UserStatus::Suspended {
        return Err(ApiError::precondition(
            "a suspended user cannot reset the password",
        ));
    }
    users::set_password(&mut tx, user.tenant_id, user.id, &password_hash).await?;
    sessions::delete_for_user(&mut tx, user.tenant_id, user.id, None).await?;
    tell(
        &mut tx,
        config,
        user.tenant_id,
        user.id,
        AccountNotice::PasswordChanged,
        &user.email,
    )
    .await?;
    tokens::consume(&mut tx, link.tenant_id, link.id).await?;
    tx.commit(Record::for_user(&user).by_user(user.id, None))
        .await?;
    Ok(true)
}

/// The link a token names and its user, used, expired or not, for
/// `request_new_link`; `None` when the token is not one of ours.
pub async fn link_owner(pool: &PgPool, token: &str) -> ApiResult<Option<(TokenRow, UserRow)>> {
    let Some(tenant_id) = secrets::link_token_tenant(token.trim()) else {
        return Ok(None);
    };
    let mut conn = pool.acquire().await?;
    let Some(row) = tokens::find_by_hash(
        &mut conn,
        tenant_id,
        &secrets::sha256(token.trim().as_bytes()),
    )
    .await?
    else {
        return Ok(None);
    };
    drop(conn);
    let user = users::by_ids(pool, row.tenant_id, &[row.user_id]).await?;
    Ok(user.into_iter().next().map(|user| (row, user)))
}

/// Public: sends a new link in place of `link` (expired, used or not), of
/// the same kind and to the same address, when one still makes sense:
/// an invitation not yet accepted, a reset for a user not suspended, a
/// validation of an address not yet confirmed. Otherwise it sends nothing;
/// the answer is the same either way.
pub async fn request_new_link(
    db: &Writer<'_>,
    config: &Config,
    keyring: &Keyring,
    link: &TokenRow,
) -> ApiResult<bool> {
    let mut tx = db.begin().await?;
    let Some(user) = users::lock(&mut tx, link.tenant_id, link.user_id).await? else {
        return Ok(true);
    };
    let pending = user.status == UserStatus::PendingEmailValidation;
    let email = match link.purpose {
        Purpose::Activation if pending => Some(LinkEmail {
            purpose: Purpose::Activation,
            ttl: Duration::hours(crate::actions::tenants::ACTIVATION_TTL_HOURS),
            to: &user.email,
            new_address: None,
        }),
        Purpose::PasswordReset if user.status != UserStatus::Suspended => Some(LinkEmail {
            purpose: Purpose::PasswordReset,
            ttl: Duration::hours(RESET_TTL_HOURS),
            to: &user.email,
            new_address: None,
        }),
        // A new address still to prove, or a sign-up's own address.
        Purpose::EmailValidation => match link.email.as_deref() {
            Some(address) if !address.eq_ignore_ascii_case(&user.email) => Some(LinkEmail {
                purpose: Purpose::EmailValidation,
                ttl: Duration::hours(VALIDATION_TTL_HOURS),
                to: address,
                new_address: Some(address),
            }),
            None if pending => Some(LinkEmail {
                purpose: Purpose::EmailValidation,
                ttl: Duration::hours(VALIDATION_TTL_HOURS),
                to: &user.email,
                new_address: None,
            }),
            _ => None,
        },
        _ => None,
    };
    if let Some(email) = email {
        send_link(&mut tx, config, keyring, &user, email).await?;
        tx.commit(Record::for_user(&user)).await?;
    }
    Ok(true)
}

/// Finds the live token behind a link and locks it. Every way a link can
/// fail is bad input on `token`, each with its own message.
pub async fn redeem(conn: &mut PgConnection, token: &str, purpose: Purpose) -> ApiResult<TokenRow> {
    let invalid = |message: &str| ApiError::bad_input("token", message);
    let tenant_id = secrets::link_token_tenant(token.trim())
        .ok_or_else(|| invalid("this link is not valid"))?;
    let row = tokens::lock_by_hash(conn, tenant_id, &secrets::sha256(token.trim().as_bytes()))
        .await?
        .filter(|row| row.purpose == purpose)
        .ok_or_else(|| invalid("this link is not valid"))?;
    match row.unusable() {
        Some(Unusable::Used) => Err(invalid("this link has already been used")),
        Some(Unusable::Revoked) => Err(invalid("this link was replaced by a newer one or revoked")),
        Some(Unusable::Expired) => Err(invalid("this link has expired")),
        None => Ok(row),
    }
}

/// Checks a link before any slow work: the same answers as `redeem`,
/// without keeping a connection (`redeem` decides again, locked).
pub async fn check_link(pool: &PgPool, token: &str, purpose: Purpose) -> ApiResult<()> {
    let mut conn = pool.acquire().await?;
    redeem(&mut conn, token, purpose).await.map(|_| ())
}

/// Sets the password from an activation link, activates the user and
/// signs it in.
pub async fn activate_account(db: &Writer<'_>, token: &str, password: &str) -> ApiResult<Session> {
    check_password(password)?;
    check_link(db.pool, token, Purpose::Activation).await?;
    let password_hash = hash_password(password.to_owned()).await?;
    let mut tx = db.begin().await?;
    let link = redeem(&mut tx, token, Purpose::Activation).await?;
    let user = users::lock(&mut tx, link.tenant_id, link.user_id)
        .await?
        .ok_or_else(|| ApiError::bad_input("token", "this link is not valid"))?;
    let transition = lifecycle::next(user.status, Event::Activated)
        .map_err(|refused| ApiError::precondition(refused.to_string()))?;
    let user = users::set_status(
        &mut tx,
        user.tenant_id,
        user.id,
        transition,
        Some(&password_hash),
    )
    .await?;
    tokens::consume(&mut tx, link.tenant_id, link.id).await?;
    let session = open_session(&mut tx, &user).await?;
    tx.commit(session.record().status_changed(&session.user))
        .await?;
    Ok(session)
}
