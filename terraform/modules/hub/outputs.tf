output "link_endpoints" {
  description = "What edges put in edge.hubs: the NLB, or every hub by name, as host:4433."
  value = (var.enable_nlb
    ? ["${aws_lb.quic[0].dns_name}:4433"]
    : [for record in aws_route53_record.hub : "${record.name}:4433"]
  )
}

output "hub_names" {
  description = "Private DNS names of the hubs."
  value       = [for record in aws_route53_record.hub : record.name]
}

output "instance_ids" {
  description = "Hub instance ids."
  value       = aws_instance.hub[*].id
}

output "nlb_dns_name" {
  description = "DNS name of the internal QUIC NLB, or null."
  value       = var.enable_nlb ? aws_lb.quic[0].dns_name : null
}
