//! The store's test suite. Every case of `writes`, `queries`, `concurrency`, `schema`, `fleet`,
//! `circuits`, `families`, `outbox` and `postings` runs on SQLite (a temp file) and on PostgreSQL (a fresh database
//! per test, from `SELF_HEALING_TEST_POSTGRES_URL`; skipped with one line when it is unset, failed when
//! `SELF_HEALING_REQUIRE_POSTGRES=1`). Backend-specific cases (outages) follow.

mod store {
    pub(crate) mod circuits;
    pub(crate) mod concurrency;
    pub(crate) mod families;
    pub(crate) mod fleet;
    pub(crate) mod harness;
    pub(crate) mod outage;
    pub(crate) mod outbox;
    pub(crate) mod postings;
    pub(crate) mod queries;
    pub(crate) mod schema;
    pub(crate) mod writes;
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
    circuits::notices_round_trip,
    circuits::a_waiting_poller_wakes_on_news,
    circuits::three_instances_share_circuits_commands_and_learning,
    fleet::a_second_instance_prefers_what_the_first_learned,
    fleet::advice_health_and_ping_round_trip,
    writes::events_round_trip,
    writes::patterns_are_incremented_from_steps,
    writes::healer_end_to_end,
    queries::filters_and_keyset_pagination,
    queries::aggregations,
    queries::sites_checklist,
    queries::health_checks_and_notifications,
    queries::retention_prunes_in_batches,
    families::families_group_events_by_fingerprint,
    families::resolved_families_regress_when_seen_again,
    concurrency::eight_writers_ten_thousand_events_each,
    concurrency::four_instances_bump_the_same_patterns,
    writes::long_messages_are_capped_and_text_round_trips,
    schema::schema_matches_migrations,
    schema::migrations_are_idempotent,
    writes::close_reports_and_refuses,
    writes::full_buffer_folds_and_counts,
    outbox::outbox_put_is_once_per_key_and_round_trips,
    outbox::outbox_claims_due_entries_oldest_first_with_a_lease,
    outbox::outbox_settles_pending_entries_only,
    outbox::outbox_lists_retries_and_drops,
    outbox::outbox_prune_removes_old_delivered_entries_only,
    outbox::concurrent_claims_never_share_an_entry,
    outbox::outbox_outage_is_an_error,
    outbox::events_keep_their_call_key,
    postings::postings_lists_agree_with_a_scan,
    postings::the_migration_backfill_rebuilds_postings,
    postings::retention_trims_postings,
);

mod sqlite_only {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn outage_while_another_connection_holds_the_write_lock() {
        super::store::outage::sqlite_locked(&super::TestDb::sqlite()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn file_deleted_or_replaced_while_running() {
        super::store::outage::sqlite_file_deleted_or_replaced(&super::TestDb::sqlite()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn log_stays_short_under_steady_writes() {
        super::store::writes::sqlite_log_stays_short_under_steady_writes(&super::TestDb::sqlite())
            .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn in_memory_database_works() {
        super::store::schema::in_memory().await;
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
        super::store::schema::bad_urls().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn permanent_postgres_errors_fail_at_once() {
        super::store::schema::permanent_postgres_errors().await;
    }
}
