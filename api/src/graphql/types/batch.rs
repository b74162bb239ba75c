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

fn tally<T>(outcomes: &[Outcome<T>]) -> (i32, i32) {
    let failed = outcomes.iter().filter(|o| o.is_err()).count() as i32;
    (outcomes.len() as i32 - failed, failed)
}

impl From<Vec<Outcome<CreatedUser>>> for CreateUsersPayload {
    fn from(outcomes: Vec<Outcome<CreatedUser>>) -> Self {
        let (succeeded, failed) = tally(&outcomes);
        let results = outcomes
            .into_iter()
            .enumerate()
            .map(|(index, outcome)| match outcome {
                Ok(created) => CreateUsersResult {
                    index: index as i32,
                    user: Some(User(created.user)),
                    activation_link: created.activation_link,
                    error: None,
                },
                Err(error) => CreateUsersResult {
                    index: index as i32,
                    user: None,
                    activation_link: None,
                    error: Some(error.into()),
                },
            })
            .collect();
        Self {
            results,
            succeeded,
            failed,
        }
    }
}

impl From<Vec<Outcome<CustomerRow>>> for CreateCustomersPayload {
    fn from(outcomes: Vec<Outcome<CustomerRow>>) -> Self {
        let (succeeded, failed) = tally(&outcomes);
        let results = outcomes
            .into_iter()
            .enumerate()
            .map(|(index, outcome)| {
                let (customer, error) = match outcome {
                    Ok(row) => (Some(Customer(row)), None),
                    Err(error) => (None, Some(error.into())),
                };
                CustomerResult {
                    index: index as i32,
                    customer,
                    error,
                }
            })
            .collect();
        Self {
            results,
            succeeded,
            failed,
        }
    }
}

impl From<Vec<Outcome<UserRow>>> for UpdateUsersPayload {
    fn from(outcomes: Vec<Outcome<UserRow>>) -> Self {
        let (succeeded, failed) = tally(&outcomes);
        let results = outcomes
            .into_iter()
            .enumerate()
            .map(|(index, outcome)| {
                let (user, error) = match outcome {
                    Ok(row) => (Some(User(row)), None),
                    Err(error) => (None, Some(error.into())),
                };
                UserResult {
                    index: index as i32,
                    user,
                    error,
                }
            })
            .collect();
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
