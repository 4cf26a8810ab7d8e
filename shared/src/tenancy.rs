//! Which account and Region an event's resources live in, and the credentials to act
//! there (docs/organization.md).
//!
//! **Single-account mode** (the default, `ACCOUNTS` unset): a function acts only in the
//! account and Region it runs in; an event stamped with another is skipped.
//!
//! **Hub mode** (`ACCOUNTS` set): one deployment serves the accounts it lists (or, with
//! `org`, every account the hub's event bus lets in). An event from member account A in
//! Region R is acted on with credentials from AssumeRole into A's member role, cached per
//! account until shortly before they expire, and clients for R built once per process.
//! The hub's own account is served with the function's own role in the hub's Region,
//! and through its member role in other Regions (the hub's roles are bound to its
//! Region). Notifications, queues and metrics stay the hub's.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{
    error::CredentialsError, future, ProvideCredentials, SharedCredentialsProvider,
};
use aws_credential_types::Credentials;

use crate::aws::Aws;
use crate::config::{err, ConfigError, Env};
use crate::error::{Error, Result};
use crate::events::Envelope;

/// Which accounts a hub serves besides its own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Accounts {
    /// Single-account mode: only the account the function runs in.
    #[default]
    Single,
    /// These member accounts.
    List(BTreeSet<String>),
    /// Any account of the organization (the hub's event bus policy lets only those in).
    Org,
}

impl Accounts {
    /// `ACCOUNTS`: empty, `org`, or comma-separated 12-digit account ids.
    pub fn parse(raw: Option<&str>) -> std::result::Result<Self, ConfigError> {
        let Some(raw) = raw.map(str::trim).filter(|r| !r.is_empty()) else {
            return Ok(Accounts::Single);
        };
        if raw.eq_ignore_ascii_case("org") {
            return Ok(Accounts::Org);
        }
        let mut ids = BTreeSet::new();
        for id in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if id.len() != 12 || !id.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err(
                    "ACCOUNTS",
                    &format!(
                        "must be `org` or 12-digit account ids separated by commas, got {id:?}"
                    ),
                ));
            }
            ids.insert(id.to_string());
        }
        Ok(Accounts::List(ids))
    }
}

/// The hub-mode settings every function shares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tenancy {
    pub accounts: Accounts,
    /// The function's role name in every member account.
    pub role_name: String,
    pub external_id: Option<String>,
    /// Regions a scheduled check fans out to (empty: the hub's own Region).
    pub regions: Vec<String>,
}

impl Tenancy {
    pub fn from_env(function: &str, env: &Env) -> std::result::Result<Self, ConfigError> {
        let accounts = Accounts::parse(env.get("ACCOUNTS").as_deref())?;
        let role_name = env.string_or("MEMBER_ROLE_NAME", &format!("ecs-autopilot-{function}"));
        // IAM role names: 1-64 of [\w+=,.@-].
        if role_name.len() > 64
            || !role_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
        {
            return Err(err(
                "MEMBER_ROLE_NAME",
                &format!("is not an IAM role name: {role_name:?}"),
            ));
        }
        let external_id = env.get("MEMBER_EXTERNAL_ID");
        if external_id
            .as_ref()
            .is_some_and(|id| id.len() < 2 || id.len() > 1224)
        {
            return Err(err(
                "MEMBER_EXTERNAL_ID",
                "must be 2 to 1224 characters (sts:ExternalId)",
            ));
        }
        let regions = env.list("REGIONS");
        if let Some(bad) = regions.iter().find(|r| {
            !r.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        }) {
            return Err(err("REGIONS", &format!("not a Region name: {bad:?}")));
        }
        Ok(Tenancy {
            accounts,
            role_name,
            external_id,
            regions,
        })
    }

    pub fn is_hub(&self) -> bool {
        self.accounts != Accounts::Single
    }

    /// The member role of `account`.
    pub fn role_arn(&self, partition: &str, account: &str) -> String {
        format!("arn:{partition}:iam::{account}:role/{}", self.role_name)
    }
}

/// Where one event's resources live, as admitted by [`admit`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Scope {
    /// The account (`None` when neither the event nor the function's ARN says).
    pub account: Option<String>,
    /// The Region (`None`: the function's own).
    pub region: Option<String>,
    /// Another account than the hub's: acted on through its member role.
    pub member: bool,
    /// Hub mode: notifications name the account and Region.
    pub hub: bool,
}

/// Why an event is not acted on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip {
    /// The log line's message.
    pub log: &'static str,
    pub reason: String,
}

