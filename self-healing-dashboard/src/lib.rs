//! The `/platform/system-health` dashboard of self-healing: an axum `Router` with the live activity
//! feed, JSON API, health and cron endpoints.
//!
//! This crate is being built.
