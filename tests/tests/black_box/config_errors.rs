//! Invalid configuration fails at start, exit code 64, naming every bad key and its source.

use std::time::Duration;

use herald_tests::process::HeraldProcess;

async fn fails_with(test: &str, args: &[&str], env: &[(&str, &str)], needles: &[&str]) {
    let mut process = HeraldProcess::spawn(test, "herald", args, env);
    assert_eq!(
        process.exit_code(Duration::from_secs(20)).await,
        Some(64),
        "{}",
        process.stderr()
    );
    let stderr = process.stderr();
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "stderr does not mention {needle:?}:\n{stderr}"
        );
    }
}

#[tokio::test]
async fn bad_edge_settings_are_all_reported() {
    fails_with(
        "bad_edge_settings_are_all_reported",
        &["edge"],
        &[
            ("HERALD_EDGE__LISTEN", "not-an-address"),
            ("HERALD_EDGE__HUBS", "hub-without-port"),
            ("HERALD_EDGE__OUTBOX_FRAMES", "0"),
            ("HERALD_CLUSTER__KEY", "short"),
            ("HERALD_RUNTIME__WORKER_THREADS", "0"),
        ],
        &[
            "runtime.worker_threads (from HERALD_RUNTIME__WORKER_THREADS): \"0\" is not a whole number above 0",
            "edge.listen (from HERALD_EDGE__LISTEN): \"not-an-address\" is not a socket address",
            "edge.hubs (from HERALD_EDGE__HUBS): \"hub-without-port\" is not host:port",
            "edge.outbox_frames (from HERALD_EDGE__OUTBOX_FRAMES)",
            "cluster.key (from HERALD_CLUSTER__KEY): is 5 characters long",
            "edge.hub_ca: the edge must trust its hubs",
        ],
    )
    .await;
}

#[tokio::test]
async fn a_hub_without_an_app_or_cluster_key_refuses_to_start() {
    fails_with(
        "a_hub_without_an_app_or_cluster_key_refuses_to_start",
        &["hub", "--worker-threads", "many"],
        &[],
        &[
            "runtime.worker_threads (from --worker-threads): \"many\" is not a whole number above 0",
            "cluster.key: is required",
            "HERALD_CLUSTER__KEY",
            "app: no app configured",
            "REVERB_APP_ID",
        ],
    )
    .await;
}

#[tokio::test]
async fn config_file_mistakes_are_named() {
    let dir = herald_tests::binary::target_dir()
        .join("test-logs")
        .join("config_file_mistakes_are_named");
    std::fs::create_dir_all(&dir).unwrap();
    let typo = dir.join("typo.toml");
    std::fs::write(&typo, "[hub]\nhttp_listn = \"127.0.0.1:1\"\n").unwrap();
    let typo = typo.display().to_string();
    fails_with(
        "config_file_mistakes_are_named",
        &["hub", "--config", &typo],
        &[],
        &[
            "hub.http_listn is not a configuration key (did you mean hub.http_listen?)",
            &typo,
        ],
    )
    .await;

    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "[cluster]\nkey = \"0123456789abcdef0123\"\n[[apps]]\nid = \"1\"\nkey = \"k\"\n[hub]\nhistory_max_events = \"many\"\n",
    )
    .unwrap();
    let bad = bad.display().to_string();
    fails_with(
        "config_file_mistakes_are_named",
        &["hub", "--config", &bad],
        &[],
        &[
            "apps[0].secret: is required",
            "hub.history_max_events (in the config file): \"many\"",
        ],
    )
    .await;
}

#[tokio::test]
async fn a_herald_variable_that_names_no_key_is_an_error() {
    // A typo must not silently leave the setting at its default.
    fails_with(
        "a_herald_variable_that_names_no_key_is_an_error",
        &["hub"],
        &[
            ("HERALD_CLUSTER__KEY", "0123456789abcdef0123"),
            ("REVERB_APP_ID", "1"),
            ("REVERB_APP_KEY", "k"),
            ("REVERB_APP_SECRET", "s"),
            ("HERALD_HUB__HTTP_LISTN", "127.0.0.1:0"),
            ("HERALD_WHATEVER", "1"),
        ],
        &[
            "HERALD_HUB__HTTP_LISTN: names no configuration key (did you mean HERALD_HUB__HTTP_LISTEN?)",
            "HERALD_WHATEVER: names no configuration key",
        ],
    )
    .await;
}

