#!/usr/bin/env python3
"""Proves the deployment checks bite: breaks each invariant in turn and runs the checks.

For every mutation below, the named checks must fail (and the tree is restored afterwards):
  hcl-rs     cargo test --test black_box terraform_invariants::
  checkov    checkov with terraform/policies (venv from .ci/deploy-checks.sh)
  tftest     terraform test in terraform/modules/user_data (needs a terraform binary)

Run by .ci/run after the deploy checks, or by hand from the repository root (a few minutes):
  python3 terraform/tests/break_invariants.py [substring of a mutation name ...]
"""
import os
import re
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ALB, EDGE, REDIS = "terraform/modules/alb/main.tf", "terraform/modules/edge/main.tf", "terraform/modules/redis/main.tf"
SG, ROOT_VARS = "terraform/modules/security_groups/main.tf", "terraform/variables.tf"
HUB, LAUNCH = "terraform/modules/hub/main.tf", "terraform/modules/launch_template/main.tf"
FARGATE = "terraform/modules/edge_fargate/main.tf"
REDIS_VARS, HUB_TOML = "terraform/modules/redis/variables.tf", "terraform/modules/user_data/templates/herald.toml.tftpl"
# The two Redis shapes share their settings' text; these anchors tell them apart.
REDIS_ONE = 'num_cache_clusters         = var.num_cache_clusters\n  multi_az_enabled           = true\n  automatic_failover_enabled = true\n\n  transit_encryption_enabled = true\n  transit_encryption_mode    = "required"\n  at_rest_encryption_enabled = true'
REDIS_SHARDED = REDIS_ONE.replace("num_cache_clusters         = var.num_cache_clusters", "replicas_per_node_group    = var.replicas_per_shard")
CLUSTER_ENABLED = 'parameter {\n    name  = "cluster-enabled"\n    value = "yes"\n  }\n'
REPLICAS_DEFAULT = '(1-5)."\n  type        = number\n  default     = 1'

UNIT = "terraform/modules/user_data/templates/herald.service.tftpl"
BOOT = "terraform/modules/user_data/templates/bootstrap.sh.tftpl"
EDGE_HEALTH = 'port                = "9080"\n    path                = "/up"\n    matcher             = "200,204"'
EDGE_DELAY = "deregistration_delay = 30\n\n  # Pins"
EDGE_LAUNCH_ROLE = 'source = "../launch_template"\n\n  role                  = "edge"'
HUB_QUIC = 'from_port                    = 4433\n  to_port                      = 4433\n  referenced_security_group_id = aws_security_group.edge.id\n}\n\nresource "aws_vpc_security_group_egress_rule" "hub_to_redis"'

