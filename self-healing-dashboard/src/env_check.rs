//! The dashboard's secrets, checked by `HealerBuilder::from_env` too: a program that builds its
//! healer from the environment learns at startup, naming the variable, that `CRON_SECRET` or
//! `SELF_HEALING_ADMIN_TOKEN` is too short, not when the dashboard is built later.

use self_healing_runtime::__private::{ENV_CHECKS, EnvCheck, EnvLookup};

use crate::state::{ADMIN_TOKEN_VAR, CRON_SECRET_VAR, check_secret};

#[self_healing_runtime::__private::linkme::distributed_slice(ENV_CHECKS)]
#[linkme(crate = self_healing_runtime::__private::linkme)]
static DASHBOARD_SECRETS: EnvCheck = EnvCheck {
    name: "dashboard",
    check,
};

/// Empty values count as unset, as in `DashboardBuilder::from_env`.
fn check(lookup: EnvLookup<'_>) -> Result<(), (&'static str, String)> {
    for var in [ADMIN_TOKEN_VAR, CRON_SECRET_VAR] {
        if let Some(value) = lookup(var).filter(|v| !v.trim().is_empty()) {
            check_secret(var, &value).map_err(|e| (var, e.to_string()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use self_healing_runtime::{ConfigError, HealerBuilder};

    #[test]
    fn from_env_refuses_short_dashboard_secrets_naming_them() {
        for var in ["CRON_SECRET", "SELF_HEALING_ADMIN_TOKEN"] {
            let e = HealerBuilder::from_lookup(|name| (name == var).then(|| "xyz12".to_owned()))
                .unwrap_err();
            match &e {
                ConfigError::Invalid { setting, reason } => {
                    assert_eq!(*setting, var);
                    assert!(reason.contains("16"), "{e}");
                    assert!(!reason.contains("xyz12"), "the secret leaked: {e}");
                }
                other => panic!("{other}"),
            }
        }
        HealerBuilder::from_lookup(|name| {
            (name == "CRON_SECRET").then(|| "a long enough cron secret".to_owned())
        })
        .unwrap();
    }
}
