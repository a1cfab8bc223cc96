//! Server-rendered pages: the dashboard, the login form, errors. Templates are compiled by
//! askama and escape every value as HTML.

mod dashboard;
mod login;

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

pub(crate) use dashboard::dashboard;
pub(crate) use login::{login, login_form, logout};

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
}

/// A rendered template, or a plain 500 if rendering failed (it cannot with these templates,
/// but a panic in a handler is worse than a terse page).
fn html(status: StatusCode, rendered: Result<String, askama::Error>) -> Response {
    match rendered {
        Ok(body) => (status, Html(body)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "self-healing dashboard: a template failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the dashboard page could not be rendered",
            )
                .into_response()
        }
    }
}

/// The login form, with an error message if a login failed.
pub(crate) fn login_page(status: StatusCode, error: Option<&str>) -> Response {
    html(status, LoginPage { error }.render())
}

/// An error page.
pub(crate) fn error_page(status: StatusCode, message: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    html(status, ErrorPage { title, message }.render())
}