MUTATIONS = [
    ("ALB idle_timeout 60", ALB, "idle_timeout = 3600", "idle_timeout = 60", {"hcl-rs", "checkov"}),
    ("stickiness disabled", ALB, 'enabled         = true\n    type            = "lb_cookie"', 'enabled         = false\n    type            = "lb_cookie"', {"hcl-rs", "checkov"}),
    ("stickiness app_cookie", ALB, 'type            = "lb_cookie"', 'type            = "app_cookie"', {"hcl-rs", "checkov"}),
    ("cookie_duration 3600", ALB, "cookie_duration = 86400", "cookie_duration = 3600", {"hcl-rs", "checkov"}),
    ("edge health check path /", ALB, EDGE_HEALTH, EDGE_HEALTH.replace('"/up"', '"/"'), {"hcl-rs", "checkov"}),
    ("edge health matcher 200-499", ALB, EDGE_HEALTH, EDGE_HEALTH.replace('"200,204"', '"200-499"'), {"hcl-rs", "checkov"}),
    ("edge health check on the WebSocket port", ALB, 'port                = "9080"', 'port                = "traffic-port"', {"hcl-rs", "checkov"}),
    ("edge deregistration_delay 0", ALB, EDGE_DELAY, EDGE_DELAY.replace("= 30", "= 0"), {"hcl-rs", "checkov"}),
    ("edge target group cross-zone off", ALB, EDGE_DELAY, EDGE_DELAY.replace("= 30", '= 30\n  load_balancing_cross_zone_enabled = "false"'), {"hcl-rs", "checkov"}),
    ("HTTPS listener TLS 1.0 policy", ALB, "ELBSecurityPolicy-TLS13-1-2-2021-06", "ELBSecurityPolicy-2016-08", {"hcl-rs", "checkov"}),
    ("/app/* also routed to hubs", ALB, 'values = ["/app/*"]', 'values = ["/apps/*", "/app/*"]', {"hcl-rs"}),
    ("launch template IMDSv1 allowed", LAUNCH, 'http_tokens                 = "required"', 'http_tokens                 = "optional"', {"hcl-rs", "checkov"}),
    ("launch template metadata hop limit 2", LAUNCH, "http_put_response_hop_limit = 1", "http_put_response_hop_limit = 2", {"hcl-rs", "checkov"}),
    ("hub instance IMDSv1 allowed", HUB, 'http_tokens                 = "required"', 'http_tokens                 = "optional"', {"hcl-rs", "checkov"}),
    ("hub user data inlined", HUB, "user_data             = module.user_data.rendered_base64", 'user_data             = base64encode("#!/bin/sh")', {"hcl-rs"}),
    ("edge launch template with the hub role", EDGE, EDGE_LAUNCH_ROLE, EDGE_LAUNCH_ROLE.replace('"edge"', '"hub"'), {"hcl-rs"}),
    ("lifecycle hook on launch", EDGE, "autoscaling:EC2_INSTANCE_TERMINATING", "autoscaling:EC2_INSTANCE_LAUNCHING", {"hcl-rs", "checkov"}),
    ("lifecycle heartbeat 30 s", EDGE, "heartbeat_timeout    = 120", "heartbeat_timeout    = 30", {"hcl-rs", "checkov"}),
    ("scaling on CPU", EDGE, 'metric_name = "EdgeConnections"\n      statistic', 'metric_name = "CPUUtilization"\n      statistic', {"hcl-rs", "checkov"}),
    ("drain timeout 45 s > deregistration 30 s", EDGE, "drain_timeout_secs     = 25", "drain_timeout_secs     = 45", {"hcl-rs"}),
    ("Redis multi-AZ off", REDIS, REDIS_ONE, REDIS_ONE.replace("multi_az_enabled           = true", "multi_az_enabled           = false"), {"hcl-rs", "checkov"}),
    ("Redis automatic failover off", REDIS, REDIS_ONE, REDIS_ONE.replace("automatic_failover_enabled = true", "automatic_failover_enabled = false"), {"hcl-rs", "checkov"}),
    ("Redis transit encryption off", REDIS, REDIS_ONE, REDIS_ONE.replace("transit_encryption_enabled = true", "transit_encryption_enabled = false"), {"hcl-rs", "checkov"}),
    ("Redis at-rest encryption off", REDIS, REDIS_ONE, REDIS_ONE.replace("at_rest_encryption_enabled = true", "at_rest_encryption_enabled = false"), {"hcl-rs", "checkov"}),
    ("Redis cluster mode on", REDIS, 'cluster_mode               = "disabled"', 'cluster_mode               = "enabled"', {"hcl-rs", "checkov"}),
    ("Redis parameter group redis6.x", REDIS, '-redis7"\n  family      = "redis7"', '-redis7"\n  family      = "redis6.x"', {"hcl-rs", "checkov"}),
    ("Redis cluster multi-AZ off", REDIS, REDIS_SHARDED, REDIS_SHARDED.replace("multi_az_enabled           = true", "multi_az_enabled           = false"), {"hcl-rs", "checkov"}),
    ("Redis cluster automatic failover off", REDIS, REDIS_SHARDED, REDIS_SHARDED.replace("automatic_failover_enabled = true", "automatic_failover_enabled = false"), {"hcl-rs", "checkov"}),
    ("Redis cluster transit encryption off", REDIS, REDIS_SHARDED, REDIS_SHARDED.replace("transit_encryption_enabled = true", "transit_encryption_enabled = false"), {"hcl-rs", "checkov"}),
    ("Redis cluster without replicas", REDIS, "replicas_per_node_group    = var.replicas_per_shard", "replicas_per_node_group    = 0", {"hcl-rs", "checkov"}),
    ("Redis cluster with num_cache_clusters", REDIS, "replicas_per_node_group    = var.replicas_per_shard", "replicas_per_node_group    = var.replicas_per_shard\n  num_cache_clusters         = 2", {"hcl-rs", "checkov"}),
    ("Redis cluster parameter group without cluster-enabled", REDIS, CLUSTER_ENABLED, "", {"hcl-rs"}),
    ("Redis cluster replicas validated >= 0", REDIS_VARS, "var.replicas_per_shard >= 1", "var.replicas_per_shard >= 0", {"hcl-rs"}),
    ("root default no replica per shard", ROOT_VARS, REPLICAS_DEFAULT, REPLICAS_DEFAULT.replace("default     = 1", "default     = 0"), {"hcl-rs", "checkov"}),
    ("hubs acknowledge before a replica has the event", HUB_TOML, "min_replicas_acked = 1", "min_replicas_acked = 0", {"hcl-rs", "tftest"}),
    ("hubs leave min_replicas_acked to its default", HUB_TOML, "min_replicas_acked = 1\n", "", {"hcl-rs", "tftest"}),
    ("root default Redis 6.2", ROOT_VARS, 'default     = "7.1"', 'default     = "6.2"', {"hcl-rs", "checkov"}),
    ("root default one Redis node", ROOT_VARS, "(2-6).\"\n  type        = number\n  default     = 2", "(2-6).\"\n  type        = number\n  default     = 1", {"hcl-rs", "checkov"}),
    ("hub QUIC open to 0.0.0.0/0", SG, HUB_QUIC, HUB_QUIC.replace("referenced_security_group_id = aws_security_group.edge.id", 'cidr_ipv4 = "0.0.0.0/0"'), {"hcl-rs", "checkov"}),
    ("Fargate nofile ulimit removed", FARGATE, '{ name = "nofile", softLimit = 65535, hardLimit = 65535 },', "", {"hcl-rs", "checkov"}),
    ("Fargate nofile soft limit 1024", FARGATE, "softLimit = 65535", "softLimit = 1024", {"hcl-rs", "checkov"}),
    ("Fargate stopTimeout 20 s < drain 25 s", FARGATE, "stopTimeout = 40", "stopTimeout = 20", {"hcl-rs", "checkov"}),
    ("Fargate stopTimeout 25 s = drain (no margin)", FARGATE, "stopTimeout = 40", "stopTimeout = 25", {"hcl-rs", "checkov"}),
    ("Fargate circuit breaker without rollback", FARGATE, "rollback = true", "rollback = false", {"hcl-rs", "checkov"}),
    ("Fargate health check through a shell", FARGATE, '["CMD", "/usr/local/bin/herald", "probe",', '["CMD-SHELL", "curl -f http://127.0.0.1:9080/up",', {"hcl-rs"}),
    ("Fargate edges scale on CPU", FARGATE, '"ActiveConnectionCount"', '"CPUUtilization"', {"hcl-rs"}),
    ("edge target group always type instance", ALB, 'target_type = var.edge_platform == "fargate" ? "ip" : "instance"', 'target_type = "instance"', {"hcl-rs"}),
    ("LimitNOFILE 1024", UNIT, "LimitNOFILE=65535", "LimitNOFILE=1024", {"hcl-rs", "tftest"}),
    ("somaxconn 128", BOOT, "net.core.somaxconn = 4096", "net.core.somaxconn = 128", {"hcl-rs", "tftest"}),
]


