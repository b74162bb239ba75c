//! Who may do what (DESIGN "Who may do what"), as pure rules: a caller, the
//! part of the tenant it reaches, the scopes it holds, and the decisions
//! made from them. Nothing here reads the database or knows GraphQL, so
//! every rule is tested alone and lives only here.
//!
//! - An API key holds its scopes, in the whole tenant.
//! - A tenant administrator holds every scope, in the whole tenant.
//! - A customer user reaches itself and its own customer; an administrator
//!   of customer C also reaches C's subtree (customers, users,
//!   administrators, approvals).
//!
//! Two rules keep powers from growing:
//! - a caller grants only what it holds (an API key's scopes, an
//!   administrator's subtree);
//! - a caller acts on a user in ways that could hand it that user's account
//!   (its email, its links, its status, its deletion) only when it holds
//!   every power the user holds: [`covers`].
//!
//! Something out of reach answers exactly as something that does not
//! exist: [`Decision::Hidden`].

use crate::id::{CustomerId, TenantId, UserId};
use crate::path::Path;

crate::text_enum! {
    /// What an API key may do. A tenant administrator holds every scope.
    #[derive(PartialOrd, Ord)]
    pub enum Scope {
        CustomersRead = "CUSTOMERS_READ",
        CustomersWrite = "CUSTOMERS_WRITE",
        UsersRead = "USERS_READ",
        UsersWrite = "USERS_WRITE",
        JobsRead = "JOBS_READ",
        JobsWrite = "JOBS_WRITE",
        ApiKeysWrite = "API_KEYS_WRITE",
    }
}

/// The scopes of a customer administrator, within its subtrees.
pub const ADMINISTRATOR_SCOPES: [Scope; 4] = [
    Scope::CustomersRead,
    Scope::CustomersWrite,
    Scope::UsersRead,
    Scope::UsersWrite,
];

/// The scopes of a customer user who administers nothing: it reads its own
/// customer and itself, and changes its own names and phone.
pub const MEMBER_SCOPES: [Scope; 3] = [Scope::CustomersRead, Scope::UsersRead, Scope::UsersWrite];

crate::text_enum! {
    /// A user's place in its tenant.
    pub enum Role {
        TenantAdmin = "TENANT_ADMIN",
        CustomerUser = "CUSTOMER_USER",
    }
}

/// What someone may do: the scopes it holds and where they apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Powers {
    pub scopes: Vec<Scope>,
    pub reach: Reach,
}

/// The part of a tenant a caller may see and change.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Reach {
    /// API keys (by scope) and tenant administrators.
    Tenant,
    /// A customer user: itself, its own customer, and the subtrees of the
    /// customers it administers.
    Customer(CustomerReach),
}

/// A customer user's reach. Paths are the customers' tree paths: their ids
/// from the root down, dot-separated (`12.40.57`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CustomerReach {
    pub user_id: UserId,
    /// Its own customer: id and path.
    pub own_customer: Option<(CustomerId, Path)>,
    /// Paths of the customers it administers (their subtrees are in reach).
    pub administered: Vec<Path>,
}

impl CustomerReach {
    /// Whether `path` lies in an administered subtree.
    pub fn manages_path(&self, path: &Path) -> bool {
        self.administered.iter().any(|root| path.within(root))
    }

    /// Whether the customer at `path` is in sight: administered, or its own.
    pub fn sees(&self, id: CustomerId, path: &Path) -> bool {
        self.own_customer
            .as_ref()
            .is_some_and(|(own, _)| *own == id)
            || self.manages_path(path)
    }

    /// The customers at the top of what it sees (what `rootsOnly` lists):
    /// the administered customers not below another one it administers,
    /// and its own customer unless that is already in an administered
    /// subtree.
    pub fn view_roots(&self) -> Vec<CustomerId> {
        let mut roots: Vec<CustomerId> = self
            .administered
            .iter()
            .filter(|path| {
                !self
                    .administered
                    .iter()
                    .any(|other| other != *path && path.within(other))
            })
            .map(Path::id)
            .collect();
        if let Some((id, path)) = &self.own_customer
            && !self.manages_path(path)
        {
            roots.push(*id);
        }
        roots.sort_unstable();
        roots.dedup();
        roots
    }
}

