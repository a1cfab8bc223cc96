#![deny(warnings)]
//! Together with `#[tracing::instrument]`, before and after `#[self_healing]`.

use self_healing::{Rejected, self_healing};

#[derive(Debug, thiserror::Error)]
#[error("billing failed")]
struct BillingError;

impl From<Rejected> for BillingError {
    fn from(_: Rejected) -> Self {
        BillingError
    }
}

#[tracing::instrument]
#[self_healing(category = "api")]
async fn charge_before(customer: String, cents: u64) -> Result<u64, BillingError> {
    tracing::info!("charging");
    Ok(cents)
}

#[self_healing(category = "api")]
#[tracing::instrument(skip(customer), err)]
async fn charge_after(customer: String, cents: u64) -> Result<u64, BillingError> {
    let _ = customer;
    Ok(cents * 2)
}

#[tracing::instrument(level = "debug")]
#[self_healing]
fn refund_before(cents: u64) -> Result<u64, BillingError> {
    Ok(cents)
}

#[self_healing]
#[tracing::instrument(ret)]
fn refund_after(cents: u64) -> Result<u64, BillingError> {
    Ok(cents + 1)
}

#[derive(Debug, Default)]
struct Billing {
    invoiced: u32,
}

impl Billing {
    #[tracing::instrument]
    #[self_healing(category = "api")]
    async fn quote(&self, id: u32) -> Result<u32, BillingError> {
        Ok(id)
    }

    // On `&mut self` async methods, `#[tracing::instrument]` goes below `#[self_healing]`: above
    // it, its `async move` block would move `self` into the first attempt.
    #[self_healing(category = "api")]
    #[tracing::instrument]
    async fn invoice(&mut self, id: u32) -> Result<u32, BillingError> {
        self.invoiced += 1;
        Ok(id)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(charge_before("ada".into(), 5).await.unwrap(), 5);
    assert_eq!(charge_after("ada".into(), 5).await.unwrap(), 10);
    assert_eq!(refund_before(3).unwrap(), 3);
    assert_eq!(refund_after(3).unwrap(), 4);
    let mut billing = Billing::default();
    assert_eq!(billing.quote(8).await.unwrap(), 8);
    assert_eq!(billing.invoice(9).await.unwrap(), 9);
    assert_eq!(billing.invoiced, 1);
}
