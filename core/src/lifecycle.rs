//! A user's status and every move between statuses, in one place. Nothing
//! else changes a status: callers ask `next` and store what it answers, so
//! no flag can disagree with the status.

use std::fmt;

crate::text_enum! {
    pub enum UserStatus {
        /// Must open the link in the validation or activation email.
        PendingEmailValidation = "PENDING_EMAIL_VALIDATION",
        /// Waits in the approval queue.
        PendingApproval = "PENDING_APPROVAL",
        Active = "ACTIVE",
        /// Cannot sign in; its sessions stop working at once.
        Suspended = "SUSPENDED",
    }
}

impl UserStatus {
    /// Whether the user has proven the address it signed up or was invited with.
    pub fn email_verified(self) -> bool {
        self != UserStatus::PendingEmailValidation
    }

    /// Only active users sign in.
    pub fn may_sign_in(self) -> bool {
        self == UserStatus::Active
    }
}

/// What happened to a user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The validation link of a self sign-up was used.
    EmailValidated { tenant_requires_approval: bool },
    /// The activation link of an invited user was used to set a password.
    Activated,
    /// An administrator approved a request.
    Approved,
    /// An administrator set the status outright.
    StatusSet(UserStatus),
}

/// A move the lifecycle does not allow from the current status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused {
    pub from: UserStatus,
    pub event: Event,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.event {
            Event::EmailValidated { .. } => "validate the email of",
            Event::Activated => "activate",
            Event::Approved => "approve",
            Event::StatusSet(_) => "change the status of",
        };
        write!(f, "cannot {what} a user who is {}", self.from.as_str())
    }
}

/// A move the lifecycle allowed. Only [`next`] makes one, and storing a
/// status takes one, so no other code can choose a status to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    from: UserStatus,
    to: UserStatus,
}

impl Transition {
    pub fn from(self) -> UserStatus {
        self.from
    }

    pub fn to(self) -> UserStatus {
        self.to
    }
}

/// The move `event` makes from `from`, or why it cannot happen now.
pub fn next(from: UserStatus, event: Event) -> Result<Transition, Refused> {
    use UserStatus::*;
    let to = match (from, event) {
        (
            PendingEmailValidation,
            Event::EmailValidated {
                tenant_requires_approval: true,
            },
        ) => PendingApproval,
        (
            PendingEmailValidation,
            Event::EmailValidated {
                tenant_requires_approval: false,
            },
        ) => Active,
        (PendingEmailValidation, Event::Activated) => Active,
        (PendingApproval, Event::Approved) => Active,
        // An administrator may set any status; setting the current one is a no-op.
        (_, Event::StatusSet(to)) => to,
        _ => return Err(Refused { from, event }),
    };
    Ok(Transition { from, to })
}

#[cfg(test)]
mod tests {
    use super::*;
    use UserStatus::*;

    /// The status a move ends in, checking that it starts where it was asked.
    fn next(from: UserStatus, event: Event) -> Result<UserStatus, Refused> {
        super::next(from, event).map(|transition| {
            assert_eq!(transition.from(), from);
            transition.to()
        })
    }

    fn events() -> Vec<Event> {
        let mut events = vec![
            Event::EmailValidated {
                tenant_requires_approval: true,
            },
            Event::EmailValidated {
                tenant_requires_approval: false,
            },
            Event::Activated,
            Event::Approved,
        ];
        events.extend(UserStatus::ALL.map(Event::StatusSet));
        events
    }

    /// The whole table: every status against every event.
    fn expected(from: UserStatus, event: Event) -> Option<UserStatus> {
        match (from, event) {
            (
                PendingEmailValidation,
                Event::EmailValidated {
                    tenant_requires_approval,
                },
            ) => Some(if tenant_requires_approval {
                PendingApproval
            } else {
                Active
            }),
            (PendingEmailValidation, Event::Activated) => Some(Active),
            (PendingApproval, Event::Approved) => Some(Active),
            (_, Event::StatusSet(to)) => Some(to),
            _ => None,
        }
    }

    #[test]
    fn every_status_against_every_event() {
        let mut allowed = 0;
        let mut refused = 0;
        for from in UserStatus::ALL {
            for event in events() {
                match (next(from, event), expected(from, event)) {
                    (Ok(to), Some(want)) => {
                        assert_eq!(to, want, "{from:?} + {event:?}");
                        allowed += 1;
                    }
                    (Err(refusal), None) => {
                        assert_eq!(refusal, Refused { from, event });
                        assert!(refusal.to_string().contains(from.as_str()));
                        refused += 1;
                    }
                    (got, want) => panic!("{from:?} + {event:?}: got {got:?}, want {want:?}"),
                }
            }
        }
        // 4 statuses x 8 events: 4 lifecycle moves plus 16 administrator settings.
        assert_eq!((allowed, refused), (20, 12));
    }

    #[test]
    fn the_documented_paths() {
        // Sign-up without approval, and with it.
        let validated = next(
            PendingEmailValidation,
            Event::EmailValidated {
                tenant_requires_approval: false,
            },
        );
        assert_eq!(validated, Ok(Active));
        let waiting = next(
            PendingEmailValidation,
            Event::EmailValidated {
                tenant_requires_approval: true,
            },
        )
        .unwrap();
        assert_eq!(waiting, PendingApproval);
        assert_eq!(next(waiting, Event::Approved), Ok(Active));
        // Invitation.
        assert_eq!(next(PendingEmailValidation, Event::Activated), Ok(Active));
        // Suspension and back.
        assert_eq!(next(Active, Event::StatusSet(Suspended)), Ok(Suspended));
        assert_eq!(next(Suspended, Event::StatusSet(Active)), Ok(Active));
        // A link used twice, an approval of an active user.
        assert!(next(Active, Event::Activated).is_err());
        assert!(next(Active, Event::Approved).is_err());
        assert!(
            next(
                Suspended,
                Event::EmailValidated {
                    tenant_requires_approval: false
                }
            )
            .is_err()
        );
    }

    #[test]
    fn only_active_users_sign_in_and_names_round_trip() {
        for status in UserStatus::ALL {
            assert_eq!(status.may_sign_in(), status == Active);
            assert_eq!(UserStatus::parse(status.as_str()), Some(status));
        }
        assert!(!PendingEmailValidation.email_verified());
        assert!(Suspended.email_verified());
        assert_eq!(UserStatus::parse("nope"), None);
    }
}
