//! Creating, editing, moving and deleting customers, and assigning their
//! administrators.

use sqlx::PgConnection;

use serde_json::json;

use super::Patch;
use super::change::{Record, Writer};
use crate::access;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::ids;
use crate::validation::{self as v, *};
use canopy_core::authz;
use canopy_core::config::Config;
use canopy_core::events::EventType;
use canopy_core::id::{CustomerId, TenantId};
use canopy_core::jobs::Notice;
use canopy_core::store::customers::{self, CustomerRow, Deleted, Fields};
use canopy_core::store::jobs::{Notification, notify_administrators};
use canopy_core::store::tokens::{self, Purpose};
use canopy_core::store::{tree_lock, users};

const NUMBER_TAKEN: &str = "a customer with this number already exists";

/// A taken number or external id, as CONFLICT on its field.
fn taken(error: sqlx::Error) -> ApiError {
    if matches!(&error, sqlx::Error::Database(db)
        if db.constraint() == Some("customers_external_id_key"))
    {
        return ApiError::conflict(
            "externalId",
            "a customer with this externalId already exists",
        );
    }
    ApiError::on_constraint(error, "customers_number_key", "number", NUMBER_TAKEN)
}

/// How deep the tree may grow: depth 0 is a root. Deeper trees would make
/// every path, cursor and ancestor list long for no business need.
pub const MAX_DEPTH: i32 = 100;

/// Loads a customer of the tenant, or NOT_FOUND.
async fn existing(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    id: CustomerId,
) -> ApiResult<CustomerRow> {
    customers::by_id(conn, tenant_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("customer"))
}

/// A parent named in input: it must exist and be the caller's to change,
/// and something it may not see is as absent as something that does not
/// exist.
fn parent_in_reach(
    caller: &Caller,
    field: &str,
    parent: Option<CustomerRow>,
) -> ApiResult<CustomerRow> {
    match parent {
        Some(row) if access::manages_customer(caller, &row) => Ok(row),
        Some(row) if access::sees_customer(caller, &row) => Err(ApiError::Forbidden(
            "you may not add below this customer".into(),
        )),
        _ => Err(ApiError::bad_input(
            field,
            format!("{field} names no customer"),
        )),
    }
}

fn number(value: &str) -> ApiResult<String> {
    v::required("number", value, MAX_NUMBER_CHARS)
}

fn title(value: &str) -> ApiResult<String> {
    v::required("title", value, MAX_TITLE_CHARS)
}

/// A customer to create, as the caller gave it; `create` validates it.
#[derive(Clone, Debug, Default)]
pub struct NewCustomer {
    pub parent_id: Option<CustomerId>,
    pub number: Option<String>,
    pub title: String,
    pub info: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub country: Option<String>,
    pub state: Option<String>,
    pub city: Option<String>,
    pub address: Option<String>,
    pub address2: Option<String>,
    pub zip: Option<String>,
    pub external_id: Option<String>,
}

/// Changes to a customer's fields; `update` validates them.
#[derive(Clone, Debug, Default)]
pub struct CustomerChanges {
    pub number: Patch<String>,
    pub title: Patch<String>,
    pub info: Patch<String>,
    pub email: Patch<String>,
    pub phone: Patch<String>,
    pub country: Patch<String>,
    pub state: Patch<String>,
    pub city: Patch<String>,
    pub address: Patch<String>,
    pub address2: Patch<String>,
    pub zip: Patch<String>,
    pub external_id: Patch<String>,
}

pub async fn create(
    db: &Writer<'_>,
    caller: &Caller,
    input: NewCustomer,
) -> ApiResult<CustomerRow> {
    let mut tx = db.begin().await?;
    let (row, record) = create_in(&mut tx, caller, input).await?;
    tx.commit(record).await?;
    Ok(row)
}

