"""Herald's checkov policies for Fargate edges (modules/edge_fargate) that YAML cannot express:
checkov hands container_definitions = jsonencode([...]) over as the unevaluated HCL text, so the
numbers are read from it here and compared.

HERALD_ECS_1  the edge container's nofile ulimit is at least 65535, soft and hard
HERALD_ECS_2  its stopTimeout outlasts HERALD_EDGE__DRAIN_TIMEOUT_SECS by at least 5 s, and is at
              most 120 s (Fargate's maximum)
"""
import re

from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck

Q = "[\"']"


def definitions(conf):
    # A list (checkov's attribute values) holding the text, or the evaluated JSON: read its text.
    return str(conf.get("container_definitions", ""))


def number(text, pattern):
    match = re.search(pattern, text)
    return int(match.group(1)) if match else None


def is_edge(conf):
    family = conf.get("family", [""])
    return "edge" in str(family[0] if isinstance(family, list) and family else family)


class EdgeNofile(BaseResourceCheck):
    def __init__(self):
        super().__init__(
            name="Herald: Fargate edge tasks may hold 65535 sockets (nofile ulimit, soft and hard)",
            id="HERALD_ECS_1",
            categories=[CheckCategories.GENERAL_SECURITY],
            supported_resources=["aws_ecs_task_definition"],
        )

    def scan_resource_conf(self, conf):
        if not is_edge(conf):
            return CheckResult.UNKNOWN
        text = definitions(conf)
        for limit in re.findall(r"\{[^{}]*" + Q + "nofile" + Q + r"[^{}]*\}", text):
            soft = number(limit, Q + r"softLimit" + Q + r"\s*[:=]\s*(\d+)")
            hard = number(limit, Q + r"hardLimit" + Q + r"\s*[:=]\s*(\d+)")
            if soft is not None and hard is not None and soft >= 65535 and hard >= 65535:
                return CheckResult.PASSED
        return CheckResult.FAILED


class EdgeStopTimeout(BaseResourceCheck):
    def __init__(self):
        super().__init__(
            name="Herald: Fargate edge tasks get longer than their drain to stop (stopTimeout > drain + 5 s, <= 120 s)",
            id="HERALD_ECS_2",
            categories=[CheckCategories.GENERAL_SECURITY],
            supported_resources=["aws_ecs_task_definition"],
        )

    def scan_resource_conf(self, conf):
        if not is_edge(conf):
            return CheckResult.UNKNOWN
        text = definitions(conf)
        stop = number(text, Q + r"stopTimeout" + Q + r"\s*[:=]\s*(\d+)")
        drain = number(text, Q + r"HERALD_EDGE__DRAIN_TIMEOUT_SECS" + Q + r"\s*,\s*" + Q + r"value" + Q + r"\s*[:=]\s*" + Q + r"(\d+)" + Q)
        if stop is None or drain is None:
            return CheckResult.FAILED
        return CheckResult.PASSED if drain + 5 <= stop <= 120 else CheckResult.FAILED


check_nofile = EdgeNofile()
check_stop = EdgeStopTimeout()
