"""Adapters that change this host: accounts, vsftpd, systemd units, collectd."""