/// What the rules need to know of a user: who it is, and what it holds.
#[derive(Clone, Debug)]
pub struct UserFacts {
    pub id: UserId,
    pub role: Role,
    /// The path of its customer (none for a tenant administrator).
    pub customer: Option<(CustomerId, Path)>,
    /// The paths of the customers it administers.
    pub administered: Vec<Path>,
}

impl UserFacts {
    /// Every power the user holds once signed in.
    pub fn powers(&self) -> Powers {
        match self.role {
            Role::TenantAdmin => Powers {
                scopes: Scope::ALL.to_vec(),
                reach: Reach::Tenant,
            },
            Role::CustomerUser => Powers {
                scopes: if self.administered.is_empty() {
                    MEMBER_SCOPES.to_vec()
                } else {
                    ADMINISTRATOR_SCOPES.to_vec()
                },
                reach: Reach::Customer(CustomerReach {
                    user_id: self.id,
                    own_customer: self.customer.clone(),
                    administered: self.administered.clone(),
                }),
            },
        }
    }
}

/// An authenticated caller, always inside one tenant.
#[derive(Clone, Debug)]
pub struct Caller {
    pub tenant_id: TenantId,
    pub principal: Principal,
}

#[derive(Clone, Debug)]
pub enum Principal {
    ApiKey {
        id: i64,
        scopes: Vec<Scope>,
        /// Its own budget of operation cost per minute, if it has one.
        rate_limit: Option<u32>,
    },
    /// A signed-in user, holding its powers.
    User {
        id: UserId,
        session_id: i64,
        powers: Powers,
    },
}

impl Caller {
    pub fn scopes(&self) -> &[Scope] {
        match &self.principal {
            Principal::ApiKey { scopes, .. } => scopes,
            Principal::User { powers, .. } => &powers.scopes,
        }
    }

    pub fn reach(&self) -> &Reach {
        const TENANT: &Reach = &Reach::Tenant;
        match &self.principal {
            Principal::ApiKey { .. } => TENANT,
            Principal::User { powers, .. } => &powers.reach,
        }
    }

    /// The limits of a customer user's reach; `None` for callers who reach
    /// the whole tenant.
    pub fn limits(&self) -> Option<&CustomerReach> {
        match self.reach() {
            Reach::Tenant => None,
            Reach::Customer(reach) => Some(reach),
        }
    }

    /// The signed-in user, if the caller is one.
    pub fn user_id(&self) -> Option<UserId> {
        match self.principal {
            Principal::User { id, .. } => Some(id),
            Principal::ApiKey { .. } => None,
        }
    }

    /// The API key calling, if the caller is one.
    pub fn key_id(&self) -> Option<i64> {
        match self.principal {
            Principal::ApiKey { id, .. } => Some(id),
            Principal::User { .. } => None,
        }
    }

    /// Who acts, as a record of the act keeps it.
    pub fn actor(&self) -> Actor {
        Actor {
            user_id: self.user_id(),
            key_id: self.key_id(),
        }
    }

    pub fn has(&self, scope: Scope) -> bool {
        self.scopes().contains(&scope)
    }

    /// The first of `scopes` the caller lacks.
    pub fn lacks(&self, scopes: &[Scope]) -> Option<Scope> {
        scopes.iter().copied().find(|s| !self.has(*s))
    }

    pub fn holds_every_scope(&self) -> bool {
        self.lacks(&Scope::ALL).is_none()
    }
}

/// Who took an action: a signed-in user, or an API key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Actor {
    pub user_id: Option<UserId>,
    pub key_id: Option<i64>,
}

impl Actor {
    /// No one known: a public request, a command on the server, or a
    /// record since pruned.
    pub const NOBODY: Actor = Actor {
        user_id: None,
        key_id: None,
    };
}

/// A rule's answer. `Hidden` answers as for something that does not exist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    Forbidden(String),
    Hidden,
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        *self == Decision::Allowed
    }

    fn forbid(reason: impl Into<String>) -> Self {
        Decision::Forbidden(reason.into())
    }

    /// This decision, unless it allows; then `next`.
    pub fn and_then(self, next: impl FnOnce() -> Decision) -> Decision {
        match self {
            Decision::Allowed => next(),
            refused => refused,
        }
    }
}

