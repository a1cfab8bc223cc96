//! The login form: a POST of the admin token sets the session cookie; logging out ends the
//! session on the server and clears the cookie.

use axum::Form;
use axum::extract::State;
use axum::http::{Extensions, HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use tokio::time::Instant;

use crate::auth::{COOKIE, cookie, login_cookie, logout_cookie, throttled_message};
use crate::state::DashboardState;
use crate::throttle::{Client, retry_after_secs};

/// The login form's fields.
#[derive(Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    token: String,
}

/// `GET /platform/system-health/login`.
pub(crate) async fn login_form() -> Response {
    super::login_page(StatusCode::OK, None)
}

fn over_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// `POST /platform/system-health/login`: 303 to the dashboard with the session cookie, or 401
/// with the form again; 429 with `Retry-After` when the client sent too many wrong tokens (see
/// [`crate::throttle`]).
pub(crate) async fn login(
    State(state): State<DashboardState>,
    headers: HeaderMap,
    extensions: Extensions,
    Form(form): Form<LoginForm>,
) -> Response {
    let Some(admin) = &state.inner.admin else {
        // Nothing to log into: loopback clients see the dashboard without a token.
        return Redirect::to(crate::BASE).into_response();
    };
    let client = Client::of(&extensions);
    let presented = form.token.trim().as_bytes();
    match state
        .inner
        .throttle
        .attempt(client, Instant::now(), || admin.token_matches(presented))
    {
        Ok(true) => {}
        Ok(false) => {
            return super::login_page(
                StatusCode::UNAUTHORIZED,
                Some("That is not the admin token."),
            );
        }
        Err(wait) => {
            let mut response = super::login_page(
                StatusCode::TOO_MANY_REQUESTS,
                Some(&throttled_message(wait)),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, retry_after_secs(wait).into());
            return response;
        }
    }
    let secure = state.inner.secure_cookie || over_https(&headers);
    let cookie = login_cookie(&state, admin, secure);
    let mut response = Redirect::to(crate::BASE).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

/// `POST /platform/system-health/logout`: ends the session on the server (the old cookie is
/// refused from now on, even if a copy of it survives in the browser), clears the cookie, back to
/// the login form.
pub(crate) async fn logout(State(state): State<DashboardState>, headers: HeaderMap) -> Response {
    if let (Some(admin), Some(value)) = (&state.inner.admin, cookie(&headers, COOKIE)) {
        admin.revoke(value);
    }
    let mut response = Redirect::to(&format!("{}/login", crate::BASE)).into_response();
    if let Ok(v) = HeaderValue::from_str(&logout_cookie()) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}