#[tokio::test]
async fn one_app_setting_without_credentials_is_an_error_on_a_hub() {
    fails_with(
        "one_app_setting_without_credentials_is_an_error_on_a_hub",
        &["hub"],
        &[
            ("HERALD_CLUSTER__KEY", "0123456789abcdef0123"),
            ("HERALD_APP__ENABLED", "false"),
        ],
        &[
            "app.id: is required",
            "HERALD_APP__ID",
            "app.secret: is required",
        ],
    )
    .await;
}

#[tokio::test]
async fn config_env_lists_every_key_with_its_default() {
    let output = herald_tests::dev::herald(&["config", "env"], Duration::from_secs(20)).await;
    assert!(output.status.success());
    let table = String::from_utf8(output.stdout).unwrap();
    assert!(
        table.contains("hub.http_listen\tHERALD_HUB__HTTP_LISTEN\t-\t0.0.0.0:8081\t"),
        "{table}"
    );
    assert!(
        table.contains("app.secret\tHERALD_APP__SECRET\tREVERB_APP_SECRET\trequired\t"),
        "{table}"
    );
}

#[tokio::test]
async fn bad_webhook_endpoints_stop_the_hub_naming_the_key() {
    let test = "bad_webhook_endpoints_stop_the_hub_naming_the_key";
    let cases = [
        (
            r#"[{"event_types": ["channel_occupied"]}]"#,
            "app.webhooks[0].url (from HERALD_APP__WEBHOOKS): is required",
        ),
        (
            r#"[{"url": "https://example.com/hooks", "event_types": ["channel_ocupied"]}]"#,
            "app.webhooks[0].event_types (from HERALD_APP__WEBHOOKS): \"channel_ocupied\" is not a webhook event type",
        ),
        (
            r#"[{"url": "ftp://example.com/hooks"}]"#,
            "app.webhooks[0].url (from HERALD_APP__WEBHOOKS): \"ftp://example.com/hooks\" is not an http:// or https:// URL",
        ),
    ];
    for (hooks, message) in cases {
        fails_with(
            test,
            &[
                "hub",
                "--http-listen",
                "127.0.0.1:0",
                "--link-listen",
                "127.0.0.1:0",
            ],
            &[
                ("HERALD_CLUSTER__KEY", "test-cluster-key-0123456789"),
                ("HERALD_APP__ID", "1"),
                ("HERALD_APP__KEY", "k"),
                ("HERALD_APP__SECRET", "s"),
                ("HERALD_APP__WEBHOOKS", hooks),
            ],
            &[message],
        )
        .await;
    }
}

#[tokio::test]
async fn unusable_certificate_settings_are_named() {
    let test = "unusable_certificate_settings_are_named";
    let dir = herald_tests::binary::target_dir()
        .join("test-logs")
        .join(test);
    std::fs::create_dir_all(&dir).unwrap();
    let not_pem = dir.join("not.pem");
    std::fs::write(&not_pem, "not a certificate").unwrap();
    let not_pem = not_pem.display().to_string();
    fails_with(
        test,
        &["hub"],
        &[
            ("HERALD_CLUSTER__KEY", "0123456789abcdef0123"),
            ("REVERB_APP_ID", "1"),
            ("REVERB_APP_KEY", "k"),
            ("REVERB_APP_SECRET", "s"),
            ("HERALD_HUB__HTTP_TLS_CERT", &not_pem),
            ("HERALD_HUB__HTTP_TLS_KEY", &not_pem),
        ],
        &[&format!(
            "hub.http_tls_cert (from HERALD_HUB__HTTP_TLS_CERT): {not_pem} holds no PEM certificate"
        )],
    )
    .await;
    fails_with(
        test,
        &[
            "edge",
            "--hub",
            "127.0.0.1:1",
            "--hub-cert-sha256",
            &"ab".repeat(32),
        ],
        &[
            ("HERALD_CLUSTER__KEY", "0123456789abcdef0123"),
            ("HERALD_EDGE__TLS_CERT", "/nonexistent/edge.crt"),
        ],
        &["edge.tls_key: is required when edge.tls_cert is set"],
    )
    .await;
}