/// The account and Region an event is about: the envelope's, except GuardDuty findings,
/// whose `detail.accountId`/`detail.region` name the resources (a GuardDuty administrator
/// account receives its members' findings stamped with its own account).
pub fn stamped(event: &Envelope) -> (String, String) {
    let from_detail = |key: &str| {
        (event.source == "aws.guardduty")
            .then(|| event.detail.get(key).and_then(|v| v.as_str()))
            .flatten()
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    (
        from_detail("accountId").unwrap_or_else(|| event.account.clone()),
        from_detail("region").unwrap_or_else(|| event.region.clone()),
    )
}

/// Where `event` is acted on, or why it is skipped. Pure, so the rule is pinned by unit
/// tests. `home_account`/`home_region` are the function's own (from its ARN).
pub fn admit(
    event: &Envelope,
    home_account: Option<&str>,
    home_region: Option<&str>,
    accounts: &Accounts,
) -> std::result::Result<Scope, Skip> {
    let (account, region) = stamped(event);
    let differs =
        |theirs: &str, ours: Option<&str>| !theirs.is_empty() && ours.is_some_and(|o| o != theirs);
    let ours = |theirs: String, home: Option<&str>| {
        Some(theirs)
            .filter(|t| !t.is_empty())
            .or(home.map(str::to_string))
    };
    if *accounts == Accounts::Single {
        for (what, theirs, home) in [
            ("account", &account, home_account),
            ("region", &region, home_region),
        ] {
            if differs(theirs, home) {
                return Err(Skip {
                    log: "skipped: event for another account or region",
                    reason: format!(
                        "event {} is for {what} {theirs}, this function runs in {}",
                        event.id,
                        home.unwrap_or_default()
                    ),
                });
            }
        }
        return Ok(Scope {
            account: ours(account, home_account),
            region: ours(region, home_region),
            member: false,
            hub: false,
        });
    }
    let foreign = differs(&account, home_account);
    let allowed = match accounts {
        Accounts::Org => true,
        Accounts::List(ids) => ids.contains(&account),
        Accounts::Single => false,
    };
    if foreign && !allowed {
        return Err(Skip {
            log: "skipped: account not in ACCOUNTS",
            reason: format!(
                "event {} is for account {account}, not in ACCOUNTS",
                event.id
            ),
        });
    }
    // The hub's own roles are bound to its Region (as in single-account mode): in its
    // other Regions the hub account is reached through its member role, like any member.
    let member = foreign || differs(&region, home_region);
    Ok(Scope {
        account: ours(account, home_account),
        region: ours(region, home_region),
        member,
        hub: true,
    })
}

tokio::task_local! {
    static CURRENT: Scope;
}

/// Runs `work` with `scope` as the event's scope (read by [`current`]).
pub async fn within<F: std::future::Future>(scope: Scope, work: F) -> F::Output {
    CURRENT.scope(scope, work).await
}

/// The scope of the event being handled, when there is one.
pub fn current() -> Option<Scope> {
    CURRENT.try_with(Clone::clone).ok()
}

/// Credentials are renewed this long before they expire, so a call never starts with
/// credentials about to lapse (AssumeRole's default session is an hour).
const RENEW_BEFORE: Duration = Duration::from_secs(5 * 60);

/// One member account's credentials: AssumeRole on first use, then the same credentials
/// until [`RENEW_BEFORE`] their expiry. Shared by the clients of every Region of the
/// account, so a warm process assumes each role at most once an hour. A failure is never
/// cached.
#[derive(Debug)]
struct Member {
    sts: aws_sdk_sts::Client,
    account: String,
    role_arn: String,
    session_name: String,
    external_id: Option<String>,
    cached: Mutex<Option<Credentials>>,
}

impl Member {
    async fn credentials(&self) -> Result<Credentials> {
        let fresh = |c: &Credentials| {
            c.expiry()
                .is_none_or(|at| at > SystemTime::now() + RENEW_BEFORE)
        };
        if let Some(c) = self.cached.lock().expect("not poisoned").as_ref() {
            if fresh(c) {
                return Ok(c.clone());
            }
        }
        let out = self
            .sts
            .assume_role()
            .role_arn(&self.role_arn)
            .role_session_name(&self.session_name)
            .set_external_id(self.external_id.clone())
            .send()
            .await
            .map_err(|e| {
                let e = crate::error::aws("sts", "AssumeRole", e);
                let (code, message, retryable) = (
                    e.aws_code().unwrap_or_default().to_string(),
                    e.aws_message().unwrap_or_default().to_string(),
                    e.is_retryable(),
                );
                Error::Aws {
                    service: "sts",
                    operation: "AssumeRole",
                    code,
                    message: format!(
                        "cannot assume {} for account {}: {message}",
                        self.role_arn, self.account
                    ),
                    retryable,
                }
            })?;
        let c = out.credentials().ok_or_else(|| Error::Aws {
            service: "sts",
            operation: "AssumeRole",
            code: "NoCredentials".into(),
            message: format!(
                "cannot assume {} for account {}: no credentials in the answer",
                self.role_arn, self.account
            ),
            retryable: true,
        })?;
        let expiry = SystemTime::try_from(*c.expiration()).ok();
        let creds = Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_string()),
            expiry,
            "ecs-autopilot-member-role",
        );
        tracing::info!(account = %self.account, role_arn = %self.role_arn, "assumed member role");
        *self.cached.lock().expect("not poisoned") = Some(creds.clone());
        Ok(creds)
    }
}

