"""The long-running service: scheduler, leader lease, health endpoint, systemd notify and logging."""
