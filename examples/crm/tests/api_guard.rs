//! The CRM API is guarded as the dashboard is: JSON bodies only (415), same origin only (403),
//! the admin token when one is set (401), loopback clients and host names without one; and the
//! recipient of a test email stays one string.

mod common;

use reqwest::StatusCode;

const TOKEN: &str = "crm-test-admin-token-0123456789";

#[tokio::test(start_paused = true)]
async fn the_api_needs_json_the_same_origin_and_the_dashboards_auth() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut config = common::config(
        format!("sqlite://{}", dir.path().join("store.db").display()),
        dir.path().join("crm.db").display().to_string(),
    );
    config.max_calls = Some(200);
    let demo = self_healing_crm::run(config).await?;
    let client = reqwest::Client::new();

    // No admin token: loopback clients that name a loopback host.
    let (addr, stop, server) = common::serve(&demo, None).await?;
    let url = |path: &str| format!("http://{addr}{path}");
    let post = |path: &str, content_type: &str, body: &'static str| {
        client
            .post(url(path))
            .header("content-type", content_type)
            .body(body)
    };
    for path in [
        "/api/test-email",
        "/api/onboarding/invite",
        "/api/seed-templates",
    ] {
        // What a page of another site can send without a preflight: refused.
        let r = post(path, "text/plain", r#"{"to":"a@example.com"}"#)
            .send()
            .await?;
        assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "{path}");
        let r = post(
            path,
            "application/x-www-form-urlencoded",
            "to=a@example.com",
        )
        .send()
        .await?;
        assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "{path}");
        let r = post(path, "application/json", "{}")
            .header("origin", "http://evil.example")
            .send()
            .await?;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
        let r = post(path, "application/json", "{}")
            .header("sec-fetch-site", "cross-site")
            .send()
            .await?;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
        // DNS rebinding: a loopback peer, but a foreign host name.
        let r = post(path, "application/json", "{}")
            .header("host", "evil.example")
            .send()
            .await?;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
    let r = client
        .get(url("/api/onboarding/session/x"))
        .header("origin", "http://evil.example")
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // A recipient that tries to add fields is not an address.
    let r = post(
        "/api/test-email",
        "application/json",
        r#"{"to":"a\",\"bcc\":\"x@evil"}"#,
    )
    .send()
    .await?;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // The page's own origin is fine; the fault layer may answer 502 now and then.
    let mut sent = None;
    for _ in 0..10 {
        let r = post(
            "/api/test-email",
            "application/json; charset=utf-8",
            r#"{"to":"lead@example.com"}"#,
        )
        .header("origin", format!("http://{addr}"))
        .send()
        .await?;
        if r.status().is_success() {
            sent = Some(serde_json::from_str::<serde_json::Value>(&r.text().await?)?);
            break;
        }
        assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
    }
    assert_eq!(
        sent.expect("sent within 10 tries")["sent"],
        "lead@example.com"
    );
    let _ = stop.send(());
    server.await??;

    // With an admin token: the bearer token, from loopback too, as the dashboard.
    let (addr, stop, server) = common::serve(&demo, Some(TOKEN)).await?;
    let seed = |bearer: Option<&str>| {
        let mut b = client
            .post(format!("http://{addr}/api/seed-templates"))
            .header("content-type", "application/json")
            .body("{}");
        if let Some(t) = bearer {
            b = b.bearer_auth(t);
        }
        b.send()
    };
    assert_eq!(seed(None).await?.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        seed(Some("crm-test-admin-token-012345678X"))
            .await?
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let mut status = StatusCode::BAD_GATEWAY;
    for _ in 0..10 {
        status = seed(Some(TOKEN)).await?.status();
        if status != StatusCode::BAD_GATEWAY {
            break;
        }
    }
    assert_eq!(status, StatusCode::OK);
    let _ = stop.send(());
    server.await??;
    Ok(())
}