/// The SDK's view of a [`Member`]: every client of the account asks it.
#[derive(Debug, Clone)]
struct MemberProvider(Arc<Member>);

impl ProvideCredentials for MemberProvider {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            self.0
                .credentials()
                .await
                .map_err(CredentialsError::provider_error)
        })
    }
}

type Build<D> = Box<dyn Fn(&Aws) -> D + Send + Sync>;

/// A member account (`None`: the hub's own) and a Region.
type Place = (Option<String>, String);

/// A function's dependencies per (account, Region): the hub's own, built at cold start,
/// and the others built on first use and kept for the life of the process.
pub struct Fleet<D> {
    aws: Aws,
    tenancy: Tenancy,
    function: String,
    /// One STS client for every member (built on the first AssumeRole).
    sts: std::sync::OnceLock<aws_sdk_sts::Client>,
    build: Build<D>,
    home: Arc<D>,
    scoped: Mutex<HashMap<Place, Arc<D>>>,
    members: Mutex<HashMap<String, Arc<Member>>>,
}

impl<D> Fleet<D> {
    pub fn new(
        aws: Aws,
        function: &str,
        tenancy: Tenancy,
        build: impl Fn(&Aws) -> D + Send + Sync + 'static,
    ) -> Self {
        let home = Arc::new(build(&aws));
        Fleet {
            aws,
            tenancy,
            function: function.to_string(),
            sts: std::sync::OnceLock::new(),
            build: Box::new(build),
            home,
            scoped: Mutex::new(HashMap::new()),
            members: Mutex::new(HashMap::new()),
        }
    }

    /// The function's own adapters (its account and Region).
    pub fn aws(&self) -> &Aws {
        &self.aws
    }

    /// The dependencies for the event being handled (see [`within`]); the hub's own
    /// outside any event.
    pub async fn current(&self) -> Result<Arc<D>> {
        match current() {
            Some(scope) => self.deps(&scope).await,
            None => Ok(self.home.clone()),
        }
    }

    /// The dependencies for `scope`; for a member account, its credentials are checked
    /// (assumed if needed) first, so a missing role fails the event with a clear error
    /// before any other call.
    pub async fn deps(&self, scope: &Scope) -> Result<Arc<D>> {
        let home_region = self.aws.region();
        let region = scope
            .region
            .clone()
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| home_region.clone());
        if !scope.member && region == home_region {
            return Ok(self.home.clone());
        }
        let member = match (&scope.account, scope.member) {
            (Some(account), true) => {
                let m = self.member(account);
                m.credentials().await.inspect_err(|_| {
                    crate::metrics::emit(&self.function, "assume-role", "failed")
                })?;
                Some(m)
            }
            _ => None,
        };
        let key = (member.as_ref().map(|m| m.account.clone()), region.clone());
        if let Some(d) = self.scoped.lock().expect("not poisoned").get(&key) {
            return Ok(d.clone());
        }
        let creds = member.map(|m| SharedCredentialsProvider::new(MemberProvider(m)));
        let d = Arc::new((self.build)(&self.aws.scoped(&region, creds)));
        self.scoped
            .lock()
            .expect("not poisoned")
            .insert(key, d.clone());
        Ok(d)
    }

    fn member(&self, account: &str) -> Arc<Member> {
        let mut members = self.members.lock().expect("not poisoned");
        members
            .entry(account.to_string())
            .or_insert_with(|| {
                Arc::new(Member {
                    sts: self.sts.get_or_init(|| self.aws.sts()).clone(),
                    account: account.to_string(),
                    role_arn: self.tenancy.role_arn(&self.aws.partition(), account),
                    session_name: format!("ecs-autopilot-{}", self.function),
                    external_id: self.tenancy.external_id.clone(),
                    cached: Mutex::new(None),
                })
            })
            .clone()
    }
}

#[cfg(test)]
mod tests;
