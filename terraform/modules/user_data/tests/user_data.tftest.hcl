# terraform test: renders the boot script for each role (no provider needed) and asserts the
# settings the deployment depends on. Run: terraform init -backend=false && terraform test

variables {
  region                 = "eu-west-1"
  herald_artifact_url    = "s3://herald-artifacts-example/releases/0.1.0/herald-x86_64-linux"
  herald_artifact_sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
  apps = [
    { id = "app-1", key = "app-key-1", secret_parameter = "/herald/apps/app-1/secret" },
  ]
}

run "edge" {
  command = plan

  variables {
    role = "edge"
    parameters = {
      cluster_key = "/herald/cluster/key"
      hub_ca_cert = "/herald/hub/ca_cert"
    }
    hubs                = ["hub-1.herald.internal:4433", "hub-2.herald.internal:4433"]
    drain_timeout_secs  = 25
    edge_asg_name       = "herald-edge"
    lifecycle_hook_name = "herald-drain"
  }

  assert {
    condition     = strcontains(output.rendered, "ExecStart=/usr/local/bin/herald edge --config /etc/herald/herald.toml")
    error_message = "the unit must run herald edge with the rendered config"
  }
  assert {
    condition     = strcontains(output.rendered, "\nLimitNOFILE=65535\n")
    error_message = "the unit must set LimitNOFILE=65535"
  }
  assert {
    condition     = strcontains(output.rendered, "\nKillSignal=SIGTERM\n") && strcontains(output.rendered, "\nRestart=always\n")
    error_message = "the unit must stop with SIGTERM and always restart"
  }
  assert {
    condition     = output.timeout_stop_secs > 25 && strcontains(output.rendered, "\nTimeoutStopSec=${output.timeout_stop_secs}\n")
    error_message = "TimeoutStopSec must exceed the 25 s drain"
  }
  assert {
    condition     = strcontains(output.rendered, "\nnet.core.somaxconn = 4096\n") && strcontains(output.rendered, "\nnet.ipv4.tcp_max_syn_backlog = 4096\n")
    error_message = "somaxconn and tcp_max_syn_backlog must be 4096, persistently in /etc/sysctl.d"
  }
  assert {
    condition     = strcontains(output.rendered, "/etc/sysctl.d/90-herald.conf") && strcontains(output.rendered, "sysctl --system")
    error_message = "the sysctls must be written to /etc/sysctl.d and applied"
  }
  assert {
    condition     = strcontains(output.rendered, "hubs = [\"hub-1.herald.internal:4433\",\"hub-2.herald.internal:4433\"]")
    error_message = "the edge config must list the hubs"
  }
  assert {
    condition     = strcontains(output.rendered, "\ndrain_timeout_secs = 25\n") && strcontains(output.rendered, "admin_listen = \"0.0.0.0:9080\"")
    error_message = "the edge config must carry the drain timeout and the admin listener"
  }
  assert {
    condition     = strcontains(output.rendered, "--lifecycle-hook-name 'herald-drain'") && strcontains(output.rendered, "systemctl enable --now herald-connections.timer herald-lifecycle.service")
    error_message = "edges must drain on the termination lifecycle hook and publish their connections"
  }
  assert {
    condition     = !strcontains(output.rendered, "REDIS_PASSWORD") && !strcontains(output.rendered, "[hub]")
    error_message = "an edge gets no hub or Redis settings"
  }
  assert {
    condition     = length(output.rendered) < 16384 && base64decode(output.rendered_base64) == output.rendered
    error_message = "user data must fit EC2's 16 KB and round-trip through base64"
  }
}

run "hub" {
  command = plan

  variables {
    role = "hub"
    parameters = {
      cluster_key      = "/herald/cluster/key"
      hub_tls_cert     = "/herald/hub/tls_cert"
      hub_tls_key      = "/herald/hub/tls_key"
      redis_auth_token = "/herald/redis/auth_token"
    }
    redis_replication_group_id = "herald-redis"
  }

  assert {
    condition     = strcontains(output.rendered, "ExecStart=/usr/local/bin/herald hub --config /etc/herald/herald.toml")
    error_message = "the unit must run herald hub"
  }
  assert {
    condition     = strcontains(output.rendered, "\nLimitNOFILE=65535\n") && strcontains(output.rendered, "\nnet.core.somaxconn = 4096\n")
    error_message = "hubs get the same limits and sysctls"
  }
  assert {
    condition     = strcontains(output.rendered, "elasticache_replication_group = \"herald-redis\"") && strcontains(output.rendered, "link_listen = \"0.0.0.0:4433\"")
    error_message = "the hub config must name the replication group and the QUIC listener"
  }
  assert {
    condition     = strcontains(output.rendered, "\nmin_replicas_acked = 1\n")
    error_message = "a hub must answer a trigger only once a replica holds the event (redis.min_replicas_acked = 1)"
  }
  assert {
    condition     = !strcontains(output.rendered, "lifecycle-watch") && !strcontains(output.rendered, "[edge]")
    error_message = "hubs are not in the edge Auto Scaling group"
  }
}

run "rejects_unknown_role" {
  command = plan

  variables {
    role = "gateway"
    parameters = {
      cluster_key      = "/herald/cluster/key"
      hub_tls_cert     = "/herald/hub/tls_cert"
      hub_tls_key      = "/herald/hub/tls_key"
      redis_auth_token = "/herald/redis/auth_token"
    }
    redis_replication_group_id = "herald-redis"
  }

  expect_failures = [var.role]
}

run "rejects_bad_checksum" {
  command = plan

  variables {
    role                   = "hub"
    herald_artifact_sha256 = "not-a-digest"
    parameters = {
      cluster_key      = "/herald/cluster/key"
      hub_tls_cert     = "/herald/hub/tls_cert"
      hub_tls_key      = "/herald/hub/tls_key"
      redis_auth_token = "/herald/redis/auth_token"
    }
    redis_replication_group_id = "herald-redis"
  }

  expect_failures = [var.herald_artifact_sha256]
}

run "rejects_zero_drain" {
  command = plan

  variables {
    role               = "edge"
    drain_timeout_secs = 0
    parameters = {
      cluster_key = "/herald/cluster/key"
      hub_ca_cert = "/herald/hub/ca_cert"
    }
    hubs                = ["hub-1.herald.internal:4433"]
    edge_asg_name       = "herald-edge"
    lifecycle_hook_name = "herald-drain"
  }

  expect_failures = [var.drain_timeout_secs]
}

run "hub_without_redis_fails" {
  command = plan

  variables {
    role = "hub"
    parameters = {
      cluster_key  = "/herald/cluster/key"
      hub_tls_cert = "/herald/hub/tls_cert"
      hub_tls_key  = "/herald/hub/tls_key"
    }
  }

  expect_failures = [output.rendered, output.rendered_base64]
}

run "edge_without_hubs_fails" {
  command = plan

  variables {
    role = "edge"
    parameters = {
      cluster_key = "/herald/cluster/key"
      hub_ca_cert = "/herald/hub/ca_cert"
    }
    edge_asg_name       = "herald-edge"
    lifecycle_hook_name = "herald-drain"
  }

  expect_failures = [output.rendered, output.rendered_base64]
}