/// Which entries of the audit log a caller reads.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AuditSight {
    /// Every entry of the tenant.
    Tenant,
    /// The entries of these customers' subtrees.
    Subtrees(Vec<CustomerId>),
}

/// The audit log is read by administrators: a caller holding every scope
/// in the whole tenant (a tenant administrator, or a key holding all)
/// reads all of it; a customer administrator the entries of the subtrees
/// it administers; anyone else nothing.
pub fn audit_sight(caller: &Caller) -> Result<AuditSight, Decision> {
    match caller.limits() {
        None if caller.holds_every_scope() => Ok(AuditSight::Tenant),
        Some(reach) if !reach.administered.is_empty() => Ok(AuditSight::Subtrees(
            reach.administered.iter().map(Path::id).collect(),
        )),
        _ => Err(Decision::forbid(
            "the audit log is read by tenant administrators (or a key holding every scope) \
             and customer administrators",
        )),
    }
}

/// Whether the caller sees the customer with `id` at `path`.
pub fn sees_customer(caller: &Caller, id: CustomerId, path: &Path) -> bool {
    caller.limits().is_none_or(|reach| reach.sees(id, path))
}

/// Whether the caller reads and changes the customer at `path` and what
/// lies below it.
pub fn manages_customer(caller: &Caller, path: &Path) -> bool {
    caller.limits().is_none_or(|reach| reach.manages_path(path))
}

/// Changing a customer: hidden when out of sight, forbidden when only seen.
pub fn change_customer(caller: &Caller, id: CustomerId, path: &Path) -> Decision {
    if manages_customer(caller, path) {
        Decision::Allowed
    } else if sees_customer(caller, id, path) {
        Decision::forbid("you may not change this customer")
    } else {
        Decision::Hidden
    }
}

/// Moving or deleting a customer: as [`change_customer`], and a customer
/// administrator may not move or delete a customer it was given itself,
/// only what lies below.
pub fn restructure_customer(caller: &Caller, id: CustomerId, path: &Path) -> Decision {
    change_customer(caller, id, path).and_then(|| match caller.limits() {
        Some(reach) if reach.administered.iter().any(|root| root == path) => Decision::forbid(
            "only what lies below the customers you administer may be moved or deleted",
        ),
        _ => Decision::Allowed,
    })
}

/// The ancestors of the customer at `path` that the caller may learn of,
/// from the top down: every one for tenant-wide callers; for a customer
/// user, those inside the subtrees it administers. A customer's `depth`
/// is the length of this list, so nothing above a caller's reach shows.
pub fn visible_ancestors(caller: &Caller, path: &Path) -> Vec<CustomerId> {
    path.ancestor_paths()
        .into_iter()
        .filter(|ancestor| manages_customer(caller, ancestor))
        .map(|ancestor| ancestor.id())
        .collect()
}

/// Whether the caller sees the user.
pub fn sees_user(caller: &Caller, user: &UserFacts) -> bool {
    match caller.limits() {
        None => true,
        Some(reach) => reach.user_id == user.id || manages_user_in(reach, user),
    }
}

fn manages_user_in(reach: &CustomerReach, user: &UserFacts) -> bool {
    user.customer
        .as_ref()
        .is_some_and(|(_, path)| reach.manages_path(path))
}

/// Whether `caller` holds every power in `powers`: every scope, over at
/// least the same part of the tenant.
pub fn covers(caller: &Caller, powers: &Powers) -> bool {
    if caller.lacks(&powers.scopes).is_some() {
        return false;
    }
    match (caller.reach(), &powers.reach) {
        (Reach::Tenant, _) => true,
        (Reach::Customer(_), Reach::Tenant) => false,
        (Reach::Customer(mine), Reach::Customer(theirs)) => {
            theirs
                .administered
                .iter()
                .all(|path| mine.manages_path(path))
                && theirs
                    .own_customer
                    .as_ref()
                    .is_none_or(|(_, path)| mine.manages_path(path))
        }
    }
}