/// `create` on an open change (a batch's item), answering its record.
pub(super) async fn create_in(
    tx: &mut PgConnection,
    caller: &Caller,
    input: NewCustomer,
) -> ApiResult<(CustomerRow, Record)> {
    let tenant_id = caller.tenant_id;
    let parent_id = input.parent_id;
    let number = input.number.as_deref().map(number).transpose()?;
    let fields = Fields {
        title: title(&input.title)?,
        info: optional_text("info", input.info.as_deref(), MAX_INFO_CHARS)?,
        email: optional_email("email", input.email.as_deref())?,
        phone: optional_phone("phone", input.phone.as_deref())?,
        country: optional("country", input.country.as_deref(), MAX_PLACE_CHARS)?,
        state: optional("state", input.state.as_deref(), MAX_PLACE_CHARS)?,
        city: optional("city", input.city.as_deref(), MAX_PLACE_CHARS)?,
        address: optional("address", input.address.as_deref(), MAX_ADDRESS_CHARS)?,
        address2: optional("address2", input.address2.as_deref(), MAX_ADDRESS_CHARS)?,
        zip: optional("zip", input.zip.as_deref(), MAX_ZIP_CHARS)?,
        external_id: v::external_id(input.external_id.as_deref())?,
    };
    if fields.external_id.is_some() {
        access::may_set_external_id(caller)?;
    }

    tree_lock::shared(&mut *tx, tenant_id).await?;
    let parent = match parent_id {
        Some(id) => Some(parent_in_reach(
            caller,
            "parentId",
            customers::by_id(&mut *tx, tenant_id, id).await?,
        )?),
        None if caller.limits().is_some() => {
            return Err(ApiError::Forbidden(
                "customer users create customers below those they administer".into(),
            ));
        }
        None => None,
    };
    if parent.as_ref().is_some_and(|p| p.depth() + 1 > MAX_DEPTH) {
        return Err(ApiError::bad_input(
            "parentId",
            format!("customers may be at most {MAX_DEPTH} levels deep"),
        ));
    }
    let row = customers::insert(tx, tenant_id, parent.as_ref(), number.as_deref(), &fields)
        .await
        .map_err(taken)?;
    let record = Record::tenant(tenant_id)
        .customer(Some(&row.path))
        .object(row.id)
        .customer_created(&row);
    Ok((row, record))
}

/// Applies one field of an update: left out keeps `current`, null clears it.
fn patch(
    field: &str,
    change: &Patch<String>,
    current: &Option<String>,
    check: impl Fn(&str, Option<&str>) -> ApiResult<Option<String>>,
) -> ApiResult<Option<String>> {
    match change {
        Patch::Keep => Ok(current.clone()),
        Patch::Clear => Ok(None),
        Patch::Set(value) => check(field, Some(value)),
    }
}

/// Applies a change to a field that cannot be cleared.
fn patch_required(
    field: &str,
    change: &Patch<String>,
    current: &str,
    check: impl Fn(&str) -> ApiResult<String>,
) -> ApiResult<String> {
    match change {
        Patch::Keep => Ok(current.to_owned()),
        Patch::Clear => Err(ApiError::bad_input(
            field,
            format!("{field} cannot be cleared"),
        )),
        Patch::Set(value) => check(value),
    }
}

pub async fn update(
    db: &Writer<'_>,
    caller: &Caller,
    id: CustomerId,
    input: CustomerChanges,
) -> ApiResult<CustomerRow> {
    let tenant_id = caller.tenant_id;
    if !input.external_id.is_keep() {
        access::may_set_external_id(caller)?;
    }
    let resorts = !input.title.is_keep() || !input.number.is_keep();
    let mut tx = db.begin().await?;
    if resorts {
        // A new title or number moves the subtree in the sort order.
        tree_lock::exclusive(&mut tx, tenant_id).await?;
    }
    let current = customers::lock(&mut tx, tenant_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("customer"))?;
    access::must_manage_customer(caller, &current)?;
    let place = |max| move |f: &str, v: Option<&str>| optional(f, v, max);
    let new_number = patch_required("number", &input.number, &current.number, number)?;
    let fields = Fields {
        title: patch_required("title", &input.title, &current.title, title)?,
        info: patch("info", &input.info, &current.info, |f, v| {
            optional_text(f, v, MAX_INFO_CHARS)
        })?,
        email: patch("email", &input.email, &current.email, optional_email)?,
        phone: patch("phone", &input.phone, &current.phone, optional_phone)?,
        country: patch(
            "country",
            &input.country,
            &current.country,
            place(MAX_PLACE_CHARS),
        )?,
        state: patch(
            "state",
            &input.state,
            &current.state,
            place(MAX_PLACE_CHARS),
        )?,
        city: patch("city", &input.city, &current.city, place(MAX_PLACE_CHARS))?,
        address: patch(
            "address",
            &input.address,
            &current.address,
            place(MAX_ADDRESS_CHARS),
        )?,
        address2: patch(
            "address2",
            &input.address2,
            &current.address2,
            place(MAX_ADDRESS_CHARS),
        )?,
        zip: patch("zip", &input.zip, &current.zip, place(MAX_ZIP_CHARS))?,
        external_id: patch(
            "externalId",
            &input.external_id,
            &current.external_id,
            |_, v| v::external_id(v),
        )?,
    };
    let row = customers::update(&mut tx, tenant_id, id, &new_number, &fields)
        .await
        .map_err(taken)?;
    let row = if row.sort_key != current.sort_key {
        customers::move_subtree(&mut tx, tenant_id, id, row.parent_id).await?;
        existing(&mut tx, tenant_id, id).await?
    } else {
        row
    };
    tx.commit(
        Record::tenant(tenant_id)
            .customer(Some(&row.path))
            .object(id)
            .event(EventType::CustomerUpdated, ids::of(id), json!({})),
    )
    .await?;
    Ok(row)
}

