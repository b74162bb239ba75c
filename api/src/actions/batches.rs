//! Batches: `createUsers`, `createCustomers` and `updateUsers` take up to
//! `MAX_ITEMS` items in one transaction and answer each item's outcome:
//! what it made or changed, or its error with the codes and fields of the
//! single mutation. Each item stands alone (a savepoint, or a check before
//! the set-based insert); `atomic` makes the batch all or nothing.
//!
//! `createUsers` is set-based: however many users, with invitations, it
//! takes a fixed number of statements (`create_users`).

use std::collections::{HashMap, HashSet};

use sqlx::{Acquire, PgConnection};

use super::change::{Change, Record, Writer};
use super::customers::{self, NewCustomer};
use super::users::{self, CreatedUser, NewUserCommand, UserChanges, ValidNewUser, validated};
use crate::access;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use canopy_core::authz::{self, Role};
use canopy_core::config::Config;
use canopy_core::id::{CustomerId, UserId};
use canopy_core::jobs::{AccountNotice, JobKind, Notice, Payload};
use canopy_core::lifecycle::UserStatus;
use canopy_core::links;
use canopy_core::secrets::Keyring;
use canopy_core::store::customers::CustomerRow;
use canopy_core::store::jobs::{self, NewJob, Notification};
use canopy_core::store::tokens::{self, ActivationMethod, Purpose, TokenRequest};
use canopy_core::store::users::{NewUser, UserRow};
use canopy_core::store::{customers as customer_store, tenants, tree_lock, users as user_store};

/// The most items one batch takes.
pub const MAX_ITEMS: usize = 1000;

/// One item's outcome.
pub type Outcome<T> = Result<T, ApiError>;

/// Refuses an empty batch or one over `MAX_ITEMS`.
pub fn check_size(len: usize) -> ApiResult<()> {
    if (1..=MAX_ITEMS).contains(&len) {
        Ok(())
    } else {
        Err(ApiError::bad_input(
            "inputs",
            format!("a batch holds 1 to {MAX_ITEMS} items"),
        ))
    }
}

/// What an item of an atomic batch answers when it had no fault of its
/// own but another item failed.
fn aborted() -> ApiError {
    ApiError::precondition("not made: another item of this atomic batch failed")
}

/// Ends a batch: an atomic one with any failure changes nothing (its good
/// items answer `aborted`); otherwise what succeeded commits, with an
/// audit entry per item.
async fn finish<T>(
    tx: Change<'_>,
    outcomes: Vec<Outcome<T>>,
    records: Vec<Record>,
    atomic: bool,
) -> ApiResult<Vec<Outcome<T>>> {
    if atomic && outcomes.iter().any(Result::is_err) {
        drop(tx);
        return Ok(outcomes
            .into_iter()
            .map(|outcome| outcome.and_then(|_| Err(aborted())))
            .collect());
    }
    tx.commit_all(records).await?;
    Ok(outcomes)
}

/// Runs one item in a savepoint: its failure undoes only itself.
async fn item<T>(
    conn: &mut PgConnection,
    run: impl AsyncFnOnce(&mut PgConnection) -> ApiResult<(T, Record)>,
) -> ApiResult<Outcome<(T, Record)>> {
    let mut savepoint = conn.begin().await?;
    match run(&mut savepoint).await {
        Ok(done) => {
            savepoint.commit().await?;
            Ok(Ok(done))
        }
        Err(error) => {
            savepoint.rollback().await?;
            Ok(Err(error))
        }
    }
}

/// Creates customers, each as `createCustomer` does.
pub async fn create_customers(
    db: &Writer<'_>,
    caller: &Caller,
    inputs: Vec<ApiResult<NewCustomer>>,
    atomic: bool,
) -> ApiResult<Vec<Outcome<CustomerRow>>> {
    check_size(inputs.len())?;
    let mut tx = db.begin().await?;
    let mut outcomes = Vec::with_capacity(inputs.len());
    let mut records = Vec::new();
    for input in inputs {
        let outcome = match input {
            Ok(input) => {
                item(&mut tx, async |conn| {
                    customers::create_in(conn, caller, input).await
                })
                .await?
            }
            Err(error) => Err(error),
        };
        outcomes.push(kept(outcome, &mut records));
    }
    finish(tx, outcomes, records, atomic).await
}

/// Changes users, each as `updateUser` does.
pub async fn update_users(
    db: &Writer<'_>,
    config: &Config,
    keyring: &Keyring,
    caller: &Caller,
    items: Vec<ApiResult<(UserId, UserChanges)>>,
    atomic: bool,
) -> ApiResult<Vec<Outcome<UserRow>>> {
    check_size(items.len())?;
    let mut tx = db.begin().await?;
    let mut outcomes = Vec::with_capacity(items.len());
    let mut records = Vec::new();
    for change in items {
        let outcome = match change {
            Ok((id, changes)) => {
                item(&mut tx, async |conn| {
                    let user = users::update_in(conn, config, keyring, caller, id, changes).await?;
                    let record = Record::for_user(&user);
                    Ok((user, record))
                })
                .await?
            }
            Err(error) => Err(error),
        };
        outcomes.push(kept(outcome, &mut records));
    }
    finish(tx, outcomes, records, atomic).await
}