def run(command, cwd=ROOT, env=None):
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)


def main():
    wanted = sys.argv[1:]
    checkov = os.path.join(ROOT, "target/venvs/checkov/bin/checkov")
    if not os.path.exists(checkov):
        sys.exit("run .ci/deploy-checks.sh once first: it installs checkov into target/venvs/checkov")
    env = dict(os.environ, TF_DATA_DIR=os.path.join(ROOT, "target/break-invariants/terraform"),
               TF_CLI_CONFIG_FILE="/dev/null", TF_IN_AUTOMATION="1")
    user_data = os.path.join(ROOT, "terraform/modules/user_data")
    have_terraform = run(["sh", "-c", "command -v terraform"]).returncode == 0
    if have_terraform:
        run(["terraform", "init", "-backend=false", "-input=false"], cwd=user_data, env=env)
    print("building the hcl-rs test ...", flush=True)
    run(["cargo", "test", "-q", "--test", "black_box", "--no-run"])
    passed = failed = 0
    for name, path, old, new, expected in MUTATIONS:
        if wanted and not any(part in name for part in wanted):
            continue
        file = os.path.join(ROOT, path)
        original = open(file).read()
        if original.count(old) != 1:
            print(f"FAILED {name}: the text to break is not found exactly once in {path}")
            failed += 1
            continue
        open(file, "w").write(original.replace(old, new))
        try:
            caught = {}
            hcl = run(["cargo", "test", "-q", "--test", "black_box", "terraform_invariants::"])
            caught["hcl-rs"] = [m.group(1)[:140] for m in re.finditer(r"panicked at [^\n]*\n([^\n]*)", hcl.stdout)] if hcl.returncode else []
            scan = run([checkov, "-d", "terraform", "--framework", "terraform", "--skip-download",
                        "--external-checks-dir", "terraform/policies", "--compact", "--quiet"])
            caught["checkov"] = sorted(set(re.findall(r"Check: (\S+):", scan.stdout))) if scan.returncode else []
            if have_terraform:
                test = run(["terraform", "test", "-no-color"], cwd=user_data, env=env)
                caught["tftest"] = [line for line in test.stdout.splitlines() if "failed" in line][-1:] if test.returncode else []
        finally:
            open(file, "w").write(original)
        missed = {check for check in expected if check in caught and not caught[check]}
        status = "FAILED" if missed else "ok"
        passed, failed = (passed + 1, failed) if not missed else (passed, failed + 1)
        print(f"{status} {name}")
        for check, evidence in caught.items():
            print(f"    {check}: {'caught: ' + '; '.join(evidence) if evidence else 'passed'}")
        if missed:
            print(f"    expected to be caught by: {', '.join(sorted(missed))}")
    print(f"break-invariants: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
