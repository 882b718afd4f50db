"""Pure configuration logic: Consul values -> validated lanes and subscribers. No I/O."""
