//! The answers of batches: one result per item, in the order given, with
//! what it made or changed or its error.

use async_graphql::SimpleObject;

use super::{Customer, User};
use crate::actions::batches::Outcome;
use crate::actions::users::CreatedUser;
use crate::error::ApiError;
use canopy_core::store::customers::CustomerRow;
use canopy_core::store::users::UserRow;

/// Why an item failed: the code, message and field the single mutation
/// would have answered. An item of an atomic batch that failed only
/// because another did answers FAILED_PRECONDITION.
#[derive(SimpleObject)]
pub struct ItemError {
    pub code: String,
    pub message: String,
    /// The input field at fault, as the single mutation names it.
    pub field: Option<String>,
}

impl From<ApiError> for ItemError {
    fn from(error: ApiError) -> Self {
        let told = error.told();
        ItemError {
            code: told.code.to_owned(),
            message: told.message,
            field: told.field,
        }
    }
}

/// One item of `createUsers`.
#[derive(SimpleObject)]
pub struct CreateUsersResult {
    /// Its place in `inputs`, from 0.
    pub index: i32,
    pub user: Option<User>,
    /// As `createUser` answers it (DISPLAY_ACTIVATION_LINK).
    pub activation_link: Option<String>,
    pub error: Option<ItemError>,
}

/// One item of `createCustomers`.
#[derive(SimpleObject)]
pub struct CustomerResult {
    pub index: i32,
    pub customer: Option<Customer>,
    pub error: Option<ItemError>,
}

/// One item of `updateUsers`.
#[derive(SimpleObject)]
pub struct UserResult {
    pub index: i32,
    pub user: Option<User>,
    pub error: Option<ItemError>,
}

#[derive(SimpleObject)]
pub struct CreateUsersPayload {
    pub results: Vec<CreateUsersResult>,
    /// How many items succeeded (none when an atomic batch failed).
    pub succeeded: i32,
    pub failed: i32,
}

#[derive(SimpleObject)]
pub struct CreateCustomersPayload {
    pub results: Vec<CustomerResult>,
    pub succeeded: i32,
    pub failed: i32,
}

#[derive(SimpleObject)]
pub struct UpdateUsersPayload {
    pub results: Vec<UserResult>,
    pub succeeded: i32,
    pub failed: i32,
}

/// Each item's result, by `make` from its place and outcome, and how many
/// succeeded and failed.
fn results<T, R>(
    outcomes: Vec<Outcome<T>>,
    make: impl Fn(i32, Result<T, ItemError>) -> R,
) -> (Vec<R>, i32, i32) {
    let failed = outcomes.iter().filter(|o| o.is_err()).count() as i32;
    let succeeded = outcomes.len() as i32 - failed;
    let results = outcomes
        .into_iter()
        .enumerate()
        .map(|(index, outcome)| make(index as i32, outcome.map_err(ItemError::from)))
        .collect();
    (results, succeeded, failed)
}

fn split<T>(outcome: Result<T, ItemError>) -> (Option<T>, Option<ItemError>) {
    match outcome {
        Ok(made) => (Some(made), None),
        Err(error) => (None, Some(error)),
    }
}

impl From<Vec<Outcome<CreatedUser>>> for CreateUsersPayload {
    fn from(outcomes: Vec<Outcome<CreatedUser>>) -> Self {
        let (results, succeeded, failed) = results(outcomes, |index, outcome| match outcome {
            Ok(created) => CreateUsersResult {
                index,
                user: Some(User(created.user)),
                activation_link: created.activation_link,
                error: None,
            },
            Err(error) => CreateUsersResult {
                index,
                user: None,
                activation_link: None,
                error: Some(error),
            },
        });
        Self {
            results,
            succeeded,
            failed,
        }
    }
}

impl From<Vec<Outcome<CustomerRow>>> for CreateCustomersPayload {
    fn from(outcomes: Vec<Outcome<CustomerRow>>) -> Self {
        let (results, succeeded, failed) = results(outcomes, |index, outcome| {
            let (customer, error) = split(outcome);
            CustomerResult {
                index,
                customer: customer.map(Customer),
                error,
            }
        });
        Self {
            results,
            succeeded,
            failed,
        }
    }
}

impl From<Vec<Outcome<UserRow>>> for UpdateUsersPayload {
    fn from(outcomes: Vec<Outcome<UserRow>>) -> Self {
        let (results, succeeded, failed) = results(outcomes, |index, outcome| {
            let (user, error) = split(outcome);
            UserResult {
                index,
                user: user.map(User),
                error,
            }
        });
        Self {
            results,
            succeeded,
            failed,
        }
    }
}

/// One item of `updateUsers`: the user and its changes.
#[derive(async_graphql::InputObject)]
pub struct UserUpdate {
    pub id: async_graphql::ID,
    pub input: super::UpdateUserInput,
}

/// A batch's cost against the caller's budget: each item as much as the
/// single mutation with the same selection.
pub fn cost(items: usize, child_complexity: usize) -> usize {
    items.saturating_mul(child_complexity.saturating_add(1))
}
