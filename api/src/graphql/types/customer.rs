use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::connection::{Connection, Total};
use super::{Entitlement, User, UserConnection, UserStatus};
use crate::actions::customers::{CustomerChanges, NewCustomer};
use crate::auth::{Caller, Scope};
use crate::error::{ApiError, ApiResult};
use crate::graphql::guards;
use crate::graphql::loaders::{ChildCountKey, ChildrenKey, Loaders};
use crate::ids::{self};
use crate::pagination::{self, Page, connection_cost};
use crate::{AppState, access};
use canopy_core::authz;
use canopy_core::id::{CustomerId, TenantId};
use canopy_core::store::customers::{self, CustomerRow, Filter};
use canopy_core::store::users;
use canopy_core::store::{Count, Search};

/// A business entity, an individual or a division. Customers form a tree:
/// a customer may have inner customers, to any depth.
#[derive(Clone)]
pub struct Customer(pub CustomerRow);

impl Customer {
    /// Whether the caller reaches below this customer: its inner customers,
    /// users and administrators. A customer user sees its own customer but
    /// nothing below it, unless it administers it.
    fn opens(&self, ctx: &Context<'_>) -> ApiResult<bool> {
        Ok(access::manages_customer(guards::caller(ctx)?, &self.0))
    }

    /// The ancestors the caller may learn of (`authz::visible_ancestors`);
    /// none for an anonymous caller, who meets only its own sign-up's root.
    fn visible_ancestors(&self, ctx: &Context<'_>) -> ApiResult<Vec<CustomerId>> {
        Ok(ctx
            .data_opt::<Caller>()
            .filter(|caller| access::in_tenant(caller, self.0.tenant_id))
            .map(|caller| authz::visible_ancestors(caller, &self.0.path))
            .unwrap_or_default())
    }

    fn visible_parent(&self, ctx: &Context<'_>) -> ApiResult<Option<CustomerId>> {
        Ok(self.visible_ancestors(ctx)?.last().copied())
    }

    fn empty(page: &Page, total: CustomerTotal) -> CustomerConnection {
        CustomerConnection::of(page, Vec::new(), total)
    }
}

#[Object]
impl Customer {
    pub async fn id(&self) -> ID {
        ids::of(self.0.id).into()
    }

    /// Unique within the tenant; assigned when not given (`C-000001`, …).
    async fn number(&self) -> &str {
        &self.0.number
    }

    async fn title(&self) -> &str {
        &self.0.title
    }

    /// Free text for other administrators, e.g. the primary contact.
    async fn info(&self) -> Option<&str> {
        self.0.info.as_deref()
    }

    async fn email(&self) -> Option<&str> {
        self.0.email.as_deref()
    }

    async fn phone(&self) -> Option<&str> {
        self.0.phone.as_deref()
    }

    async fn country(&self) -> Option<&str> {
        self.0.country.as_deref()
    }

    async fn state(&self) -> Option<&str> {
        self.0.state.as_deref()
    }

    async fn city(&self) -> Option<&str> {
        self.0.city.as_deref()
    }

    async fn address(&self) -> Option<&str> {
        self.0.address.as_deref()
    }

    async fn address2(&self) -> Option<&str> {
        self.0.address2.as_deref()
    }

    /// The partner's own id for it, unique in the tenant.
    async fn external_id(&self) -> Option<&str> {
        self.0.external_id.as_deref()
    }

    async fn zip(&self) -> Option<&str> {
        self.0.zip.as_deref()
    }

    /// Null for a root customer, and for a customer whose parent is above
    /// what the caller administers: nothing beyond its reach shows.
    async fn parent_id(&self, ctx: &Context<'_>) -> ApiResult<Option<ID>> {
        Ok(self.visible_parent(ctx)?.map(|id| ids::of(id).into()))
    }

