//! A mutation's transaction and its audit entry. `Writer::begin` opens the
//! transaction; the only way to commit it is `Change::commit` with the
//! `Record` of what changed, which writes the entry in that transaction.
//! So no change commits without its entry, and a change that fails leaves
//! none. The events partners learn of (webhooks) are written the same way,
//! in the change's transaction, from the records that name them.

use std::net::IpAddr;
use std::ops::{Deref, DerefMut};

use sqlx::{PgConnection, PgPool, Postgres, Transaction};

use crate::error::{ApiError, ApiResult};
use crate::ids::{self, NodeId, NodeKind};
use canopy_core::authz::{Actor, Caller, Principal};
use canopy_core::events::{EventType, NewEvent};
use canopy_core::id::TenantId;
use canopy_core::path::Path;
use canopy_core::store::audit::{self, NewEntry};
use canopy_core::store::customers::CustomerRow;
use canopy_core::store::idempotency::{self, Claim};
use canopy_core::store::users::UserRow;
use canopy_core::store::webhooks;

/// Where a request came from: its client's address and its id.
#[derive(Clone, Debug)]
pub struct Source {
    pub client_addr: Option<IpAddr>,
    pub request_id: String,
}

/// Who asks for changes, from where, by which operation: the part of an
/// audit entry the request knows before anything happens.
#[derive(Clone, Debug)]
pub struct Origin {
    pub operation: String,
    /// The caller's tenant: an actor of another tenant (a public mutation
    /// sent with a credential of its own) is not named.
    pub tenant_id: Option<TenantId>,
    pub actor: Actor,
    pub session_id: Option<i64>,
    pub client_addr: Option<IpAddr>,
    pub request_id: Option<String>,
    /// The claim on the request's Idempotency-Key: its change commits
    /// only while the claim holds, and marks it.
    pub claim: Option<Claim>,
}

impl Origin {
    /// A command run on the server, by whoever holds its database.
    pub fn command(name: &str) -> Self {
        Self::new(name, None, None, None)
    }

    /// An operation by `caller` (nobody yet, for a public mutation: its
    /// record names who acted once it knows).
    pub fn new(
        operation: impl Into<String>,
        caller: Option<&Caller>,
        client_addr: Option<IpAddr>,
        request_id: Option<String>,
    ) -> Self {
        let (actor, session_id) = match caller.map(|c| &c.principal) {
            Some(Principal::User { id, session_id, .. }) => (
                Actor {
                    user_id: Some(*id),
                    key_id: None,
                },
                Some(*session_id),
            ),
            Some(Principal::ApiKey { id, .. }) => (
                Actor {
                    user_id: None,
                    key_id: Some(*id),
                },
                None,
            ),
            None => (
                Actor {
                    user_id: None,
                    key_id: None,
                },
                None,
            ),
        };
        Self {
            operation: operation.into(),
            tenant_id: caller.map(|c| c.tenant_id),
            actor,
            session_id,
            client_addr,
            request_id,
            claim: None,
        }
    }

    /// Under the claim on the request's Idempotency-Key, if it has one.
    pub fn claimed(mut self, claim: Option<&Claim>) -> Self {
        self.claim = claim.cloned();
        self
    }
}

/// The database, as one operation writes to it.
pub struct Writer<'a> {
    pub pool: &'a PgPool,
    origin: Origin,
}

impl<'a> Writer<'a> {
    pub fn new(pool: &'a PgPool, origin: Origin) -> Self {
        Self { pool, origin }
    }

    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    pub async fn begin(&self) -> ApiResult<Change<'_>> {
        Ok(Change {
            tx: self.pool.begin().await?,
            origin: &self.origin,
        })
    }
}

/// An open transaction of an operation: a connection to change things
/// through, committed only with its record.
pub struct Change<'a> {
    tx: Transaction<'static, Postgres>,
    origin: &'a Origin,
}

impl Deref for Change<'_> {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        &self.tx
    }
}

impl DerefMut for Change<'_> {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.tx
    }
}

