"""The manager: reconcile this host with Consul (read actual state, plan, apply)."""