/// An item's outcome, its record kept for the audit log when it succeeded.
fn kept<T>(outcome: Outcome<(T, Record)>, records: &mut Vec<Record>) -> Outcome<T> {
    outcome.map(|(made, record)| {
        records.push(record);
        made
    })
}

/// Creates users, each as `createUser` does (its invitation, its link,
/// its administrators' notices), in a fixed number of statements: the
/// tree's lock, the customers named, the addresses and external ids
/// taken, the users with their addresses claimed, the links' ids and
/// rows, the administrators to tell, the jobs, the audit entries, and the
/// commit (with the tenant's portal and administrators when an item needs
/// them).
pub async fn create_users(
    db: &Writer<'_>,
    config: &Config,
    keyring: &Keyring,
    caller: &Caller,
    inputs: Vec<ApiResult<NewUserCommand>>,
    atomic: bool,
) -> ApiResult<Vec<Outcome<CreatedUser>>> {
    check_size(inputs.len())?;
    let tenant_id = caller.tenant_id;
    // What needs no database, and addresses and ids twice in the batch.
    let mut addresses = HashSet::new();
    let mut external_ids = HashSet::new();
    let mut checked: Vec<Outcome<ValidNewUser>> = inputs
        .into_iter()
        .map(|input| {
            let user = validated(&input?)?;
            if user.external_id.is_some() {
                access::may_set_external_id(caller)?;
            }
            if !addresses.insert(user.email.to_lowercase()) {
                return Err(ApiError::conflict(
                    "email",
                    "the batch names this address twice",
                ));
            }
            if let Some(x) = &user.external_id
                && !external_ids.insert(x.clone())
            {
                return Err(ApiError::conflict(
                    "externalId",
                    "the batch names this externalId twice",
                ));
            }
            Ok(user)
        })
        .collect();

    let mut tx = db.begin().await?;
    // Where each goes: customers in sight, and the caller's right to make
    // a user there.
    let customer_ids: Vec<CustomerId> = checked
        .iter()
        .filter_map(|user| user.as_ref().ok().and_then(|u| u.customer_id))
        .collect();
    let placements: HashMap<CustomerId, CustomerRow> = if customer_ids.is_empty() {
        HashMap::new()
    } else {
        // A customer being deleted gains no users.
        tree_lock::shared(&mut tx, tenant_id).await?;
        customer_store::by_ids(&mut *tx, tenant_id, &customer_ids)
            .await?
            .into_iter()
            .filter(|customer| access::sees_customer(caller, customer))
            .map(|customer| (customer.id, customer))
            .collect()
    };
    for outcome in &mut checked {
        let Ok(user) = outcome else { continue };
        let placement = match user.customer_id {
            Some(id) => match placements.get(&id) {
                Some(customer) => Some((customer.id, &customer.path)),
                None => {
                    *outcome = Err(ApiError::bad_input(
                        "customerId",
                        "customerId names no customer",
                    ));
                    continue;
                }
            },
            None => None,
        };
        if let Err(error) =
            access::enforce(authz::create_user(caller, user.role, placement), "customer")
        {
            *outcome = Err(error);
        }
    }
    // Addresses held or reserved, and external ids other users have.
    let wanted: Vec<&ValidNewUser> = checked.iter().filter_map(|o| o.as_ref().ok()).collect();
    let lower: Vec<String> = wanted.iter().map(|u| u.email.to_lowercase()).collect();
    let ids: Vec<String> = wanted
        .iter()
        .filter_map(|u| u.external_id.clone())
        .collect();
    let (held, had) = user_store::taken(&mut tx, tenant_id, &lower, &ids).await?;
    for outcome in &mut checked {
        let Ok(user) = outcome else { continue };
        if held.contains(&user.email.to_lowercase()) {
            *outcome = Err(ApiError::conflict("email", users::EMAIL_TAKEN));
        } else if user.external_id.as_ref().is_some_and(|x| had.contains(x)) {
            *outcome = Err(ApiError::conflict(
                "externalId",
                "a user with this externalId already exists",
            ));
        }
    }
    if atomic && checked.iter().any(Result::is_err) {
        drop(tx);
        return Ok(checked
            .into_iter()
            .map(|outcome| outcome.and_then(|_| Err(aborted())))
            .collect());
    }

    let valid: Vec<&ValidNewUser> = checked.iter().filter_map(|o| o.as_ref().ok()).collect();
    let new: Vec<NewUser<'_>> = valid
        .iter()
        .map(|u| NewUser {
            customer_id: u.customer_id,
            email: &u.email,
            first_name: u.first_name.as_deref(),
            last_name: u.last_name.as_deref(),
            phone: u.phone.as_deref(),
            role: u.role,
            status: UserStatus::PendingEmailValidation,
            external_id: u.external_id.as_deref(),
        })
        .collect();
    // An address or id taken since the check fails the statement, and so
    // the batch: CONFLICT, to be sent again.
    let rows = user_store::insert_many(&mut tx, tenant_id, &new)
        .await
        .map_err(|error| match users::email_taken(error) {
            ApiError::Conflict { field, .. } => ApiError::conflict(
                field,
                "an address or externalId of the batch was taken meanwhile; send it again",
            ),
            other => other,
        })?;
    let requests: Vec<TokenRequest<'_>> = valid
        .iter()
        .zip(&rows)
        .map(|(u, row)| TokenRequest {
            tenant_id,
            user_id: row.id,
            purpose: Purpose::Activation,
            ttl: u.ttl,
            method: Some(u.activation),
            email: None,
        })
        .collect();
    let links = tokens::issue_for_new_users(&mut tx, keyring, &requests).await?;

    // The jobs: invitations, the administrators' notices of each new user,
    // and for a new tenant administrator the notices that go with it.
    let customers_with_users: Vec<CustomerId> = rows.iter().filter_map(|r| r.customer_id).collect();
    let administrators = if customers_with_users.is_empty() {
        HashMap::new()
    } else {
        user_store::administrators_of_each(&mut tx, tenant_id, &customers_with_users).await?
    };
    let tenant_admins = if rows.iter().any(|r| r.role == Role::TenantAdmin) {
        user_store::tenant_administrators(&mut tx, tenant_id).await?
    } else {
        Vec::new()
    };
    let none = Vec::new();
    let mut jobs_to_queue: Vec<NewJob<'_>> = Vec::new();
    for ((user, row), link) in valid.iter().zip(&rows).zip(&links) {
        if user.activation == ActivationMethod::SendActivationEmail {
            jobs_to_queue.push(NewJob {
                tenant_id,
                kind: JobKind::Invitation,
                payload: Payload::Link {
                    user_id: row.id,
                    token_id: link.id,
                },
                recipient: &row.email,
                user_id: Some(row.id),
                customer_id: row.customer_id,
                max_attempts: config.job_max_attempts,
            });
        }
        let notice = |notice, customer_id| Notification {
            tenant_id,
            customer_id,
            notice,
            subject_user_id: Some(row.id),
            subject_label: &row.email,
            actor_user_id: caller.user_id(),
            fall_back_to_tenant_admins: false,
            max_attempts: config.job_max_attempts,
        };
        let above = row
            .customer_id
            .and_then(|id| administrators.get(&id))
            .unwrap_or(&none);
        jobs_to_queue.extend(jobs::notice_jobs(
            &notice(Notice::UserAdded, row.customer_id),
            above,
        ));
        if row.role == Role::TenantAdmin {
            let added = notice(Notice::TenantAdministratorAdded, None);
            jobs_to_queue.extend(jobs::notice_jobs(&added, &tenant_admins));
            jobs_to_queue.push(NewJob {
                tenant_id,
                kind: JobKind::AccountNotice,
                payload: Payload::Account {
                    user_id: row.id,
                    notice: AccountNotice::BecameTenantAdministrator,
                    address: row.email.clone(),
                },
                recipient: &row.email,
                user_id: Some(row.id),
                customer_id: None,
                max_attempts: config.job_max_attempts,
            });
        }
    }
    jobs::enqueue_all(&mut tx, &jobs_to_queue).await?;

    // Links handed out to display go to the tenant's portal.
    let portal = if valid
        .iter()
        .any(|u| u.activation == ActivationMethod::DisplayActivationLink)
    {
        let tenant = tenants::by_id(&mut *tx, tenant_id)
            .await?
            .ok_or_else(|| ApiError::not_found("tenant"))?;
        Some(url::Url::parse(&tenant.portal_url).map_err(anyhow::Error::from)?)
    } else {
        None
    };
    let records: Vec<Record> = rows
        .iter()
        .map(|row| Record::for_user(row).user_created(row))
        .collect();
    let mut made = valid
        .iter()
        .zip(rows)
        .zip(links)
        .map(|((user, row), link)| CreatedUser {
            activation_link: match (&portal, user.activation) {
                (Some(portal), ActivationMethod::DisplayActivationLink) => {
                    Some(links::link(portal, links::ACTIVATE, &link.token))
                }
                _ => None,
            },
            user: row,
        })
        .collect::<Vec<_>>()
        .into_iter();
    let outcomes: Vec<Outcome<CreatedUser>> = checked
        .into_iter()
        .map(|outcome| outcome.map(|_| made.next().expect("a row for each valid item")))
        .collect();
    finish(tx, outcomes, records, atomic).await
}