impl Change<'_> {
    /// Writes the audit entry and commits.
    pub async fn commit(self, record: Record) -> ApiResult<()> {
        self.commit_all(vec![record]).await
    }

    /// Writes the audit entries of a batch's items (one statement) and
    /// commits; with none, the change made nothing and is rolled back.
    pub async fn commit_all(mut self, records: Vec<Record>) -> ApiResult<()> {
        if records.is_empty() {
            self.tx.rollback().await?;
            return Ok(());
        }
        let origin = self.origin;
        let entries: Vec<NewEntry<'_>> = records
            .iter()
            .map(|record| {
                let (actor, session_id) =
                    record
                        .by
                        .unwrap_or(if origin.tenant_id == Some(record.tenant_id) {
                            (origin.actor, origin.session_id)
                        } else {
                            (Actor::NOBODY, None)
                        });
                NewEntry {
                    tenant_id: record.tenant_id,
                    operation: &origin.operation,
                    actor,
                    session_id,
                    client_addr: origin.client_addr,
                    request_id: origin.request_id.as_deref(),
                    customer_path: record.customer.as_ref(),
                    objects: &record.objects,
                    detail: record.detail.clone(),
                }
            })
            .collect();
        let events: Vec<NewEvent> = records
            .iter()
            .flat_map(|record| {
                record.events.iter().map(|(event_type, data)| NewEvent {
                    tenant_id: record.tenant_id,
                    event_type: *event_type,
                    data: data.clone(),
                })
            })
            .collect();
        match entries.as_slice() {
            // One entry: its events in the same statement.
            [one] if events.iter().all(|e| e.tenant_id == one.tenant_id) => {
                audit::record(&mut self.tx, one, &events).await?
            }
            many => {
                audit::record_many(&mut self.tx, many).await?;
                webhooks::record(&mut self.tx, &events).await?;
            }
        }
        if let Some(claim) = &origin.claim
            && !idempotency::mark_committed(&mut self.tx, claim).await?
        {
            return Err(ApiError::precondition(
                "this request's Idempotency-Key was taken over by a repeat; nothing was changed",
            ));
        }
        self.tx.commit().await?;
        Ok(())
    }
}

/// What an operation changed, for its audit entry: the tenant, the
/// customer concerned (so the administrators of its subtree see it), the
/// objects, and a few facts.
#[derive(Debug)]
#[must_use]
pub struct Record {
    tenant_id: TenantId,
    customer: Option<Path>,
    objects: Vec<String>,
    detail: Option<serde_json::Value>,
    by: Option<(Actor, Option<i64>)>,
    /// What partners learn of the change (webhooks and `events`).
    events: Vec<(EventType, serde_json::Value)>,
}

impl Record {
    pub fn tenant(tenant_id: TenantId) -> Self {
        Self {
            tenant_id,
            customer: None,
            objects: Vec::new(),
            detail: None,
            by: None,
            events: Vec::new(),
        }
    }

    /// An event of the change, naming `id` (and any other `facts`).
    pub fn event(mut self, event_type: EventType, id: String, facts: serde_json::Value) -> Self {
        let mut data = serde_json::json!({ "id": id });
        if let (Some(data), serde_json::Value::Object(facts)) = (data.as_object_mut(), facts) {
            data.extend(facts);
        }
        self.events.push((event_type, data));
        self
    }

    /// A change to `user`, under its customer.
    pub fn for_user(user: &UserRow) -> Self {
        Self::tenant(user.tenant_id)
            .object(user.id)
            .customer(user.customer_path.as_ref())
    }

    /// A new customer, for partners: `customer.created`.
    pub fn customer_created(self, customer: &CustomerRow) -> Self {
        let facts = serde_json::json!({ "parentId": customer.parent_id.map(ids::of) });
        self.event(EventType::CustomerCreated, ids::of(customer.id), facts)
    }

    /// A new user, for partners: `user.created`.
    pub fn user_created(self, user: &UserRow) -> Self {
        let facts = serde_json::json!({
            "customerId": user.customer_id.map(ids::of),
            "status": user.status.as_str(),
        });
        self.event(EventType::UserCreated, ids::of(user.id), facts)
    }

    /// A user's new status, for partners: `user.status_changed`, and
    /// `approval.requested` when it waits for approval.
    pub fn status_changed(self, user: &UserRow) -> Self {
        let status = serde_json::json!({ "status": user.status.as_str() });
        let record = self.event(EventType::UserStatusChanged, ids::of(user.id), status);
        if user.status == canopy_core::lifecycle::UserStatus::PendingApproval {
            let facts = serde_json::json!({ "customerId": user.customer_id.map(ids::of) });
            record.event(EventType::ApprovalRequested, ids::of(user.id), facts)
        } else {
            record
        }
    }

    /// The customer concerned, by its path; nothing when `None`.
    pub fn customer(mut self, path: Option<&Path>) -> Self {
        self.customer = path.cloned();
        self
    }

    pub fn object<I: NodeId>(mut self, id: I) -> Self {
        self.objects.push(ids::reference_of(id));
        self
    }

    pub fn object_of(mut self, kind: NodeKind, id: i64) -> Self {
        self.objects.push(ids::reference(kind, id));
        self
    }

    pub fn objects<I: NodeId>(mut self, objects: impl IntoIterator<Item = I>) -> Self {
        self.objects
            .extend(objects.into_iter().map(ids::reference_of));
        self
    }

    pub fn detail(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        let detail = self
            .detail
            .get_or_insert_with(|| serde_json::Value::Object(Default::default()));
        if let serde_json::Value::Object(map) = detail {
            map.insert(key.to_owned(), value.into());
        }
        self
    }

    /// Who acted, for a public operation that learns it as it goes (the
    /// user who signs in, activates or resets).
    pub fn by_user(mut self, user_id: canopy_core::id::UserId, session_id: Option<i64>) -> Self {
        self.by = Some((
            Actor {
                user_id: Some(user_id),
                key_id: None,
            },
            session_id,
        ));
        self
    }
}