    async fn parent(&self, ctx: &Context<'_>) -> ApiResult<Option<Customer>> {
        guards::require(ctx, Scope::CustomersRead)?;
        let Some(parent_id) = self.visible_parent(ctx)? else {
            return Ok(None);
        };
        let loaders = ctx.data_unchecked::<Loaders>();
        Ok(loaders
            .customers
            .load_one((self.0.tenant_id, parent_id))
            .await?
            .map(Customer))
    }

    /// From the top down to the parent: every ancestor for callers who
    /// reach the whole tenant; for a customer user, those within the
    /// subtrees it administers. Empty for a root customer.
    async fn ancestors(&self, ctx: &Context<'_>) -> ApiResult<Vec<Customer>> {
        guards::require(ctx, Scope::CustomersRead)?;
        let loaders = ctx.data_unchecked::<Loaders>();
        let ids = self.visible_ancestors(ctx)?;
        let mut found = loaders
            .customers
            .load_many(ids.iter().map(|id| (self.0.tenant_id, *id)))
            .await?;
        Ok(ids
            .iter()
            .filter_map(|id| found.remove(&(self.0.tenant_id, *id)))
            .map(Customer)
            .collect())
    }

    /// How many ancestors the caller may see (the length of `ancestors`):
    /// 0 for a root customer, and for the top of a customer user's reach.
    async fn depth(&self, ctx: &Context<'_>) -> ApiResult<i32> {
        Ok(self.visible_ancestors(ctx)?.len() as i32)
    }

    /// Direct inner customers, ordered by title then number. `first`
    /// defaults to 20 and may be at most 100; `search` matches the number or
    /// the title anywhere, case-insensitively (3 to 200 characters).
    #[graphql(complexity = "pagination::search_cost(first, &search, child_complexity)")]
    async fn inner_customers(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        search: Option<String>,
    ) -> ApiResult<CustomerConnection> {
        guards::require(ctx, Scope::CustomersRead)?;
        let page = pagination::page(first, after)?;
        let search = pagination::search(search.as_deref())?;
        let total = CustomerTotal::Children {
            tenant_id: self.0.tenant_id,
            parent_id: self.0.id,
            search: search.clone(),
        };
        if !self.opens(ctx)? {
            return Ok(Self::empty(&page, CustomerTotal::Nothing));
        }
        let loaders = ctx.data_unchecked::<Loaders>();
        let rows = loaders
            .children
            .load_one(ChildrenKey {
                tenant_id: self.0.tenant_id,
                parent_id: self.0.id,
                search: search.clone(),
                page: page.clone(),
            })
            .await?
            .unwrap_or_default();
        Ok(CustomerConnection::of(&page, rows, total))
    }

    async fn inner_customer_count(&self, ctx: &Context<'_>) -> ApiResult<i64> {
        guards::require(ctx, Scope::CustomersRead)?;
        if !self.opens(ctx)? {
            return Ok(0);
        }
        let loaders = ctx.data_unchecked::<Loaders>();
        Ok(loaders
            .child_counts
            .load_one(ChildCountKey {
                tenant_id: self.0.tenant_id,
                parent_id: self.0.id,
                search: None,
            })
            .await?
            .unwrap_or(0))
    }

    /// All customers below this one.
    async fn descendant_count(&self, ctx: &Context<'_>) -> ApiResult<i64> {
        guards::require(ctx, Scope::CustomersRead)?;
        if !self.opens(ctx)? {
            return Ok(0);
        }
        // Kept on the row by triggers, exact in every transaction.
        Ok(i64::from(self.0.descendant_count))
    }

