use self_healing::{heal, site};

async fn fetch() -> Result<u32, std::io::Error> {
    Ok(1)
}

#[tokio::main]
async fn main() {
    let _ = heal(site!(category = "api"), || fetch()).await;
    let _ = heal(
        site!(
            source = "fetchRates",
            fallback = backup,
            cache = "30s",
            cache_skip(id)
        ),
        || fetch(),
    )
    .await;
    let _ = heal(site!(source = "fetchRates", retries = 3), || fetch()).await;
    let _ = heal(site!(source = "todo", category = "networking"), || fetch()).await;
    let _ = heal(
        site!(source = "fetchRates", timeout = "0s", max_attempts = 0),
        || fetch(),
    )
    .await;
}
