//! Organizations: the accounts a hub in `ACCOUNTS=org` mode fans its scheduled checks
//! out to. ListAccounts answers only in the management account or a delegated
//! administrator (docs/organization.md).

use aws_sdk_organizations::types::{AccountState, AccountStatus};
use aws_sdk_organizations::Client;

use crate::error::{aws, Result};

#[derive(Clone, Debug)]
pub struct Organizations {
    client: Client,
}

impl Organizations {
    pub fn new(client: Client) -> Self {
        Organizations { client }
    }

    /// The ids of the organization's active accounts (suspended and closing ones are
    /// left out: nothing there can be acted on).
    pub async fn active_accounts(&self) -> Result<Vec<String>> {
        let mut ids = vec![];
        let mut pages = self.client.list_accounts().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| aws("organizations", "ListAccounts", e))?;
            for a in page.accounts() {
                // `State` replaces `Status` (retired 2026-09-09); either says ACTIVE.
                let active = match (a.state(), a.status()) {
                    (Some(state), _) => *state == AccountState::Active,
                    (None, Some(status)) => *status == AccountStatus::Active,
                    (None, None) => true,
                };
                if let (true, Some(id)) = (active, a.id()) {
                    ids.push(id.to_string());
                }
            }
        }
        ids.sort();
        Ok(ids)
    }
}