/// Moves a customer with its subtree below `new_parent_id` (to the roots
/// when `None`), refusing to put it below itself.
pub async fn move_to(
    db: &Writer<'_>,
    caller: &Caller,
    id: CustomerId,
    new_parent: Option<CustomerId>,
) -> ApiResult<CustomerRow> {
    let tenant_id = caller.tenant_id;
    let mut tx = db.begin().await?;
    tree_lock::exclusive(&mut tx, tenant_id).await?;
    let current = existing(&mut tx, tenant_id, id).await?;
    access::must_restructure_customer(caller, &current)?;
    if new_parent.is_none() && caller.limits().is_some() {
        return Err(ApiError::Forbidden(
            "customer users cannot make root customers".into(),
        ));
    }
    if let Some(parent) = new_parent {
        let parent_row = parent_in_reach(
            caller,
            "newParentId",
            customers::by_id(&mut tx, tenant_id, parent).await?,
        )?;
        if customers::is_in_subtree(&mut tx, tenant_id, id, parent).await? {
            return Err(ApiError::bad_input(
                "newParentId",
                "a customer cannot move below itself or one of its inner customers",
            ));
        }
        let height = customers::subtree_height(&mut tx, &current).await?;
        if parent_row.depth() + 1 + height > MAX_DEPTH {
            return Err(ApiError::bad_input(
                "newParentId",
                format!("customers may be at most {MAX_DEPTH} levels deep"),
            ));
        }
    }
    if current.parent_id == new_parent {
        return Ok(current);
    }
    customers::move_subtree(&mut tx, tenant_id, id, new_parent).await?;
    let row = existing(&mut tx, tenant_id, id).await?;
    let parent = json!({ "parentId": row.parent_id.map(ids::of) });
    tx.commit(
        Record::tenant(tenant_id)
            .customer(Some(&row.path))
            .object(id)
            .event(EventType::CustomerMoved, ids::of(id), parent),
    )
    .await?;
    Ok(row)
}

pub async fn delete(
    db: &Writer<'_>,
    caller: &Caller,
    id: CustomerId,
    cascade: bool,
) -> ApiResult<Deleted> {
    let tenant_id = caller.tenant_id;
    let mut tx = db.begin().await?;
    tree_lock::exclusive(&mut tx, tenant_id).await?;
    let root = existing(&mut tx, tenant_id, id).await?;
    access::must_restructure_customer(caller, &root)?;
    let census = customers::census(&mut tx, &root).await?;
    if census.customers > 1 && !cascade {
        return Err(ApiError::precondition(format!(
            "the customer has {} customers below it; pass cascade: true to delete them too",
            census.customers - 1
        )));
    }
    if census.cloud_accounts > 0 {
        return Err(ApiError::precondition(format!(
            "{} cloud account(s) are attached in what would be deleted; detach them first",
            census.cloud_accounts
        )));
    }
    // Deleting a user needs what managing it needs: every power it holds.
    for (user, administered) in users::in_subtree(&mut tx, tenant_id, &root.path).await? {
        if let Err(refusal) = access::must_manage_user(caller, &user, administered) {
            return Err(match refusal {
                ApiError::Forbidden(reason) => ApiError::Forbidden(format!(
                    "deleting it would delete {}: {reason}",
                    user.email
                )),
                other => other,
            });
        }
    }
    let mut deleted = customers::delete_subtree(&mut tx, &root).await?;
    let mut record = Record::tenant(tenant_id)
        .customer(Some(&root.path))
        .objects(deleted.customer_ids.iter().copied())
        .objects(deleted.user_ids.iter().copied())
        .detail("cascade", cascade);
    for &customer in &deleted.customer_ids {
        record = record.event(EventType::CustomerDeleted, ids::of(customer), json!({}));
    }
    for &user in &deleted.user_ids {
        record = record.event(EventType::UserDeleted, ids::of(user), json!({}));
    }
    tx.commit(record).await?;
    deleted.customer_ids.sort_unstable();
    deleted.user_ids.sort_unstable();
    deleted.detached_entitlement_ids.sort_unstable();
    Ok(deleted)
}