/// Managing another user: its email, links, status, names, deletion. Hidden
/// when out of sight; forbidden when seen but not managed, or when the
/// user holds a power the caller does not (taking over its account would
/// hand the caller that power).
pub fn manage_user(caller: &Caller, user: &UserFacts) -> Decision {
    let managed = match caller.limits() {
        None => true,
        Some(reach) => manages_user_in(reach, user),
    };
    if !managed {
        return if sees_user(caller, user) {
            Decision::forbid("you may not manage this user")
        } else {
            Decision::Hidden
        };
    }
    if covers(caller, &user.powers()) {
        Decision::Allowed
    } else if user.role == Role::TenantAdmin {
        Decision::forbid("acting on a tenant administrator needs every scope")
    } else {
        Decision::forbid(
            "this user holds powers you do not hold (scopes, or customers beyond your reach); \
             a caller holding them manages it",
        )
    }
}

/// Creating a user: the caller must hold every power the new user would,
/// since the caller may hand out (or show itself) its activation link.
/// `customer` is where a customer user goes: its id and path.
pub fn create_user(caller: &Caller, role: Role, customer: Option<(CustomerId, &Path)>) -> Decision {
    if let Some((id, path)) = customer {
        let placed = change_customer(caller, id, path);
        if !placed.is_allowed() {
            return placed;
        }
    }
    let new_user = UserFacts {
        id: UserId(0),
        role,
        customer: customer.map(|(id, path)| (id, path.clone())),
        administered: Vec::new(),
    };
    if covers(caller, &new_user.powers()) {
        Decision::Allowed
    } else if role == Role::TenantAdmin {
        Decision::forbid(
            "creating a tenant administrator needs every scope (a tenant administrator, or a key holding all)",
        )
    } else {
        Decision::forbid(format!(
            "creating a user needs {}: the scopes the user will hold",
            scope_list(&MEMBER_SCOPES)
        ))
    }
}

/// Making a user an administrator of the customer at `path`: the caller
/// grants the administrator's scopes over that subtree, so it must hold
/// them there.
pub fn grant_administration(caller: &Caller, id: CustomerId, path: &Path) -> Decision {
    change_customer(caller, id, path).and_then(|| match caller.lacks(&ADMINISTRATOR_SCOPES) {
        None => Decision::Allowed,
        Some(_) => Decision::forbid(format!(
            "making an administrator grants {}; you must hold them",
            scope_list(&ADMINISTRATOR_SCOPES)
        )),
    })
}

/// A new API key may hold only scopes its creator holds.
pub fn grant_scopes(caller: &Caller, scopes: &[Scope]) -> Decision {
    match caller.lacks(scopes) {
        None => Decision::Allowed,
        Some(scope) => Decision::forbid(format!(
            "cannot grant {} without holding it",
            scope.as_str()
        )),
    }
}

/// Changing the tenant's own settings needs every scope.
pub fn change_tenant(caller: &Caller) -> Decision {
    if caller.holds_every_scope() && caller.limits().is_none() {
        Decision::Allowed
    } else {
        Decision::forbid("changing the tenant needs every scope")
    }
}

