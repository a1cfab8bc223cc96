//! The store's test suite. Every case in `cases` runs on SQLite (a temp file) and on PostgreSQL
//! (a fresh database per test, from `SELF_HEALING_TEST_POSTGRES_URL`; skipped with one line when
//! it is unset, failed when `SELF_HEALING_REQUIRE_POSTGRES=1`). Backend-specific cases (outages)
//! follow.

mod store {
    pub(crate) mod cases;
    pub(crate) mod fleet;
    pub(crate) mod harness;
    pub(crate) mod outage;
}

use store::harness::TestDb;

/// One `#[tokio::test]` per case and backend.
macro_rules! on_both_backends {
    ($($module:ident :: $case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let db = super::TestDb::sqlite();
                    super::store::$module::$case(&db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(db) = super::TestDb::postgres().await else { return };
                    super::store::$module::$case(&db).await;
                }
            )*
        }
    };
}

on_both_backends!(
    fleet::a_second_instance_prefers_what_the_first_learned,
    fleet::advice_health_and_ping_round_trip,
    cases::events_round_trip,
    cases::patterns_are_incremented_from_steps,
    cases::healer_end_to_end,
    cases::filters_and_keyset_pagination,
    cases::aggregations,
    cases::sites_checklist,
    cases::health_checks_and_notifications,
    cases::retention_prunes_in_batches,
    cases::eight_writers_ten_thousand_events_each,
    cases::four_instances_bump_the_same_patterns,
    cases::long_messages_are_capped_and_text_round_trips,
    cases::schema_matches_migrations,
    cases::migrations_are_idempotent,
    cases::close_reports_and_refuses,
    cases::full_buffer_folds_and_counts,
);

mod sqlite_only {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn outage_while_another_connection_holds_the_write_lock() {
        super::store::outage::sqlite_locked(&super::TestDb::sqlite()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn in_memory_database_works() {
        super::store::cases::in_memory().await;
    }
}

mod postgres_only {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn outage_connection_cut_mid_load() {
        let Some(db) = super::TestDb::postgres().await else {
            return;
        };
        super::store::outage::postgres_cut(&db).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lazy_store_starts_while_the_database_is_down() {
        let Some(db) = super::TestDb::postgres().await else {
            return;
        };
        super::store::outage::postgres_lazy_start(&db).await;
    }
}

mod bad_urls {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn give_clear_errors() {
        super::store::cases::bad_urls().await;
    }
}