/// Assigns (or, with `assign == false`, removes) an administrator by email.
/// The user must already be registered in the tenant.
pub async fn set_administrator(
    db: &Writer<'_>,
    config: &Config,
    caller: &Caller,
    customer_id: CustomerId,
    email: &str,
    assign: bool,
) -> ApiResult<CustomerRow> {
    let tenant_id = caller.tenant_id;
    let email = v::email("email", email)?;
    let mut tx = db.begin().await?;
    // Shares the tree lock: a customer being deleted gains no administrator.
    tree_lock::shared(&mut tx, tenant_id).await?;
    let customer = existing(&mut tx, tenant_id, customer_id).await?;
    if assign {
        // Making an administrator grants its scopes over the subtree.
        access::enforce(
            authz::grant_administration(caller, customer.id, &customer.path),
            "customer",
        )?;
    } else {
        access::must_manage_customer(caller, &customer)?;
    }
    let user = users::by_email(&mut tx, tenant_id, &email)
        .await?
        .filter(|user| access::sees_user(caller, user))
        .ok_or_else(|| ApiError::bad_input("email", "no user with this email is registered"))?;
    let notice = |notice| Notification {
        tenant_id,
        customer_id: Some(customer.id),
        notice,
        subject_user_id: Some(user.id),
        subject_label: &user.email,
        actor_user_id: caller.user_id(),
        fall_back_to_tenant_admins: false,
        max_attempts: config.job_max_attempts,
    };
    if assign {
        if users::add_administrator(&mut tx, tenant_id, customer.id, user.id).await? {
            // Links issued before the user gained this power were issued by
            // callers who may not hold it: they stop working, and a pending
            // address change is withdrawn. The user asks for new ones.
            tokens::revoke_pending(&mut tx, tenant_id, user.id, Purpose::Activation).await?;
            tokens::revoke_pending(&mut tx, tenant_id, user.id, Purpose::EmailValidation).await?;
            users::withdraw_pending_email(&mut tx, tenant_id, user.id).await?;
            notify_administrators(&mut tx, notice(Notice::AdministratorAssigned)).await?;
        }
    } else {
        // Told before the removal, so the one removed hears of it too.
        notify_administrators(&mut tx, notice(Notice::AdministratorRemoved)).await?;
        if !users::remove_administrator(&mut tx, tenant_id, customer.id, user.id).await? {
            return Err(ApiError::precondition(
                "this user is not an administrator of the customer",
            ));
        }
    }
    tx.commit(
        Record::tenant(tenant_id)
            .customer(Some(&customer.path))
            .object(customer.id)
            .object(user.id),
    )
    .await?;
    Ok(customer)
}

/// Creates the customer the caller knows by `external_id` (as `create`),
/// or, when one exists, updates it with the fields given (left out: kept).
/// An upsert never moves a customer: a `parent_id` other than its parent
/// is refused. Answers the customer and whether it was created.
pub async fn upsert(
    db: &Writer<'_>,
    caller: &Caller,
    external_id: &str,
    input: NewCustomer,
) -> ApiResult<(CustomerRow, bool)> {
    let external_id = v::upsert_key(caller, external_id, input.external_id.as_deref())?;
    let Some(existing) = customers::by_external_id(db.pool, caller.tenant_id, &external_id)
        .await?
        .filter(|row| access::sees_customer(caller, row))
    else {
        let new = NewCustomer {
            external_id: Some(external_id),
            ..input
        };
        return Ok((create(db, caller, new).await?, true));
    };
    if input.parent_id != existing.parent_id {
        return Err(ApiError::bad_input(
            "input.parentId",
            "an upsert does not move a customer; use moveCustomer",
        ));
    }
    let given = |value: Option<String>| value.map_or(Patch::Keep, Patch::Set);
    let changes = CustomerChanges {
        number: given(input.number),
        title: Patch::Set(input.title),
        info: given(input.info),
        email: given(input.email),
        phone: given(input.phone),
        country: given(input.country),
        state: given(input.state),
        city: given(input.city),
        address: given(input.address),
        address2: given(input.address2),
        zip: given(input.zip),
        external_id: Patch::Keep,
    };
    Ok((update(db, caller, existing.id, changes).await?, false))
}