fn scope_list(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(scopes: &[Scope]) -> Caller {
        Caller {
            tenant_id: TenantId(1),
            principal: Principal::ApiKey {
                id: 1,
                scopes: scopes.to_vec(),
                rate_limit: None,
            },
        }
    }

    fn p(text: &str) -> Path {
        Path::parse(text).unwrap()
    }

    fn ids(numbers: &[i64]) -> Vec<CustomerId> {
        numbers.iter().copied().map(CustomerId).collect()
    }

    fn user(id: i64, role: Role, customer: Option<&str>, administered: &[&str]) -> UserFacts {
        UserFacts {
            id: UserId(id),
            role,
            customer: customer.map(|path| (p(path).id(), p(path))),
            administered: administered.iter().map(|path| p(path)).collect(),
        }
    }

    fn signed_in(facts: &UserFacts) -> Caller {
        Caller {
            tenant_id: TenantId(1),
            principal: Principal::User {
                id: facts.id,
                session_id: 1,
                powers: facts.powers(),
            },
        }
    }

    fn tenant_admin() -> UserFacts {
        user(1, Role::TenantAdmin, None, &[])
    }

    // The tree: 1 ─ 2 ─ 3, and 1 ─ 4; 5 is another root.
    fn admin_of_2() -> UserFacts {
        user(10, Role::CustomerUser, Some("1.2"), &["1.2"])
    }

    #[test]
    fn subtrees_are_matched_by_whole_labels() {
        let reach = CustomerReach {
            user_id: UserId(1),
            own_customer: None,
            administered: vec![p("1.2")],
        };
        assert!(reach.manages_path(&p("1.2")));
        assert!(reach.manages_path(&p("1.2.5")));
        assert!(!reach.manages_path(&p("1.22")), "a sibling sharing digits");
        assert!(!reach.manages_path(&p("1")), "the parent");
    }

    #[test]
    fn a_key_acts_on_a_tenant_administrator_only_with_every_scope() {
        let admin = tenant_admin();
        let users_only = key(&[Scope::UsersRead, Scope::UsersWrite]);
        assert!(matches!(
            manage_user(&users_only, &admin),
            Decision::Forbidden(_)
        ));
        let all_but_one = key(&Scope::ALL[..6]);
        assert!(!manage_user(&all_but_one, &admin).is_allowed());
        assert!(manage_user(&key(&Scope::ALL), &admin).is_allowed());
        assert!(manage_user(&signed_in(&tenant_admin()), &admin).is_allowed());
    }

    #[test]
    fn creating_a_tenant_administrator_needs_every_scope() {
        let users_only = key(&[Scope::UsersRead, Scope::UsersWrite]);
        assert!(!create_user(&users_only, Role::TenantAdmin, None).is_allowed());
        assert!(create_user(&key(&Scope::ALL), Role::TenantAdmin, None).is_allowed());
        assert!(!create_user(&signed_in(&admin_of_2()), Role::TenantAdmin, None).is_allowed());
        assert!(create_user(&signed_in(&tenant_admin()), Role::TenantAdmin, None).is_allowed());
    }

    #[test]
    fn creating_a_customer_user_needs_the_scopes_it_will_hold() {
        let writer = key(&[Scope::UsersRead, Scope::UsersWrite]);
        assert!(matches!(
            create_user(
                &writer,
                Role::CustomerUser,
                Some((CustomerId(3), &p("1.2.3")))
            ),
            Decision::Forbidden(_)
        ));
        assert!(
            create_user(
                &key(&MEMBER_SCOPES),
                Role::CustomerUser,
                Some((CustomerId(3), &p("1.2.3")))
            )
            .is_allowed()
        );
        let admin = signed_in(&admin_of_2());
        assert!(
            create_user(
                &admin,
                Role::CustomerUser,
                Some((CustomerId(3), &p("1.2.3")))
            )
            .is_allowed()
        );
        assert_eq!(
            create_user(&admin, Role::CustomerUser, Some((CustomerId(5), &p("5")))),
            Decision::Hidden
        );
    }

    #[test]
    fn a_customer_administrator_acts_only_on_users_it_covers() {
        let caller = signed_in(&admin_of_2());
        let below = user(20, Role::CustomerUser, Some("1.2.3"), &[]);
        assert!(manage_user(&caller, &below).is_allowed());
        let below_admin_inside = user(21, Role::CustomerUser, Some("1.2.3"), &["1.2.3"]);
        assert!(manage_user(&caller, &below_admin_inside).is_allowed());
        let below_admin_elsewhere = user(22, Role::CustomerUser, Some("1.2.3"), &["5"]);
        assert!(matches!(
            manage_user(&caller, &below_admin_elsewhere),
            Decision::Forbidden(_)
        ));
        let sibling = user(23, Role::CustomerUser, Some("1.4"), &[]);
        assert_eq!(manage_user(&caller, &sibling), Decision::Hidden);
        assert_eq!(manage_user(&caller, &tenant_admin()), Decision::Hidden);
        // A key with the administrator's scopes covers any administrator,
        // one with fewer does not.
        assert!(manage_user(&key(&ADMINISTRATOR_SCOPES), &below_admin_elsewhere).is_allowed());
        assert!(!manage_user(&key(&MEMBER_SCOPES), &below_admin_inside).is_allowed());
        assert!(manage_user(&key(&MEMBER_SCOPES), &below).is_allowed());
    }

    #[test]
    fn a_plain_user_manages_nobody_but_sees_itself() {
        let plain = user(30, Role::CustomerUser, Some("1.2"), &[]);
        let caller = signed_in(&plain);
        assert!(sees_user(&caller, &plain));
        assert!(matches!(
            manage_user(&caller, &plain),
            Decision::Forbidden(_)
        ));
        let colleague = user(31, Role::CustomerUser, Some("1.2"), &[]);
        assert_eq!(manage_user(&caller, &colleague), Decision::Hidden);
        assert!(sees_customer(&caller, CustomerId(2), &p("1.2")));
        assert!(!manages_customer(&caller, &p("1.2")));
        assert!(matches!(
            change_customer(&caller, CustomerId(2), &p("1.2")),
            Decision::Forbidden(_)
        ));
        assert_eq!(
            change_customer(&caller, CustomerId(3), &p("1.2.3")),
            Decision::Hidden
        );
    }

    #[test]
    fn administration_and_scopes_are_granted_only_by_holders() {
        let admin = signed_in(&admin_of_2());
        assert!(grant_administration(&admin, CustomerId(3), &p("1.2.3")).is_allowed());
        assert_eq!(
            grant_administration(&admin, CustomerId(4), &p("1.4")),
            Decision::Hidden
        );
        let no_users_write = key(&[
            Scope::CustomersRead,
            Scope::CustomersWrite,
            Scope::UsersRead,
        ]);
        assert!(matches!(
            grant_administration(&no_users_write, CustomerId(3), &p("1.2.3")),
            Decision::Forbidden(_)
        ));
        assert!(grant_scopes(&key(&[Scope::JobsRead]), &[Scope::JobsRead]).is_allowed());
        assert!(!grant_scopes(&key(&[Scope::JobsRead]), &[Scope::JobsWrite]).is_allowed());
        assert!(!grant_scopes(&admin, &[Scope::ApiKeysWrite]).is_allowed());
        assert!(change_tenant(&key(&Scope::ALL)).is_allowed());
        assert!(!change_tenant(&key(&Scope::ALL[..6])).is_allowed());
        assert!(!change_tenant(&admin).is_allowed());
    }

    #[test]
    fn an_administrator_restructures_only_below_what_it_was_given() {
        let admin = signed_in(&admin_of_2());
        assert!(restructure_customer(&admin, CustomerId(3), &p("1.2.3")).is_allowed());
        assert!(matches!(
            restructure_customer(&admin, CustomerId(2), &p("1.2")),
            Decision::Forbidden(_)
        ));
        assert_eq!(
            restructure_customer(&admin, CustomerId(1), &p("1")),
            Decision::Hidden
        );
        assert!(restructure_customer(&key(&[]), CustomerId(1), &p("1")).is_allowed());
    }

    #[test]
    fn nothing_above_a_customer_users_reach_shows() {
        let admin = signed_in(&admin_of_2());
        assert_eq!(
            visible_ancestors(&admin, &p("1.2")),
            Vec::<CustomerId>::new()
        );
        assert_eq!(visible_ancestors(&admin, &p("1.2.3")), ids(&[2]));
        assert_eq!(visible_ancestors(&key(&[]), &p("1.2.3")), ids(&[1, 2]));
        // Its own customer's ancestors stay hidden even when it sees them.
        let member_of_1 = user(40, Role::CustomerUser, Some("1"), &["1.2"]);
        assert_eq!(
            visible_ancestors(&signed_in(&member_of_1), &p("1.2.3")),
            ids(&[2])
        );
    }

    #[test]
    fn view_roots_are_the_tops_of_what_a_user_sees() {
        let reach = CustomerReach {
            user_id: UserId(1),
            own_customer: Some((CustomerId(4), p("1.4"))),
            administered: vec![p("1.2"), p("1.2.3"), p("5")],
        };
        assert_eq!(reach.view_roots(), ids(&[2, 4, 5]));
        let inside = CustomerReach {
            own_customer: Some((CustomerId(3), p("1.2.3"))),
            ..reach
        };
        assert_eq!(inside.view_roots(), ids(&[2, 5]));
    }

    #[test]
    fn names_round_trip() {
        for scope in Scope::ALL {
            assert_eq!(Scope::parse(scope.as_str()), Some(scope));
        }
        for role in [Role::TenantAdmin, Role::CustomerUser] {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Scope::parse("ROOT"), None);
    }
}
