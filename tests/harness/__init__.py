"""Real components for the tests: Consul, vsftpd, FTP and HTTP subscribers, ftpdup workers."""