    /// The subtree below this customer in depth-first pre-order, children by
    /// title then number; `maxDepth` 1 means inner customers only.
    #[graphql(complexity = "connection_cost(first, child_complexity)")]
    async fn descendants(
        &self,
        ctx: &Context<'_>,
        max_depth: Option<i32>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<CustomerConnection> {
        guards::require(ctx, Scope::CustomersRead)?;
        if max_depth.is_some_and(|d| d < 1) {
            return Err(ApiError::bad_input(
                "maxDepth",
                "maxDepth must be at least 1",
            ));
        }
        // Cursors carry the sort chain below this customer only: the part
        // above it names ancestors the caller may not reach.
        let mut page = pagination::page(first, after)?;
        page.after = page
            .after
            .map(|below| format!("{}{below}", self.0.tree_sort));
        if !self.opens(ctx)? {
            return Ok(Self::empty(&page, CustomerTotal::Nothing));
        }
        let state = ctx.data_unchecked::<AppState>();
        let rows = customers::descendants(&state.pool, &self.0, max_depth, &page).await?;
        Ok(CustomerConnection::of(
            &page,
            rows,
            CustomerTotal::Descendants {
                root: Box::new(self.0.clone()),
                max_depth,
            },
        ))
    }

    /// The customer's own users, by email; `search` matches email or names
    /// (3 to 200 characters).
    #[graphql(complexity = "pagination::search_cost(first, &search, child_complexity)")]
    async fn users(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        status: Option<UserStatus>,
        search: Option<String>,
    ) -> ApiResult<UserConnection> {
        let caller = guards::require(ctx, Scope::UsersRead)?;
        if !access::sees_customer(caller, &self.0) {
            return Ok(UserConnection::empty());
        }
        let filter = users::Filter {
            customer_id: Some(self.0.id),
            status: status.map(Into::into),
            search: pagination::search(search.as_deref())?,
            reach: guards::caller(ctx)?.limits().cloned(),
        };
        UserConnection::load(
            ctx,
            self.0.tenant_id,
            filter,
            pagination::page(first, after)?,
        )
        .await
    }

    /// Registered users who manage this customer and receive its notifications.
    ///
    /// Lists exactly the administrators the caller may read by `node(id)`:
    /// for a customer user, itself and the users of customers it
    /// administers; an administrator from elsewhere in the tenant is left out.
    async fn administrators(&self, ctx: &Context<'_>) -> ApiResult<Vec<User>> {
        let caller = guards::require(ctx, Scope::UsersRead)?;
        if !self.opens(ctx)? {
            return Ok(Vec::new());
        }
        let loaders = ctx.data_unchecked::<Loaders>();
        Ok(loaders
            .administrators
            .load_one((self.0.tenant_id, self.0.id))
            .await?
            .unwrap_or_default()
            .into_iter()
            .filter(|user| access::sees_user(caller, user))
            .map(User)
            .collect())
    }

    async fn entitlements(&self, ctx: &Context<'_>) -> ApiResult<Vec<Entitlement>> {
        let caller = guards::require(ctx, Scope::CustomersRead)?;
        if !access::sees_customer(caller, &self.0) {
            return Ok(Vec::new());
        }
        let loaders = ctx.data_unchecked::<Loaders>();
        Ok(loaders
            .entitlements
            .load_one((self.0.tenant_id, self.0.id))
            .await?
            .unwrap_or_default()
            .into_iter()
            .map(Entitlement)
            .collect())
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// Which set a connection pages through, so `totalCount` is computed only
/// when asked, and through a loader where many connections ask at once.
pub enum CustomerTotal {
    /// Nothing the caller may see.
    Nothing,
    List {
        tenant_id: TenantId,
        filter: Filter,
    },
    Children {
        tenant_id: TenantId,
        parent_id: CustomerId,
        search: Option<Search>,
    },
    Descendants {
        root: Box<CustomerRow>,
        max_depth: Option<i32>,
    },
}

pub type CustomerConnection = Connection<Customer, CustomerTotal>;

impl CustomerConnection {
    /// A page of customers; a subtree's cursors are its rows' tree order
    /// below the root, others their sort keys.
    pub fn of(page: &Page, rows: Vec<CustomerRow>, total: CustomerTotal) -> Self {
        let below = match &total {
            CustomerTotal::Descendants { root, .. } => Some(root.tree_sort.clone()),
            _ => None,
        };
        let sort_key = move |row: &CustomerRow| match &below {
            Some(root) => row
                .tree_sort
                .strip_prefix(root.as_str())
                .unwrap_or(&row.tree_sort)
                .to_owned(),
            None => row.sort_key.clone(),
        };
        Connection::new(page, rows, sort_key, Customer, total)
    }
}

impl Total for CustomerTotal {
    async fn count(&self, ctx: &Context<'_>) -> ApiResult<Count> {
        let state = ctx.data_unchecked::<AppState>();
        let exact = match self {
            CustomerTotal::Nothing => 0,
            CustomerTotal::List { tenant_id, filter } => {
                return Ok(customers::count(&state.pool, *tenant_id, filter).await?);
            }
            CustomerTotal::Children {
                tenant_id,
                parent_id,
                search,
            } => {
                let loaders = ctx.data_unchecked::<Loaders>();
                loaders
                    .child_counts
                    .load_one(ChildCountKey {
                        tenant_id: *tenant_id,
                        parent_id: *parent_id,
                        search: search.clone(),
                    })
                    .await?
                    .unwrap_or(0)
            }
            CustomerTotal::Descendants { root, max_depth } => {
                customers::descendants_count(&state.pool, root, *max_depth).await?
            }
        };
        Ok(Count::exact(exact))
    }
}

/// A new customer. Limits: title and address lines at most 200 characters,
/// number at most 64, info at most 4000, email at most 254, phone at most 32,
/// country, state and city at most 100, zip at most 20. Blank optional
/// values are stored as absent.
#[derive(InputObject)]
pub struct CreateCustomerInput {
    /// Null for a root customer.
    pub parent_id: Option<ID>,
    /// Unique within the tenant; assigned from the tenant's sequence when absent.
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
    /// Your own id for it: unique in the tenant, at most 255 characters;
    /// set by API keys and tenant administrators only.
    pub external_id: Option<String>,
}

/// Fields left out are unchanged; a field given as null is cleared. Title
/// and number cannot be cleared. Limits as for `CreateCustomerInput`.
#[derive(InputObject)]
pub struct UpdateCustomerInput {
    pub number: MaybeUndefined<String>,
    pub title: MaybeUndefined<String>,
    pub info: MaybeUndefined<String>,
    pub email: MaybeUndefined<String>,
    pub phone: MaybeUndefined<String>,
    pub country: MaybeUndefined<String>,
    pub state: MaybeUndefined<String>,
    pub city: MaybeUndefined<String>,
    pub address: MaybeUndefined<String>,
    pub address2: MaybeUndefined<String>,
    pub zip: MaybeUndefined<String>,
    pub external_id: MaybeUndefined<String>,
}

#[derive(SimpleObject)]
pub struct CustomerPayload {
    pub customer: Customer,
}

#[derive(SimpleObject)]
pub struct DeleteCustomerPayload {
    pub deleted_customer_ids: Vec<ID>,
    pub deleted_user_ids: Vec<ID>,
    pub detached_entitlement_ids: Vec<ID>,
}

impl CreateCustomerInput {
    /// The command, with `parentId` decoded.
    pub fn into_command(self) -> ApiResult<NewCustomer> {
        let parent_id = self
            .parent_id
            .map(|id| ids::expect_id(&id, "parentId"))
            .transpose()?;
        Ok(NewCustomer {
            parent_id,
            number: self.number,
            title: self.title,
            info: self.info,
            email: self.email,
            phone: self.phone,
            country: self.country,
            state: self.state,
            city: self.city,
            address: self.address,
            address2: self.address2,
            zip: self.zip,
            external_id: self.external_id,
        })
    }
}

impl From<UpdateCustomerInput> for CustomerChanges {
    fn from(input: UpdateCustomerInput) -> Self {
        CustomerChanges {
            number: input.number.into(),
            title: input.title.into(),
            info: input.info.into(),
            email: input.email.into(),
            phone: input.phone.into(),
            country: input.country.into(),
            state: input.state.into(),
            city: input.city.into(),
            address: input.address.into(),
            address2: input.address2.into(),
            zip: input.zip.into(),
            external_id: input.external_id.into(),
        }
    }
}
