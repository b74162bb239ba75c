//! One page of a list, as Relay pages: edges with cursors, the nodes,
//! pageInfo, and a totalCount computed only when a caller asks for it.
//! Every list of the API is a `Connection` of its node type and of what
//! it counts.

use std::borrow::Cow;
use std::future::Future;

use async_graphql::{Context, Object, OutputType, SimpleObject, TypeName};
use canopy_core::store::Count;
use tokio::sync::OnceCell;

use super::PageInfo;
use crate::error::ApiResult;
use crate::pagination::{self, Page, PageInfoParts};

/// How a connection counts the whole list it pages through.
pub trait Total: Send + Sync {
    fn count(&self, ctx: &Context<'_>) -> impl Future<Output = ApiResult<Count>> + Send;
}

/// A node with the cursor that resumes the list after it.
#[derive(SimpleObject)]
#[graphql(name_type)]
pub struct Edge<N: OutputType> {
    pub cursor: String,
    pub node: N,
}

/// `CustomerEdge` for `Customer`, and so on.
impl<N: OutputType> TypeName for Edge<N> {
    fn type_name() -> Cow<'static, str> {
        format!("{}Edge", N::type_name()).into()
    }
}

/// `CustomerConnection` for `Customer`, and so on.
impl<N: OutputType, T: Total> TypeName for Connection<N, T> {
    fn type_name() -> Cow<'static, str> {
        format!("{}Connection", N::type_name()).into()
    }
}

pub struct Connection<N, T> {
    nodes: Vec<N>,
    cursors: Vec<String>,
    info: PageInfoParts,
    total: T,
    /// Counted once, for `totalCount` and `totalCountIsExact` alike.
    counted: OnceCell<Count>,
}

impl<N, T> Connection<N, T> {
    /// The page `page` asked for out of `rows` (fetched with one row more,
    /// to learn whether more follow), each row's cursor made from its sort
    /// key.
    pub fn new<R>(
        page: &Page,
        rows: Vec<R>,
        sort_key: impl Fn(&R) -> String,
        node: impl Fn(R) -> N,
        total: T,
    ) -> Self {
        let (rows, info) = page.finish(rows);
        let cursors = rows
            .iter()
            .map(|row| pagination::encode_cursor(&sort_key(row)))
            .collect();
        Self {
            nodes: rows.into_iter().map(node).collect(),
            cursors,
            info,
            total,
            counted: OnceCell::new(),
        }
    }

    async fn counted(&self, ctx: &Context<'_>) -> ApiResult<Count>
    where
        T: Total,
    {
        self.counted
            .get_or_try_init(|| self.total.count(ctx))
            .await
            .copied()
    }
}

#[Object(name_type)]
impl<N: OutputType + Clone, T: Total> Connection<N, T> {
    async fn edges(&self) -> Vec<Edge<N>> {
        self.nodes
            .iter()
            .zip(&self.cursors)
            .map(|(node, cursor)| Edge {
                cursor: cursor.clone(),
                node: node.clone(),
            })
            .collect()
    }

    async fn nodes(&self) -> Vec<N> {
        self.nodes.clone()
    }

    async fn page_info(&self) -> PageInfo {
        PageInfo::new(self.info, &self.cursors)
    }

    /// Everything the list holds, not just this page. Exact, except for a
    /// search of a tenant's customers with more than 1,000 matches: that
    /// count stops at 1,000 and `totalCountIsExact` is false.
    async fn total_count(&self, ctx: &Context<'_>) -> ApiResult<i64> {
        Ok(self.counted(ctx).await?.value)
    }

    /// False when `totalCount` is a lower bound: the list holds at least
    /// that many, and maybe more (show it as "1,000+").
    async fn total_count_is_exact(&self, ctx: &Context<'_>) -> ApiResult<bool> {
        Ok(self.counted(ctx).await?.exact)
    }
}
